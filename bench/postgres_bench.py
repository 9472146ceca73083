"""The PostgreSQL figures: run only when a server is given (``--postgres URL`` or ``GOVFLOW_TEST_POSTGRES_URL``).

Each measurement gets a fresh schema of its own on that server (dropped afterwards), as
the test suite does:

- decisions per second, one commit each: ``Services.decide`` beside the raw limit,
  ``psycopg`` inserting the same payload one commit per row, the two taking turns in
  blocks of decisions so that both meet the same load from the rest of the machine;
- audit verify and replay of a log built by bulk insert, beside the raw limit (one scan,
  ``json.loads`` and a SHA-256 chain over the same rows);
- the worker's ticks and dispatch (see ``bench.worker_bench``), with 1 and with 4 worker
  processes claiming with ``FOR UPDATE SKIP LOCKED``.

The server's ``fsync`` and ``synchronous_commit`` settings are reported with the figures,
and the decisions figure's name says whether its commits were durable: a throwaway test
cluster runs without them, so its commits are not, and its raw limit is a round trip
rather than a flush. For the figures the targets speak of, give a cluster started with
``scripts/pg-cluster start DIR --durable``. Each group of figures has its own name in
``bench/run.py`` (``postgres-decisions``, ``postgres-audit``, ``postgres-worker``;
``postgres`` for all three).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import create_engine, make_url

from bench import audit_bench, decisions, worker_bench
from bench.common import Figure, Series, interleaved, paired, rate, scratch

WORKERS = 4
BLOCKS: Final = 20
"""Turns taken by each contender per repeat of the decisions figure."""


@contextmanager
def schema(server: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema on ``server``; the schema is dropped afterwards."""
    name = f"govflow_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = make_url(server).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        admin.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class ServerSettings:
    """What decides whether a commit on a connection waits for its WAL to reach the disk."""

    version: str
    fsync: str
    synchronous_commit: str

    @property
    def durable(self) -> bool:
        """A commit returns once its WAL is flushed (``local``, ``remote_write`` and the like flush locally too)."""
        return self.fsync == "on" and self.synchronous_commit != "off"

    def __str__(self) -> str:
        durability = "durable commits" if self.durable else "commits NOT durable"
        return (
            f"PostgreSQL {self.version}, fsync={self.fsync}, synchronous_commit={self.synchronous_commit} "
            f"({durability})"
        )


_SHOW: Final = ("server_version", "fsync", "synchronous_commit")


def read_settings(show: Callable[[str], object]) -> ServerSettings:
    """The settings as a connection sees them (a role, a database or the URL may change them)."""
    return ServerSettings(*(str(show(name)) for name in _SHOW))


def settings(server: str) -> ServerSettings:
    import psycopg

    with psycopg.connect(_libpq(server)) as connection:
        return read_settings(lambda name: _one(connection.execute(f"SHOW {name}").fetchone()))


def _one(row: Any) -> object:
    assert row is not None
    return row[0]


@contextmanager
def raw_inserter(url: str) -> Iterator[tuple[Callable[[int], None], ServerSettings]]:
    """``insert(index)``: ``psycopg`` inserting the decision payload as row ``index``, one commit each.

    Also gives the settings of its connection.
    """
    import psycopg

    payload = json.dumps(decisions.DECISION | {"quorum": {"members": 1}, "votes": {}}, sort_keys=True)
    # Autocommit: each INSERT is its own transaction, one round trip (BEGIN and COMMIT of
    # their own would be three), the fastest one-commit-per-row psycopg has.
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("CREATE TABLE raw_events (stream_id TEXT, version INTEGER, data TEXT, "
                           "PRIMARY KEY (stream_id, version))")  # fmt: skip
        seen = read_settings(lambda name: _one(connection.execute(f"SHOW {name}").fetchone()))

        def insert(index: int) -> None:
            connection.execute("INSERT INTO raw_events VALUES (%s, %s, %s)", (f"lis-{index}", 1, payload))

        yield insert, seen


def engine_settings(url: str) -> ServerSettings:
    """The settings of a connection made as govflow makes them (``make_engine``)."""
    from workflows.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return read_settings(lambda name: connection.exec_driver_sql(f"SHOW {name}").scalar_one())
    finally:
        engine.dispose()


