"""The secretary's commands end to end, as in the engine-core issue's walk-through."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.e2e.conftest import Cli

STRUCTURE_AGREED = [
    "decide",
    "selep-lis",
    "--gate",
    "structure-agreed",
    "--board",
    "strategic-board",
    "--outcome",
    "approved",
    "--date",
    "2019-10-04",
    "--present",
    "20",
    "--for",
    "18",
    "--against",
    "0",
    "--abstain",
    "1",
    "--conflicted",
    "1",
    "--minute-ref",
    "SB/2019/10/5",
    "--actor",
    "strategic-board-secretary",
]


def walk_to_drafting(cli: Cli) -> None:
    for task in ("evidence-review", "stakeholder-consultation", "engagement-plan"):
        assert cli("task", "complete", "selep-lis", task, now="2019-07-25T10:00").code == 0
    result = cli(
        *[
            "decide",
            "selep-lis",
            "--gate",
            "approach-agreed",
            "--board",
            "secretariat",
            "--outcome",
            "approved",
            "--date",
            "2019-07-26",
        ],
        *("--mode", "delegated", "--authority", "SB/2019/06/3", "--actor", "lep chief executive"),
        now="2019-07-26T15:00",
    )
    assert result.code == 0, result.err
    for task in ("evidence-base", "emerging-propositions"):
        assert cli("task", "complete", "selep-lis", task, now="2019-09-20T10:00").code == 0
    for body, day in (("team-east-sussex", "16"), ("success-essex", "17"), ("ose", "18"), ("kmep", "24")):
        result = cli(
            "decide", "selep-lis", "--gate", "evidence-agreed", "--board", body, "--outcome", "endorsed",
            "--date", f"2019-09-{day}", "--present", "12", "--for", "12", now="2019-09-27T10:00",
        )  # fmt: skip
        assert result.code == 0, result.err


def test_the_walk_through_records_every_step_and_status_follows(lis_started: Cli, tmp_path: Path) -> None:
    cli = lis_started
    walk_to_drafting(cli)
    assert cli("meeting", "schedule", "selep-lis", "strategic-board", "2019-10-04", now="2019-09-30").code == 0
    result = cli(*STRUCTURE_AGREED, now="2019-10-07T09:30")
    assert result.code == 0, result.err
    assert "GatePassed" in result.out

    draft = tmp_path / "lis-final-draft.pdf"
    draft.write_bytes(b"%PDF-1.4 final draft")
    result = cli("document", "add", "selep-lis", str(draft), "--json", now="2019-11-01")
    assert result.code == 0, result.err
    assert result.json()["events"][0]["data"]["sha256"] == hashlib.sha256(draft.read_bytes()).hexdigest()

    status = cli("status", "selep-lis", "--json", now="2019-11-01").json()
    assert {
        "instance",
        "definition",
        "definition_version",
        "phase",
        "gates",
        "tasks",
        "deadline",
        "next_deadlines",
    } <= set(status)
    assert status["phase"] == "drafting"
    gates = {g["id"]: g for g in status["gates"]}
    assert gates["structure-agreed"]["status"] == "passed"
    assert gates["federated-endorsement"]["status"] == "waiting"
    assert {"id", "status", "due", "boards"} <= set(gates["evidence-agreed"])
    assert {"id", "decided", "members", "quorum"} <= set(gates["structure-agreed"]["boards"][0])
    assert (
        gates["structure-agreed"]["boards"][0] | {"decided": True, "members": 27, "quorum": 9}
        == gates["structure-agreed"]["boards"][0]
    )
    assert {"id", "done"} <= set(status["tasks"][0])
    assert status["days_to_deadline"] == 151

    text = cli("status", "selep-lis", now="2019-11-01").out
    assert "drafting" in text and "151 days" in text


def test_history_shows_who_what_and_both_times(lis_started: Cli) -> None:
    cli = lis_started
    walk_to_drafting(cli)
    cli(*STRUCTURE_AGREED, now="2019-10-07T09:30")
    events = cli("history", "selep-lis", "--json").json()
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    decision = next(e for e in events if e["type"] == "DecisionRecorded" and e["data"]["gate"] == "structure-agreed")
    assert {"version", "position", "type", "occurred_at", "recorded_at", "actor", "data", "hash"} <= set(decision)
    assert decision["occurred_at"].startswith("2019-10-03T23:00")  # midnight 4 Oct, BST
    assert decision["recorded_at"].startswith("2019-10-07T08:30")
    assert decision["actor"] == "strategic-board-secretary"
    assert decision["meta"]["clock"] == "simulated"
    assert decision["data"]["votes"] == {"present": 20, "for": 18, "against": 0, "abstain": 1, "conflicted": 1}
    assert "strategic-board-secretary" in cli("history", "selep-lis").out


def test_list_shows_every_instance(lis_started: Cli) -> None:
    cli = lis_started
    assert cli("start", "selep-lis-2019", "--instance", "second", now="2019-06-04").code == 0
    rows = cli("list", "--json").json()
    assert [(r["instance"], r["phase"]) for r in rows] == [("second", "scoping"), ("selep-lis", "scoping")]


def test_a_refused_decision_exits_1_and_records_nothing(lis_started: Cli) -> None:
    cli = lis_started
    walk_to_drafting(cli)
    before = len(cli("history", "selep-lis", "--json").json())
    inquorate = ["--present", "8", "--for", "6", "--against", "0", "--abstain", "1", "--conflicted", "1"]
    result = cli(*STRUCTURE_AGREED, *inquorate, now="2019-10-07")  # the later options win
    assert result.code == 1
    assert result.err.startswith("govflow: refused:") and "inquorate" in result.err
    assert result.err.count("\n") == 1
    assert len(cli("history", "selep-lis", "--json").json()) == before


def test_bad_input_exits_2_with_one_line(cli: Cli) -> None:
    unknown = cli("status", "nowhere")
    assert (unknown.code, unknown.err) == (2, "govflow: unknown instance 'nowhere'\n")
    usage = cli("decide", "x", "--gate")
    assert usage.code == 2 and usage.err.count("\n") == 1 and "Traceback" not in usage.err
    date = cli("decide", "x", "--gate", "g", "--board", "b", "--outcome", "approved", "--date", "4 Oct")
    assert date.code == 2 and "is not a date" in date.err
    missing = cli("document", "add", "x", "no-such-file.pdf")
    assert missing.code == 2


def test_a_malformed_definition_is_reported_with_its_key_path(cli: Cli, tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "workflows" / "definitions" / "selep-lis-2019.toml"
    broken = tmp_path / "broken.toml"
    text = source.read_text()
    broken.write_text(text.replace('boards = ["success-essex", "kmep"', 'boards = ["success-essex", "kmepp"', 1))
    result = cli("definition", "validate", str(broken))
    assert result.code == 2
    assert "  phases[1].gates[0].boards[1]: unknown body 'kmepp' (did you mean 'kmep'?)" in result.err.splitlines()
    assert "Traceback" not in result.err
    assert cli("definition", "validate", str(source)).code == 0


def test_the_diagram_is_mermaid(cli: Cli) -> None:
    result = cli("definition", "diagram", "selep-lis-2019")
    assert result.code == 0
    assert result.out.startswith("stateDiagram-v2")
    assert "scoping --> evidence: approach-agreed" in result.out


def test_the_same_key_records_once_and_answers_the_same(lis_started: Cli) -> None:
    cli = lis_started
    args = ("task", "complete", "selep-lis", "evidence-review", "--key", "k-1", "--json")
    first = cli(*args, now="2019-07-01")
    second = cli(*args, now="2019-07-02")
    assert first.code == second.code == 0
    assert first.json()["events"] == second.json()["events"]
    assert second.json()["replayed"] is True
    done = [e for e in cli("history", "selep-lis", "--json").json() if e["type"] == "TaskCompleted"]
    assert len(done) == 1
    reused = cli("task", "complete", "selep-lis", "engagement-plan", "--key", "k-1")
    assert reused.code == 2 and "already used for a different command" in reused.err


def test_pause_resume_supersede_and_deadline_are_commands_with_reasons(lis_started: Cli) -> None:
    cli = lis_started
    assert cli("pause", "selep-lis", "--reason", "purdah", now="2019-11-06").code == 0
    assert cli("status", "selep-lis", "--json", now="2019-11-07").json()["phase"] == "paused"
    forecast = [line for line in cli("status", "selep-lis", now="2019-11-07").out.splitlines() if "forecast" in line]
    assert len(forecast) == 1 and "forecast     if resumed today, " in forecast[0]
    assert cli("task", "complete", "selep-lis", "evidence-review", now="2019-11-07").code == 1
    assert cli("resume", "selep-lis", "--reason", "election over", now="2019-12-13").code == 0
    assert cli("extend-deadline", "selep-lis", "2021-03-31", "--reason", "covid", now="2020-03-20").code == 0
    assert cli("supersede", "selep-lis", "--reason", "recovery strategy", now="2021-01-15").code == 0
    status = cli("status", "selep-lis", "--json", now="2021-01-15").json()
    assert (status["phase"], status["deadline"]) == ("superseded", "2021-03-31")


def test_settings_come_from_the_environment_and_wrong_keys_are_named(
    cli: Cli, tmp_path: Path, monkeypatch: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    other = tmp_path / "other.db"
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", f"sqlite:///{other}")
    from workflows.cli import main

    assert main(["init"]) == 0
    assert other.exists()
    monkeypatch.setenv("GOVFLOW_DATABASE_URRL", "x")
    assert main(["list"]) == 2
    monkeypatch.delenv("GOVFLOW_DATABASE_URRL")
    config = tmp_path / "bad.toml"
    config.write_text("[database]\nurl = 5\n")
    assert main(["--config", str(config), "list"]) == 2
