"""Audit benchmark: verify and replay rates over a large log, beside a peer and the raw limit.

    python bench/audit_bench.py [--events 100000] [--repeats 3] [--out bench/results]

Builds a SQLite log of ``--events`` events (LIS instances walked from start to
agreement, their events interleaved in the global order as concurrent work would be)
by bulk insert, with every hash chained and a signed checkpoint at the end. Then,
``--repeats`` times each, interleaved so that noise hits all alike:

- govflow verify: ``audit verify`` of the whole log (seals, chains, positions,
  Merkle tree head against the signed checkpoint, log head, projections);
- govflow replay: fold every instance from one pass over the log;
- eventsourcing replay: the ``eventsourcing`` library (SQLite) rebuilding aggregates
  that hold the same number of events with the same payloads;
- raw limit: one cursor over the same rows, ``json.loads`` of each payload and a
  SHA-256 chain over the payload bytes, in a tight loop.

Rates are events per CPU second of this process (all contenders run in it, and CPU time
is steadier than wall time on a shared machine); the JSON written to ``--out`` holds
every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(ROOT))

from bench.common import Figure, Series, rate, scratch  # noqa: E402

WAVE = 200  # instances whose events interleave in the global order


def timed(action: Any) -> float:
    """CPU seconds of this process taken by ``action``: on a shared machine, steadier than wall time."""
    start = time.process_time()
    action()
    return time.process_time() - start


def template() -> tuple[Any, list[Any]]:
    """One LIS instance walked from start to agreement: the domain's own events."""
    from governance import commands
    from governance.quorum import DecisionInput
    from workflows.bank_holidays import england_and_wales_bank_holidays
    from workflows.definition_file import find_definition, load_definition

    definition = load_definition(find_definition("selep-lis-2019", []))
    now = datetime(2019, 6, 3, 9, tzinfo=UTC)
    instance, events = commands.start("template", definition, now, england_and_wales_bank_holidays(2019, 2021))

    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 15, tzinfo=UTC) + timedelta(days=1)

    def decide(gate: str, body: str, day: date, **votes: Any) -> None:
        mode = {"secretariat": "delegated", "government": "external"}.get(body)
        outcome = "approved" if body in ("secretariat", "government", "strategic-board") else "endorsed"
        decision = DecisionInput(gate, body, outcome, day, mode, authority="SB/2019/06/3", **votes)
        events.extend(commands.record_decision(instance, decision, at(day)))

    def tasks(phase: str, day: date) -> None:
        for task in definition.phase_by_id[phase].tasks:
            events.extend(commands.complete_task(instance, task.id, at(day)))

    tasks("scoping", date(2019, 7, 24))
    decide("approach-agreed", "secretariat", date(2019, 7, 26))
    tasks("evidence", date(2019, 9, 13))
    for body in ("team-east-sussex", "success-essex", "ose", "kmep"):
        decide("evidence-agreed", body, date(2019, 9, 24), present=12, votes_for=12, against=0)
    decide("structure-agreed", "strategic-board", date(2019, 10, 4), present=20, votes_for=18, against=0, abstain=2)
    events.extend(commands.add_document(instance, "a" * 64, "lis-draft.pdf", 1000, at(date(2019, 11, 1))))
    tasks("drafting", date(2019, 11, 1))
    for body in ("ose", "success-essex", "team-east-sussex", "kmep"):
        decide("federated-endorsement", body, date(2019, 11, 26), present=12, votes_for=12, against=0)
    decide("final-agreement", "strategic-board", date(2019, 12, 13), present=18, votes_for=18, against=0)
    tasks("sign-off", date(2019, 12, 16))
    decide("priorities-agreed", "government", date(2019, 12, 18))
    tasks("negotiation", date(2020, 3, 2))
    decide("lis-agreed", "government", date(2020, 3, 20))
    return definition, events