def decisions_figure(server: str, count: int, repeats: int) -> Figure:
    """``Services.decide`` and the raw ``psycopg`` limit, taking turns in blocks (see ``bench.common.interleaved``).

    Each repeat gives each contender a fresh schema; the settings are read on each
    contender's own connections, and the figure's name says whether the commits were durable.
    """
    govflow_runs, limit_runs = [], []
    seen: set[ServerSettings] = set()
    for _ in range(repeats):
        with schema(server) as govflow_url, schema(server) as raw_url:
            seen.add(engine_settings(govflow_url))
            with decisions.govflow_decider(count, govflow_url) as decide, raw_inserter(raw_url) as (insert, raw):
                seen.add(raw)
                govflow_seconds, raw_seconds = interleaved([decide, insert], count, BLOCKS)
        govflow_runs.append(rate(count, govflow_seconds))
        limit_runs.append(rate(count, raw_seconds))
    if len(seen) != 1:
        raise RuntimeError(f"the contenders' connections differ: {', '.join(sorted(map(str, seen)))}")
    (server_settings,) = seen
    commit = "one durable commit each" if server_settings.durable else "one commit each, NOT durable"
    return Figure(
        figure=(
            f"decisions recorded per second, {commit} (PostgreSQL, fsync={server_settings.fsync}, "
            f"synchronous_commit={server_settings.synchronous_commit})"
        ),
        unit="decisions/s",
        higher_is_better=True,
        govflow=Series("govflow Services.decide", govflow_runs),
        limit=Series("psycopg insert, one commit each", limit_runs),
        target="≥ 50% of the limit (durable commits)",
        notes=(
            f"{server_settings}; govflow and the limit take turns, {BLOCKS} blocks of decisions each per repeat; "
            f"{paired(govflow_runs, limit_runs, 'govflow / limit')}"
        ),
    )


def build_log(url: str, total: int) -> tuple[Any, bytes]:
    """The audit benchmark's log (hash-chained, checkpointed) in the database at ``url``."""
    import psycopg

    from workflows.audit import ledger, signing
    from workflows.audit.log import SqlAuditLog
    from workflows.audit.records import COLUMNS
    from workflows.database import make_engine, migrate
    from workflows.definition_file import find_definition
    from workflows.store.sql import SqlEventStore

    definition, events = audit_bench.template()
    migrate(url)
    with psycopg.connect(_libpq(url)) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in audit_bench._rows(definition, events, total):
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO streams SELECT stream_id, MAX(version), %s, %s, 'agreed', MIN(recorded_at), MAX(recorded_at) "
            "FROM events GROUP BY stream_id",
            (definition.id, definition.content_hash),
        )
        cursor.execute("UPDATE log_head SET position = (SELECT MAX(position) FROM events)")
        cursor.execute("SELECT MAX(recorded_at) FROM events")
        stamp = cursor.fetchone()
    assert stamp is not None
    engine = make_engine(url)
    with scratch("pg-key") as folder:
        store = SqlEventStore(engine)
        text = find_definition("selep-lis-2019", []).read_text(encoding="utf-8")
        store.save_definition(definition.content_hash, definition.id, definition.version, text)
        signing.ensure_key(folder / "bench.key")
        signer = signing.load_signer(folder / "bench.key")
        now = datetime.fromisoformat(stamp[0]) + timedelta(days=1)
        log = SqlAuditLog(engine)
        ledger.create_checkpoint(
            store, log, public_key=signer.public_key, sign=signer.sign, now=now, actor="b", meta={}
        )
    engine.dispose()
    return definition, signer.public_key


def raw_scan(url: str) -> tuple[int, float]:
    """One scan of the rows with ``json.loads`` and a SHA-256 chain: the limit of reading the log."""
    import psycopg

    count = 0
    started = time.process_time()
    with psycopg.connect(_libpq(url)) as connection, connection.cursor(name="scan") as cursor:
        cursor.itersize = 10_000
        cursor.execute("SELECT * FROM events ORDER BY position")
        chain = b"\0" * 32
        loads, sha256 = json.loads, hashlib.sha256
        for row in cursor:
            loads(row[5])
            chain = sha256(chain + row[5].encode()).digest()
            count += 1
    return count, time.process_time() - started


