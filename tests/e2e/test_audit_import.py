"""``govflow audit import``: a bundle exported from one database loads into an empty one and verifies the same there.

The source log holds two instances whose events interleave, so the imported one's
positions have gaps: the verifier must tell the left-out events of the other instance
from deleted ones, using the import record and the checkpoint the import signs over it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from governance.chain import canonical_json
from tests.e2e.conftest import Cli
from tests.e2e.test_secretary_cli import walk_to_drafting
from workflows.audit.records import COLUMNS, StoredEvent, event_bytes


def _source(folder: Path, capsys: pytest.CaptureFixture[str], name: str = "source") -> Cli:
    """A SQLite log where 'selep-lis' walks to drafting beside another instance, then a checkpoint."""
    cli = Cli(folder, f"sqlite:///{folder / f'{name}.db'}", capsys)
    assert cli("init").code == 0
    for instance in ("other", "selep-lis"):
        assert cli("start", "selep-lis-2019", "--instance", instance, now="2019-06-03T09:00").code == 0
    assert cli("task", "complete", "other", "evidence-review", now="2019-07-24T10:00").code == 0
    walk_to_drafting(cli)
    assert cli("task", "complete", "other", "engagement-plan", now="2019-09-28T10:00").code == 0
    return cli


def _export(cli: Cli, out: Path, *extra: str) -> Path:
    result = cli("audit", "export", "selep-lis", "--out", str(out), *extra, now="2019-10-01T09:00")
    assert result.code == 0, result.err
    return out


@pytest.fixture
def bundle(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    return _export(_source(workdir, capsys), workdir / "lis.jsonl", "--checkpoint")


def stored_rows(db: str, stream: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            query = text(f"SELECT {', '.join(COLUMNS)} FROM events WHERE stream_id = :s ORDER BY version")
            return [tuple(row) for row in connection.execute(query, {"s": stream})]
    finally:
        engine.dispose()


def test_a_bundle_from_sqlite_imports_into_postgres_and_back_and_verifies_the_same_on_each(
    workdir: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    source = _source(workdir, capsys)
    first = _export(source, workdir / "from-sqlite.jsonl", "--checkpoint")
    postgres = Cli(workdir, postgres_url, capsys)
    assert postgres("init").code == 0

    loaded = postgres("audit", "import", str(first), "--json", now="2019-10-02T09:00")
    assert loaded.code == 0, loaded.err
    assert loaded.json()["events"] == len(stored_rows(source.db, "selep-lis"))
    second = _export(postgres, workdir / "from-postgres.jsonl")
    back = Cli(workdir, f"sqlite:///{workdir / 'back.db'}", capsys)
    assert back("init").code == 0
    assert back("audit", "import", str(second), now="2019-10-03T09:00").code == 0

    answers = [db("audit", "verify", "selep-lis", "--json") for db in (source, postgres, back)]
    assert [a.code for a in answers] == [0, 0, 0], [a.out for a in answers]
    assert len({a.json()["events"] for a in answers}) == 1
    assert (
        stored_rows(source.db, "selep-lis")
        == stored_rows(postgres.db, "selep-lis")
        == stored_rows(back.db, "selep-lis")
    )
    for db in (postgres, back):
        whole = db("audit", "verify", "--json")
        assert whole.code == 0 and whole.json()["imported_up_to"] > 0, whole.out
        assert "were imported from a bundle" in db("audit", "verify").out
    statuses = [db("status", "selep-lis", "--json", now="2019-10-04T12:00").json() for db in (source, postgres, back)]
    assert statuses[0] == statuses[1] == statuses[2]


def test_an_imported_database_keeps_working_signing_proving_and_verifying(cli: Cli, bundle: Path) -> None:
    assert cli("audit", "import", str(bundle), now="2019-10-02T09:00").code == 0

    assert cli("task", "complete", "selep-lis", "draft-written", now="2019-10-08T09:00").code == 0
    assert cli("start", "selep-lis-2019", "--instance", "new-one", now="2019-10-08T09:00").code == 0
    assert cli("audit", "checkpoint", now="2019-10-09T09:00").code == 0

    assert cli("audit", "verify").code == 0
    assert cli("audit", "verify", "new-one").code == 0
    proof = cli("audit", "prove", "selep-lis", "--version", "3", "--json")
    assert proof.code == 0 and proof.json()["verified"], proof.err
    assert cli("audit", "prove", "--between", "2", "3").code == 0
    assert [row["instance"] for row in cli("list", "--json").json()] == ["new-one", "selep-lis"]


def test_a_tampered_bundle_is_refused_with_exit_4_and_nothing_is_written(cli: Cli, bundle: Path, workdir: Path) -> None:
    lines = bundle.read_bytes().splitlines(keepends=True)
    lines[-3] = lines[-3].replace(b'"actor":"', b'"actor":"x', 1)
    forged = workdir / "forged.jsonl"
    forged.write_bytes(b"".join(lines))

    refused = cli("audit", "import", str(forged), now="2019-10-02T09:00")

    assert refused.code == 4 and "does not match its hash" in refused.err and "nothing was imported" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert cli("list", "--json").json() == []
    assert cli("audit", "verify", "--json").json()["events"] == 0
    assert cli("audit", "import", str(bundle), now="2019-10-02T09:00").code == 0


def test_importing_twice_is_refused_with_exit_2(cli: Cli, bundle: Path) -> None:
    assert cli("audit", "import", str(bundle), now="2019-10-02T09:00").code == 0
    again = cli("audit", "import", str(bundle), now="2019-10-02T09:00")
    assert again.code == 2 and "only into an empty database" in again.err
    assert cli("audit", "verify").code == 0


def test_a_bundle_its_checkpoint_does_not_cover_is_refused_with_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], sqlite_url: str
) -> None:
    source = _source(workdir, capsys)
    assert source("audit", "checkpoint", now="2019-09-29T09:00").code == 0
    assert source("task", "complete", "selep-lis", "draft-written", now="2019-09-30T09:00").code == 0
    stale = _export(source, workdir / "stale.jsonl")
    target = Cli(workdir, sqlite_url, capsys)
    assert target("init").code == 0

    refused = target("audit", "import", str(stale))

    assert refused.code == 2 and "export it again with `govflow audit export --checkpoint`" in refused.err
    assert target("list", "--json").json() == []


def test_a_bundle_signed_by_another_key_is_refused_unless_that_key_is_given(
    cli: Cli, bundle: Path, workdir: Path
) -> None:
    import_key = workdir / "other-signing.key"
    (workdir / "other.toml").write_text(f'[audit]\nsigning_key = "{import_key}"\n', encoding="utf-8")
    source_key = cli("audit", "verify-bundle", str(bundle), "--json").json()["key_id"]
    assert cli("--config", str(workdir / "other.toml"), "init").code == 0

    refused = cli("--config", str(workdir / "other.toml"), "audit", "import", str(bundle))
    assert refused.code == 4 and "not the trusted key" in refused.err

    header = json.loads(bundle.read_text(encoding="utf-8").splitlines()[0])
    loaded = cli("--config", str(workdir / "other.toml"), "audit", "import", str(bundle), "--key", header["public_key"])
    assert loaded.code == 0, loaded.err
    # The seal is signed by this database's key and vouches for the source's checkpoint and key.
    assert cli("--config", str(workdir / "other.toml"), "audit", "verify", "selep-lis").code == 0
    assert source_key != loaded.out.split()[-1]


def _rewrite(db: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
    """Raw SQL by someone who first dropped the append-only triggers (SQLite)."""
    engine = create_engine(db)
    try:
        with engine.begin() as connection:
            for trigger in ("events_no_update", "events_no_delete"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
            for statement, values in statements:
                connection.execute(text(statement), values)
    finally:
        engine.dispose()


def _leaf(digest: str) -> str:
    return hashlib.sha256(b"\x00" + bytes.fromhex(digest)).hexdigest()


def _resealed(row: tuple[Any, ...], data: dict[str, Any]) -> dict[str, Any]:
    """The row with a new payload and a hash recomputed to match it."""
    event = StoredEvent(*row)._replace(data=canonical_json(data))
    return {"data": event.data, "hash": hashlib.sha256(event_bytes(event)).hexdigest(), "p": event.position}


def test_a_deleted_imported_event_is_found_even_with_the_import_record_rewritten_to_hide_it(
    workdir: Path, capsys: pytest.CaptureFixture[str], bundle: Path
) -> None:
    target = Cli(workdir, f"sqlite:///{workdir / 'target.db'}", capsys)
    assert target("init").code == 0
    assert target("audit", "import", str(bundle), now="2019-10-02T09:00").code == 0
    rows = stored_rows(target.db, "selep-lis")
    last = StoredEvent(*rows[-1])
    (mark,) = stored_rows(target.db, "$imports")
    data = json.loads(StoredEvent(*mark).data)
    # Leave the last event out, as if it never was imported: its leaf hash becomes a "filler".
    data["fillers"].append([last.position - 1, last.position, _leaf(last.hash)])
    runs = data["positions"]
    runs[-1][1] -= 1
    if runs[-1][1] < runs[-1][0]:
        runs.pop()
    _rewrite(
        target.db,
        [
            ("DELETE FROM events WHERE stream_id = 'selep-lis' AND version = :v", {"v": last.version}),
            ("UPDATE streams SET version = :v WHERE stream_id = 'selep-lis'", {"v": last.version - 1}),
            ("UPDATE events SET data = :data, hash = :hash WHERE position = :p", _resealed(mark, data)),
        ],
    )

    result = target("audit", "verify")

    assert result.code == 4, result.out
    assert "checkpoint 2 states a tree" in result.out  # the seal covers the import record


def test_an_import_record_forged_on_a_log_that_was_not_imported_explains_no_gap(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _source(workdir, capsys, "forged")
    assert source("audit", "checkpoint", now="2019-09-29T09:00").code == 0
    rows = stored_rows(source.db, "other")
    victim = StoredEvent(*rows[-1])
    engine = create_engine(source.db)
    with engine.connect() as connection:
        checkpoint = StoredEvent(
            *connection.execute(text("SELECT * FROM events WHERE stream_id = '$checkpoints'")).one()
        )
        head = connection.execute(text("SELECT position FROM log_head")).scalar_one()
    engine.dispose()
    assert head == checkpoint.position  # nothing after the checkpoint yet
    data = {
        "format": "govflow-import/1",
        "instance": "selep-lis",
        "checkpoint": {
            "version": 1,
            "position": checkpoint.position,
            "hash": checkpoint.hash,
            "prev_hash": checkpoint.prev_hash,
            "tree_size": checkpoint.position - 1,
        },
        "positions": [[p, p] for p in range(1, checkpoint.position) if p != victim.position],
        "fillers": [[victim.position - 1, victim.position, _leaf(victim.hash)]],
    }
    forged = StoredEvent("$imports", 1, head + 1, "BundleImported", 1, canonical_json(data), "{}",
                         checkpoint.recorded_at, checkpoint.recorded_at, "intruder", "", "0" * 64, "")  # fmt: skip
    forged = forged._replace(hash=hashlib.sha256(event_bytes(forged)).hexdigest())
    columns = ", ".join(COLUMNS)
    _rewrite(
        source.db,
        [
            ("DELETE FROM events WHERE position = :p", {"p": victim.position}),
            ("UPDATE streams SET version = version - 1 WHERE stream_id = 'other'", {}),
            (f"INSERT INTO events ({columns}) VALUES ({', '.join(':' + c for c in COLUMNS)})", forged._asdict()),
            ("INSERT INTO streams VALUES ('$imports', 1, 'audit', '', 'imported', 'x', 'x')", {}),
            ("UPDATE log_head SET position = position + 1", {}),
        ],
    )

    result = source("audit", "verify")

    assert result.code == 4
    assert "no checkpoint signed by the trusted key covers the import record" in result.out
    assert f"position {victim.position}" in result.out
