"""The auditor's commands end to end: replay, verify, checkpoint, prove, export, verify-bundle, diff, correct."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Cli
from tests.e2e.test_secretary_cli import STRUCTURE_AGREED, walk_to_drafting


@pytest.fixture
def lis(lis_started: Cli) -> Cli:
    """The LIS through the Strategic Board's agreement of 4 October 2019, entered on the 7th."""
    walk_to_drafting(lis_started)
    result = lis_started(*STRUCTURE_AGREED, now="2019-10-07T09:30")
    assert result.code == 0, result.err
    return lis_started


def tamper(cli: Cli, statement: str) -> None:
    """Raw SQL by someone who first dropped the append-only triggers."""
    engine = create_engine(cli.db)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("DROP TRIGGER IF EXISTS events_no_change ON events"))
            else:
                connection.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
            connection.execute(text(statement))
    finally:
        engine.dispose()


def test_init_creates_the_signing_key_once(cli: Cli) -> None:
    key = cli.folder / "govflow-signing.key"
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    again = cli("init")
    assert again.code == 0 and "signing key" not in again.out


def test_replay_as_of_a_date_by_occurred_and_by_recorded_time(lis: Cli) -> None:
    occurred = lis("audit", "replay", "selep-lis", "--as-of", "2019-10-05", "--json")
    recorded = lis("audit", "replay", "selep-lis", "--as-of", "2019-10-05", "--by", "recorded", "--json")
    assert occurred.code == 0 and recorded.code == 0, occurred.err + recorded.err

    status = lis("status", "selep-lis", "--json", now="2019-10-05T12:00").json()
    then = occurred.json()
    assert set(status) <= set(then) and {"events", "replay"} <= set(then)
    gates = {g["id"]: g["status"] for g in then["gates"]}
    assert gates["structure-agreed"] == "passed" and then["as_of"] == "2019-10-05"
    assert {g["id"]: g["status"] for g in recorded.json()["gates"]}["structure-agreed"] == "open"
    assert then["events"][-1]["type"] == "GatePassed" and then["replay"]["by"] == "occurred"

    text_view = lis("audit", "replay", "selep-lis", "--as-of", "2019-10-05")
    assert text_view.code == 0 and "events behind it" in text_view.out and "structure-agreed" in text_view.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "replay", "nope", "--as-of", "2019-10-05"], "unknown instance 'nope'"),
        (["audit", "replay", "selep-lis", "--as-of", "5 Oct"], "is not a date"),
        (["audit", "replay", "selep-lis", "--as-of", "2019-01-01"], "had not started"),
        (["audit", "prove", "selep-lis", "--version", "3"], "no checkpoint yet"),
        (["audit", "prove", "selep-lis"], "--version N"),
        (["audit", "verify-bundle", "missing.jsonl"], "no such bundle"),
        (["correct", "selep-lis", "--version", "999", "--reason", "x"], "unknown event version '999'"),
    ],
)
def test_mistakes_end_with_one_line_and_exit_2(lis: Cli, args: list[str], message: str) -> None:
    result = lis(*args)
    assert result.code == 2, result.out + result.err
    assert message in result.err and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_checkpoint_verify_and_prove_then_tampering_exits_4(lis: Cli) -> None:
    signed = lis("audit", "checkpoint", "--json", now="2019-10-08T09:00")
    assert signed.code == 0, signed.err
    assert signed.json()["payload"]["tree_size"] == signed.json()["position"] - 1
    assert lis("audit", "verify").code == 0
    proof = lis("audit", "prove", "selep-lis", "--version", "5", "--json")
    assert proof.code == 0 and proof.json()["verified"] and proof.json()["checkpoint"] == 1
    assert "$checkpoints" not in lis("list").out

    tamper(lis, "UPDATE events SET actor = 'someone else' WHERE stream_id = 'selep-lis' AND version = 5")

    result = lis("audit", "verify")
    assert result.code == 4 and "TAMPERING FOUND" in result.out
    assert "altered: stream 'selep-lis' version 5 position 5" in result.out
    assert lis("audit", "verify", "selep-lis").code == 4
    # A new checkpoint re-hashes the events it adds to the tree, and signs none that fails.
    assert lis("task", "complete", "selep-lis", "draft-written", now="2019-10-09T09:00").code == 0
    tamper(lis, "UPDATE events SET actor = 'someone else' WHERE stream_id = 'selep-lis' AND type = 'TaskCompleted' "
           "AND data LIKE '%draft-written%'")  # fmt: skip
    refused = lis("audit", "checkpoint", now="2019-10-09T10:00")
    assert refused.code == 4 and "nothing was signed" in refused.err


