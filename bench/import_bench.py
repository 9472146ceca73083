"""Bulk import: ``govflow audit import`` of a big bundle, beside ``eventsourcing`` and the raw limit.

The bundle is one instance with many events (the domain's own: a start, then document
versions), whose positions interleave with another instance's, exported with a signed
checkpoint from a SQLite log built by bulk insert. Then, each repeat, interleaved:

- govflow: ``import_bundle`` into a fresh SQLite file (WAL, synchronous=FULL): the offline
  verification (every line canonical, every hash, link and inclusion proof, the signature,
  the replay) and the load in one transaction (``executemany``, 1,000 rows a batch);
- eventsourcing: one aggregate recording the same payloads, ``app.save`` every 1,000 events;
- raw limit: ``sqlite3`` ``executemany`` of the bundle's rows (the same bytes) into a table
  of the same shape, 1,000 rows per commit.

Rates are events per second of wall time (each contender writes durably to a file).
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from bench.common import Figure, Series, rate, scratch, timed

OTHER_EVERY = 4  # one position in four belongs to another instance: the bundle's positions have gaps
BATCH = 1000


def _texts(count: int) -> tuple[Any, list[tuple[str, str, str]]]:
    """The definition and ``count`` events of one instance as stored texts (type, data, occurred_at)."""
    from governance import commands
    from governance.chain import canonical_json, format_timestamp
    from workflows.bank_holidays import england_and_wales_bank_holidays
    from workflows.definition_file import find_definition, load_definition

    definition = load_definition(find_definition("selep-lis-2019", []))
    now = datetime(2019, 6, 3, 9, tzinfo=UTC)
    instance, events = commands.start("big", definition, now, england_and_wales_bank_holidays(2019, 2021))
    for number in range(count - 1):
        events += commands.add_document(instance, f"{number:064x}", f"draft-{number}.pdf", 1000 + number, now)
    return definition, [(e.type, canonical_json(e.data), format_timestamp(e.occurred_at)) for e in events]


def build_bundle(folder: Path, count: int) -> tuple[Path, bytes, list[tuple[str, str, str]]]:
    """A bundle of ``count`` events in ``folder``; also the signer's public key and the event texts."""
    from bench.audit_bench import checkpoint_log
    from governance.chain import GENESIS_HASH, canonical_json, format_timestamp
    from workflows.audit.bundle import export_bundle
    from workflows.audit.log import SqlAuditLog
    from workflows.audit.records import COLUMNS, StoredEvent, event_bytes
    from workflows.database import make_engine, migrate
    from workflows.store.sql import SqlEventStore

    definition, texts = _texts(count)
    meta = canonical_json({"clock": "simulated", "source": "bench"})
    stamp = format_timestamp(datetime(2019, 6, 3, 9, tzinfo=UTC))
    heads = {"big": (0, GENESIS_HASH), "other": (0, GENESIS_HASH)}
    rows: list[StoredEvent] = []
    position = 0
    for kind, data, occurred in texts:
        streams = ["big"] if (position + 1) % OTHER_EVERY else ["other", "big"]
        for stream in streams:
            position += 1
            version, prev = heads[stream]
            row = StoredEvent(stream, version + 1, position, kind, 1, data, meta, occurred, stamp, "bench",
                              definition.content_hash, prev, "")  # fmt: skip
            if stream == "other" and version == 0:
                row = row._replace(type=texts[0][0], data=texts[0][1].replace('"big"', '"other"'))
            row = row._replace(hash=hashlib.sha256(event_bytes(row)).hexdigest())
            heads[stream] = (row.version, row.hash)
            rows.append(row)
    url = f"sqlite:///{folder / 'source.db'}"
    migrate(url)
    connection = sqlite3.connect(folder / "source.db", isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN")
    connection.executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 13)})", rows)
    connection.executemany(
        "INSERT INTO streams VALUES (?, ?, ?, ?, 'drafting', ?, ?)",
        [(s, v, definition.id, definition.content_hash, stamp, stamp) for s, (v, _) in heads.items()],
    )
    connection.execute("UPDATE log_head SET position = ?", (position,))
    connection.execute("COMMIT")
    connection.close()
    engine = make_engine(url)
    try:
        now = datetime(2019, 6, 4, tzinfo=UTC)
        signer = checkpoint_log(engine, folder, definition, now)
        bundle = folder / "big.jsonl"
        exported_at = format_timestamp(now + timedelta(hours=1))
        export_bundle(SqlEventStore(engine), SqlAuditLog(engine), "big", bundle, exported_at=exported_at)
    finally:
        engine.dispose()
    return bundle, signer.public_key, [(r.type, r.data, r.occurred_at) for r in rows if r.stream_id == "big"]