def _rows(definition: Any, events: list[Any], total: int) -> Any:
    """Sealed rows for ``total`` events: copies of the template, interleaved wave by wave."""
    from governance.chain import GENESIS_HASH, canonical_json, format_timestamp
    from workflows.audit.records import StoredEvent, event_bytes

    texts = [(e.type, canonical_json(e.data), format_timestamp(e.occurred_at)) for e in events]
    per = len(texts)
    instances = max(1, total // per)
    meta = canonical_json({"clock": "simulated", "source": "bench"})
    position = 0
    for wave in range(0, instances, WAVE):
        members = range(wave, min(wave + WAVE, instances))
        heads = dict.fromkeys(members, GENESIS_HASH)
        for version, (kind, data, occurred) in enumerate(texts, start=1):
            for member in members:
                position += 1
                row = StoredEvent(
                    f"lis-{member:07d}", version, position, kind, 1, data, meta, occurred, occurred,
                    "bench", definition.content_hash, heads[member], "",
                )  # fmt: skip
                digest = hashlib.sha256(event_bytes(row)).hexdigest()
                heads[member] = digest
                yield row._replace(hash=digest)


def build(folder: Path, total: int) -> tuple[str, Any, list[Any], bytes]:
    """The log in ``folder``: its URL, the definition, the template events and the trusted key."""
    from workflows.audit.records import COLUMNS
    from workflows.database import make_engine, migrate

    definition, events = template()
    url = f"sqlite:///{folder / 'audit.db'}"
    migrate(url)
    connection = sqlite3.connect(folder / "audit.db", isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN")
    columns = ", ".join(COLUMNS)
    connection.executemany(
        f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 13)})", _rows(definition, events, total)
    )
    count, stamp = connection.execute("SELECT MAX(position), MAX(recorded_at) FROM events").fetchone()
    connection.execute(
        "INSERT INTO streams SELECT stream_id, MAX(version), ?, ?, 'agreed', MIN(recorded_at), MAX(recorded_at) "
        "FROM events GROUP BY stream_id",
        (definition.id, definition.content_hash),
    )
    connection.execute("UPDATE log_head SET position = ?", (count,))
    connection.execute("COMMIT")
    connection.close()
    engine = make_engine(url)
    try:
        signer = checkpoint_log(engine, folder, definition, datetime.fromisoformat(stamp) + timedelta(days=1))
    finally:
        engine.dispose()
    return url, definition, events, signer.public_key


def checkpoint_log(engine: Any, folder: Path, definition: Any, now: datetime) -> Any:
    """Store the LIS definition's text and sign a checkpoint of the bulk-built log; the signer.

    The key lives in ``folder`` (never the working folder's configured key).
    """
    from workflows.audit import ledger, signing
    from workflows.audit.log import SqlAuditLog
    from workflows.definition_file import find_definition
    from workflows.store.sql import SqlEventStore

    store = SqlEventStore(engine)
    text = find_definition("selep-lis-2019", []).read_text(encoding="utf-8")
    store.save_definition(definition.content_hash, definition.id, definition.version, text)
    signing.ensure_key(folder / "bench.key")
    signer = signing.load_signer(folder / "bench.key")
    ledger.create_checkpoint(
        store, SqlAuditLog(engine), public_key=signer.public_key, sign=signer.sign, now=now, actor="bench", meta={}
    )
    return signer


def govflow_verify(url: str, trusted: bytes) -> tuple[int, float]:
    from workflows.audit import signing
    from workflows.audit.log import SqlAuditLog
    from workflows.audit.verify import verify_log
    from workflows.database import make_engine

    engine = make_engine(url)
    report: list[Any] = []
    seconds = timed(lambda: report.append(verify_log(SqlAuditLog(engine), trusted, signing.verify)))
    engine.dispose()
    assert report[0].ok, [str(f) for f in report[0].findings[:5]]
    return report[0].events, seconds


def govflow_replay(url: str, definition: Any) -> tuple[int, float]:
    from workflows.audit.log import SqlAuditLog
    from workflows.audit.replay import replay_log
    from workflows.database import make_engine

    engine = make_engine(url)
    folded: list[Any] = []
    seconds = timed(lambda: folded.append(replay_log(SqlAuditLog(engine).iter_fold_rows(), lambda _hash: definition)))
    engine.dispose()
    instances = folded[0]
    assert all(i.phase == "agreed" for i in instances.values())
    return sum(i.version for i in instances.values()), seconds