def test_export_then_verify_the_bundle_offline_and_catch_a_changed_byte(lis: Cli, tmp_path: Path) -> None:
    bundle = tmp_path / "lis-audit.jsonl"
    exported = lis("audit", "export", "selep-lis", "--out", str(bundle), "--checkpoint", now="2019-10-08T09:00")
    assert exported.code == 0 and "proven in checkpoint 1" in exported.out, exported.err

    checked = lis("audit", "verify-bundle", str(bundle), "--db", "sqlite:////nonexistent/nowhere.db")
    assert checked.code == 0, checked.out + checked.err
    assert "OK" in checked.out and "phase        drafting" in checked.out

    lines = bundle.read_bytes().splitlines(keepends=True)
    lines[-2] = lines[-2].replace(b'"actor":"strategic-board-secretary"', b'"actor":"strategic-board-secretarz"')
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"".join(lines))
    caught = lis("audit", "verify-bundle", str(forged), "--json")
    assert caught.code == 4 and not caught.json()["ok"]
    assert any("does not match its hash" in p for p in caught.json()["problems"])

    wrong_key = lis("audit", "verify-bundle", str(bundle), "--key", "11" * 32)
    assert wrong_key.code == 4 and "not the trusted key" in wrong_key.out

    csv_file = tmp_path / "lis-audit.csv"
    assert lis("audit", "export", "selep-lis", "--out", str(csv_file), "--format", "csv").code == 0
    assert csv_file.read_text(encoding="utf-8").startswith("stream_id,version,position,type")


def test_diff_names_what_changed_and_who(lis: Cli) -> None:
    result = lis("audit", "diff", "selep-lis", "--from", "2019-09-01", "--to", "2019-10-31", "--json")
    assert result.code == 0, result.err
    changes = result.json()
    assert changes["phase"] == {"from": "evidence", "to": "drafting"}
    assert {"gate": "evidence-agreed", "from": "open", "to": "passed"} in [
        {k: g[k] for k in ("gate", "from", "to")} for g in changes["gates"]
    ]
    assert {"actor": "strategic-board-secretary", "events": 2} in changes["actors"]
    assert (
        "phase: evidence → drafting"
        in lis("audit", "diff", "selep-lis", "--from", "2019-09-01", "--to", "2019-10-31").out
    )


def test_a_correction_keeps_the_corrected_event_and_replay_shows_both(lis: Cli) -> None:
    history = lis("history", "selep-lis", "--json").json()
    decision = next(e for e in history if e["type"] == "DecisionRecorded" and e["data"]["body"] == "kmep")

    result = lis(
        "correct", "selep-lis", "--version", str(decision["version"]), "--reason", "minute ref KMEP/19/7", "--json",
        now="2019-10-10T10:00",
    )  # fmt: skip

    assert result.code == 0, result.err
    (event,) = result.json()["events"]
    assert event["type"] == "EventCorrected" and event["data"]["corrects"] == decision["version"]
    assert event["data"]["effect"] == "annotated" and event["data"]["hash"] == decision["hash"]
    replayed = lis("audit", "replay", "selep-lis", "--as-of", "2019-10-10", "--json").json()
    assert [e["type"] for e in replayed["events"]].count("DecisionRecorded") >= 5
    assert replayed["events"][-1]["type"] == "EventCorrected"
    assert replayed["corrections"][0]["corrects"] == decision["version"]