def audit_figures(server: str, total: int, repeats: int, note: str) -> list[Figure]:
    verify = Figure(
        figure=f"audit verify of a {total:,}-event log (PostgreSQL)",
        unit="events/s",
        higher_is_better=True,
        govflow=Series("govflow audit verify"),
        limit=Series("scan + json.loads + SHA-256 chain"),
        target="≥ 60% of the raw limit",
        notes=f"{note}; CPU seconds of this process",
    )
    replay = Figure(
        figure=f"replay (fold every instance) of a {total:,}-event log (PostgreSQL)",
        unit="events/s",
        higher_is_better=True,
        govflow=Series("govflow replay"),
        limit=Series("scan + json.loads + SHA-256 chain"),
        target="≥ 60% of the raw limit",
        notes=verify.notes,
    )
    assert verify.limit is not None and replay.limit is not None
    with schema(server) as url:
        definition, trusted = build_log(url, total)
        for _ in range(repeats):
            verify.govflow.values.append(rate(*audit_bench.govflow_verify(url, trusted)))
            replay.govflow.values.append(rate(*audit_bench.govflow_replay(url, definition)))
            limit = rate(*raw_scan(url))
            verify.limit.values.append(limit)
            replay.limit.values.append(limit)
    return [verify, replay]


def _tick_process(url: str, port: int, name: str, now: str, barrier: Any, results: Any) -> None:
    """One worker process: wait for the others, tick once, report what it sent and when it finished."""
    from types import SimpleNamespace

    worker = worker_bench.worker(url, SimpleNamespace(port=port), name)
    worker.tick(worker_bench.QUIET)  # warm up outside the measurement
    barrier.wait(120)
    report = worker.tick(datetime.fromisoformat(now))
    results.put((name, report.delivery.sent, report.claimed, time.perf_counter()))
    worker.services.store.engine.dispose()


def dispatch(url: str, sink: Any, workers: int, now: datetime) -> tuple[int, float, list[int]]:
    """``workers`` processes ticking at once: (sent, seconds from the start to the last one done, each's claims)."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(workers + 1)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_tick_process, args=(url, sink.port, f"w{number}", now.isoformat(), barrier, results))
        for number in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait(120)
    started = time.perf_counter()
    done = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(60)
    seconds = max(finished for *_, finished in done) - started
    return sum(sent for _, sent, _, _ in done), seconds, [claimed for _, _, claimed, _ in done]


def worker_figures(server: str, instances: int, due: int, repeats: int, note: str) -> list[Figure]:
    """The tick figures on PostgreSQL, and the dispatch rate with 1 and with 4 worker processes."""
    from workflows.database import make_engine

    with schema(server) as url:
        figures = worker_bench.measure(lambda _folder: url, instances, due, repeats, "PostgreSQL")
    per_worker = {
        count: Figure(
            figure=f"worker dispatch, {count} worker process{'es' if count > 1 else ''} (PostgreSQL)",
            unit="emails/s",
            higher_is_better=True,
            govflow=Series(f"govflow, {count} worker{'s' if count > 1 else ''}"),
            limit=Series("smtplib, pre-built messages, one connection"),
            target="more workers, more emails (until the SMTP server is the limit)",
            notes=note,
        )
        for count in (1, WORKERS)
    }
    with scratch("pg-dispatch") as folder, schema(server) as url, worker_bench.mail_sink(folder) as sink:
        worker_bench.populate(url, instances)
        engine = make_engine(url)
        probe = worker_bench.worker(url, sink, "probe")
        step = 0
        try:
            for _ in range(repeats):
                for count, figure in per_worker.items():
                    step += 1
                    now = worker_bench.quiet_moment(step)
                    made = worker_bench.make_due(engine, due, now)
                    messages = worker_bench.prebuilt(engine, probe, now)
                    sent, seconds, _claims = dispatch(url, sink, count, now)
                    assert sent == made, (sent, made)
                    figure.govflow.values.append(sent / seconds)
                    assert figure.limit is not None
                    figure.limit.values.append(len(messages) / worker_bench.raw_smtp(sink, messages))
        finally:
            probe.services.store.engine.dispose()
            engine.dispose()
    return [*figures, *per_worker.values()]


def measure_decisions(server: str, quick: bool, repeats: int) -> list[Figure]:
    return [decisions_figure(server, 100 if quick else 1000, repeats)]


def measure_audit(server: str, quick: bool, repeats: int) -> list[Figure]:
    return audit_figures(server, 5_000 if quick else 100_000, repeats, str(settings(server)))


def measure_worker(server: str, quick: bool, repeats: int) -> list[Figure]:
    return worker_figures(server, 200 if quick else 10_000, 40 if quick else 1000, repeats, str(settings(server)))