def raw_limit(url: str) -> tuple[int, float]:
    """Scan, ``json.loads`` and a SHA-256 chain over the same rows: the machine's limit."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    count = 0

    def run() -> None:
        nonlocal count
        chain = b"\0" * 32
        loads, sha256 = json.loads, hashlib.sha256
        for row in connection.execute("SELECT * FROM events ORDER BY position"):
            loads(row[5])
            chain = sha256(chain + row[5].encode()).digest()
            count += 1

    seconds = timed(run)
    connection.close()
    return count, seconds


@cache
def _aggregate_class() -> Any:
    """The eventsourcing aggregate, defined once (the library registers each class by topic)."""
    from eventsourcing.domain import Aggregate, event

    class Lis(Aggregate):  # type: ignore[misc]
        @event("Started")  # type: ignore[misc]
        def __init__(self, data: dict[str, Any]) -> None:
            self.started = data
            self.facts: list[dict[str, Any]] = []

        @event("Happened")  # type: ignore[misc]
        def happen(self, kind: str, data: dict[str, Any]) -> None:
            self.facts.append(data)

    return Lis


def eventsourcing_replay(folder: Path, events: list[Any], total: int) -> tuple[int, float] | None:
    """Rebuild aggregates of the same events (same payloads) with the eventsourcing library."""
    try:
        from eventsourcing.application import Application
    except ImportError:
        return None
    lis = _aggregate_class()
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "es.db")}
    app = Application(env=env)
    ids = []
    for _ in range(max(1, total // len(events))):
        aggregate = lis(events[0].data)
        for item in events[1:]:
            aggregate.happen(item.type, item.data)
        app.save(aggregate)
        ids.append(aggregate.id)
    replayed = 0

    def run() -> None:
        nonlocal replayed
        for ident in ids:
            replayed += app.repository.get(ident).version

    seconds = timed(run)
    app.close()
    return replayed, seconds


def measure(total: int, repeats: int) -> list[Figure]:
    """The verify and replay figures for a log of ``total`` events."""
    verify = Figure(
        figure=f"audit verify of a {total:,}-event log (SQLite)",
        unit="events/s",
        higher_is_better=True,
        govflow=Series("govflow audit verify"),
        peers=[Series("eventsourcing replay")],
        limit=Series("scan + json.loads + SHA-256 chain"),
        target="≥ 60% of the raw limit, ≥ 4× eventsourcing",
    )
    replay = Figure(
        figure=f"replay (fold every instance) of a {total:,}-event log (SQLite)",
        unit="events/s",
        higher_is_better=True,
        govflow=Series("govflow replay"),
        peers=[Series("eventsourcing replay")],
        limit=Series("scan + json.loads + SHA-256 chain"),
        target="≥ 60% of the raw limit, ≥ 4× eventsourcing",
    )
    with scratch("audit") as folder:
        started = timed(lambda: None)
        built: list[Any] = []
        build_seconds = timed(lambda: built.append(build(folder, total)))
        url, definition, events, trusted = built[0]
        for _ in range(repeats):
            verify.govflow.values.append(rate(*govflow_verify(url, trusted)))
            replay.govflow.values.append(rate(*govflow_replay(url, definition)))
            limit = rate(*raw_limit(url))
            assert verify.limit is not None and replay.limit is not None
            verify.limit.values.append(limit)
            replay.limit.values.append(limit)
            peer = eventsourcing_replay(folder, events, total)
            if peer is not None:
                verify.peers[0].values.append(rate(*peer))
                replay.peers[0].values.append(rate(*peer))
            (folder / "es.db").unlink(missing_ok=True)
    note = f"log built in {build_seconds + started:.1f} s by bulk insert; {len(events)} events per instance"
    if not replay.peers[0].values:
        note += "; eventsourcing not installed (pip install -e '.[bench]')"
    verify.notes = replay.notes = note
    return [verify, replay]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    figures = measure(args.events, args.repeats)
    results = [f.as_json() for f in figures]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"audit-{args.events}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for item in results:
        peer = item["ratio_to_peer"]
        print(
            f"{item['figure']}: {item['govflow']['value']:,.0f} {item['unit']}; "
            f"{item['ratio_to_limit']:.0%} of the raw limit ({item['limit']['value']:,.0f}); "
            + (f"{peer:.1f}× eventsourcing ({item['peer']['value']:,.0f})" if peer else "no peer measured")
        )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