def govflow(folder: Path, bundle: Path, trusted: bytes, url: str) -> tuple[int, float]:
    """Events imported per second into a fresh database at ``url`` (migrated beforehand, not timed)."""
    from workflows.audit import signing
    from workflows.audit.importer import Signing, import_bundle
    from workflows.database import make_engine, migrate

    migrate(url)
    engine = make_engine(url)
    signer = signing.load_signer(folder / "bench.key")
    done: list[Any] = []
    now = datetime(2019, 6, 5, tzinfo=UTC)

    def run() -> None:
        done.append(
            import_bundle(
                engine,
                bundle,
                trusted_key=trusted,
                verify=signing.verify,
                signing=Signing(signer.public_key, signer.sign),
                now=now,
                actor="bench",
                meta={},
            )
        )

    seconds = timed(run)
    engine.dispose()
    return done[0].events, seconds


def raw_limit(folder: Path, bundle: Path) -> tuple[int, float]:
    """``executemany`` of the bundle's rows (the same bytes), 1,000 per commit, into the same shape of table."""
    from workflows.audit.offline import BundleContents, verify_bundle

    contents = BundleContents()
    verify_bundle(bundle, keep=contents)  # parsing is not timed: the limit is the writing
    rows = contents.events
    path = folder / "raw.db"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE events (stream_id VARCHAR(200), version INTEGER, position BIGINT UNIQUE, type VARCHAR(200), "
        "schema_version INTEGER, data TEXT, meta TEXT, occurred_at TEXT, recorded_at TEXT, actor TEXT, "
        "definition_hash VARCHAR(64), prev_hash VARCHAR(64), hash VARCHAR(64), PRIMARY KEY (stream_id, version))"
    )

    def run() -> None:
        for start in range(0, len(rows), BATCH):
            connection.execute("BEGIN")
            connection.executemany(f"INSERT INTO events VALUES ({', '.join('?' * 13)})", rows[start : start + BATCH])
            connection.execute("COMMIT")

    seconds = timed(run)
    connection.close()
    return len(rows), seconds


@cache
def _aggregate_class() -> Any:
    """The eventsourcing aggregate, defined once (the library registers each class by topic)."""
    from eventsourcing.domain import Aggregate, event

    class Imported(Aggregate):  # type: ignore[misc]
        @event("Started")  # type: ignore[misc]
        def __init__(self, data: dict[str, Any]) -> None:
            self.count = 1

        @event("Happened")  # type: ignore[misc]
        def happen(self, kind: str, data: dict[str, Any]) -> None:
            self.count += 1

    return Imported


def eventsourcing(folder: Path, texts: list[tuple[str, str, str]]) -> tuple[int, float] | None:
    """One aggregate recording the same payloads, saved every 1,000 events."""
    import json

    try:
        from eventsourcing.application import Application
    except ImportError:
        return None
    path = folder / "es.db"
    path.unlink(missing_ok=True)
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    payloads = [(kind, json.loads(data)) for kind, data, _ in texts]
    aggregate_class = _aggregate_class()

    def run() -> None:
        aggregate = aggregate_class(payloads[0][1])
        for start in range(1, len(payloads), BATCH):
            for kind, data in payloads[start : start + BATCH]:
                aggregate.happen(kind, data)
            app.save(aggregate)

    seconds = timed(run)
    app.close()
    return len(payloads), seconds


def measure(count: int, repeats: int) -> Figure:
    """The bulk-import figure for a bundle of ``count`` events."""
    figure = Figure(
        figure=f"bulk import of a {count:,}-event bundle (`audit import`, SQLite, synchronous=FULL)",
        unit="events/s",
        higher_is_better=True,
        govflow=Series("govflow audit import (verify + load)"),
        peers=[Series("eventsourcing, 1,000 events per save")],
        limit=Series("sqlite3 executemany, 1,000 rows per commit"),
        target="(no target set) govflow also verifies every hash, proof, the signature and the replay",
    )
    with scratch("import") as folder:
        bundle, trusted, texts = build_bundle(folder, count)
        for repeat in range(repeats):
            target = folder / f"target-{repeat}.db"
            figure.govflow.values.append(rate(*govflow(folder, bundle, trusted, f"sqlite:///{target}")))
            assert figure.limit is not None
            figure.limit.values.append(rate(*raw_limit(folder, bundle)))
            peer = eventsourcing(folder, texts)
            if peer is not None:
                figure.peers[0].values.append(rate(*peer))
        figure.notes = (
            f"bundle: {bundle.stat().st_size / 1e6:.1f} MB, positions interleaved 3 in 4 with another instance"
        )
    return figure
