"""The reminder worker under load and faults on PostgreSQL, and the query plans of a tick on both databases.

- Four worker processes dispatch 5,000 due notifications to the embedded SMTP server at
  once: each is claimed by one of them (``FOR UPDATE SKIP LOCKED``), sent once, and
  recorded once.
- The server restarts in the middle of a tick (a cluster of the test's own): the tick
  completes or fails with one clear line, and the next ticks carry on; every notification
  is recorded once, and the only messages that may arrive twice are those whose record was
  in flight at the restart (the sends of one instance in one batch, recorded by one
  append), each with the same Message-ID and bytes (what the design promises).
- With 10,000 planned instances and nothing due, every query of a tick reads an index,
  never the whole outbox or log (``EXPLAIN``; no timing is asserted).

The outbox is filled with ``bench.worker_bench.populate``: the rows the outbox's own
``notice_values`` makes for a real plan, given to many instances by bulk insert.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bench.worker_bench import QUIET, make_due, populate
from governance.events import NOTIFICATION_SENT
from notifications.errors import NotificationError
from notifications.mailer import SmtpMailer, SmtpSettings, Submission
from notifications.sink import MailSink
from tests.throwaway_cluster import Cluster, discard_cluster, start_cluster
from workflows.clock import FixedClock
from workflows.database import make_engine
from workflows.errors import StoreError
from workflows.services import Services
from workflows.store import sql
from workflows.store.schema import events, notifications
from workflows.store.sealing import seal
from workflows.store.sql import SqlEventStore
from workflows.worker import Worker, WorkerSettings

SENDER = "govflow@selep.example"
DUE = 5000
WORKERS = 4
NOW = QUIET + timedelta(days=1)
_MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>]+>)", re.MULTILINE | re.IGNORECASE)


def _worker(url: str, port: int, name: str, **settings: int) -> Worker:
    engine = make_engine(url)
    clock = FixedClock(NOW)
    services = Services(SqlEventStore(engine, clock=clock.now), clock, source="test")
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, sender=SENDER, timeout=30))
    options = {"batch_size": 100, "lease_seconds": 60, **settings}
    return Worker(services, mailer, sender=SENDER, settings=WorkerSettings(worker_id=name, **options))


def _statements(engine: Engine) -> list[str]:
    """Every SQL statement the engine runs from now on."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    return seen


def _dispatch(url: str, port: int, name: str, barrier: Any, results: Any) -> None:
    """One worker process: tick once at NOW with the others; report its claims and the claim SQL."""
    try:
        worker = _worker(url, port, name)
        seen = _statements(worker.services.store.engine)  # type: ignore[attr-defined]
        barrier.wait(120)
        report = worker.tick(NOW)
        claims = [s for s in seen if s.lstrip().startswith("UPDATE notifications") and "RETURNING" in s]
        results.put((name, report.claimed, report.delivery.sent, claims, None))
        worker.services.store.engine.dispose()  # type: ignore[attr-defined]
    except Exception as error:  # reported to the test, which fails on it
        results.put((name, 0, 0, [], f"{type(error).__name__}: {error}"))


def _maildir_ids(folder: Path) -> Counter[str]:
    """Message-IDs of every message in the Maildir (read raw: 5,000 messages parse slowly)."""
    found: Counter[str] = Counter()
    for path in (folder / "new").iterdir():
        match = _MESSAGE_ID.search(path.read_bytes())
        assert match is not None, path
        found[match.group(1).decode()] += 1
    return found


def _copies(folder: Path, message_id: str) -> set[bytes]:
    """The distinct contents of the messages with this Message-ID, without the sink's three trace headers."""
    found = set()
    for path in (folder / "new").iterdir():
        data = path.read_bytes()
        if message_id.encode() in data:
            found.add(data.split(b"\n", 3)[3])
    return found


def _sent_events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(events.c.data).where(events.c.stream_id.like("notifications:%"), events.c.type == NOTIFICATION_SENT)
        ).all()
    return [json.loads(row[0]) for row in rows]


def _states(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        return Counter(str(row[0]) for row in connection.execute(select(notifications.c.state)))


@pytest.mark.slow
@pytest.mark.postgres
def test_four_worker_processes_send_five_thousand_due_notifications_each_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    populate(postgres_url, instances=DUE // 229 + 1)
    engine = make_engine(postgres_url)
    try:
        assert make_due(engine, DUE, NOW) == DUE
        spawn = multiprocessing.get_context("spawn")
        barrier, results = spawn.Barrier(WORKERS), spawn.Queue()
        with MailSink(tmp_path / "mail") as sink:
            processes = [
                spawn.Process(target=_dispatch, args=(postgres_url, sink.port, f"w{n}", barrier, results))
                for n in range(WORKERS)
            ]
            for process in processes:
                process.start()
            try:
                reports = [results.get(timeout=600) for _ in processes]
            except queue.Empty:
                pytest.fail("a worker process did not report")
            finally:
                for process in processes:
                    process.join(60)
                    if process.is_alive():
                        process.terminate()

        assert [error for *_, error in reports if error] == []
        claimed = {name: count for name, count, *_ in reports}
        assert sum(claimed.values()) == DUE and sum(sent for _, _, sent, _, _ in reports) == DUE
        assert sum(1 for count in claimed.values() if count) >= 2, claimed  # they shared the work
        claim_sql = [sql for *_, sqls, _ in reports for sql in sqls]
        assert claim_sql and all("FOR UPDATE SKIP LOCKED" in sql for sql in claim_sql)
        arrived = _maildir_ids(tmp_path / "mail")
        recorded = _sent_events(engine)
        assert len(arrived) == DUE and set(arrived.values()) == {1}
        assert len(recorded) == DUE and len({e["key"] for e in recorded}) == DUE
        assert {e["message_id"] for e in recorded} == set(arrived)
        states = _states(engine)
        assert states["sent"] == DUE and set(states) <= {"sent", "planned"}  # planned: the rows not made due
    finally:
        engine.dispose()


class RestartingMailer:
    """The real mailer; after the ``at``-th accepted message, ``fault()`` runs (a server restart)."""

    def __init__(self, inner: SmtpMailer, at: int, fault: Any) -> None:
        self.inner, self.at, self.fault, self.sent = inner, at, fault, 0

    def __enter__(self) -> RestartingMailer:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)

    def send(self, message: Any) -> str:
        message_id = self.inner.send(message)
        self.sent += 1
        if self.sent == self.at:
            self.fault()
        return message_id

    def submit(self, message: Any) -> Submission:
        # The answer at once, so that the fault comes right after the server accepted the message.
        try:
            return Submission.done(self.send(message))
        except NotificationError as error:
            return Submission.done(error)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = start_cluster()
    try:
        yield running
    finally:
        discard_cluster(running)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["between two statements", "inside an append"])
def test_a_database_restart_in_the_middle_of_a_tick_loses_nothing_and_records_each_notification_once(
    cluster: Cluster, tmp_path: Path, moment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = cluster.new_database()
    populate(url, instances=2)
    engine = make_engine(url)
    due = make_due(engine, 300, NOW)
    with MailSink(tmp_path / "mail") as sink:
        worker = _worker(url, sink.port, "w1", batch_size=50)
        restarted = threading.Event()

        def restart() -> None:
            if not restarted.is_set():
                restarted.set()
                cluster.restart()

        if moment == "between two statements":
            worker.courier.mailer = RestartingMailer(worker.courier.mailer, 120, restart)
        else:
            # The append runs on the driver's cursor, out of SQLAlchemy's sight: restart the server
            # once the append has allocated positions, with its transaction open. Each batch of
            # 50 rows records its sends in one append per instance: the third is mid-tick.
            appends = Counter[str]()

            def seal_then_restart(*args: Any, **kwargs: Any) -> Any:
                appends["n"] += 1
                if appends["n"] == 3:
                    restart()
                return seal(*args, **kwargs)

            monkeypatch.setattr(sql, "seal", seal_then_restart)

        failures: list[str] = []
        try:
            worker.tick(NOW)
        except StoreError as error:
            failures.append(str(error))
        for lap in range(1, 4):  # later ticks, past the lease of anything the failed tick held
            worker.tick(NOW + timedelta(minutes=2 * lap))

    assert restarted.is_set()
    for failure in failures:
        assert len(failure.splitlines()) == 1 and "database" in failure and "postgres@" in failure
    states = _states(engine)
    recorded = _sent_events(engine)
    arrived = _maildir_ids(tmp_path / "mail")
    engine.dispose()
    worker.services.store.engine.dispose()  # type: ignore[attr-defined]
    assert states["sent"] == due and states["claimed"] == 0
    assert len(recorded) == due and len({e["key"] for e in recorded}) == due
    assert set(arrived) == {e["message_id"] for e in recorded}
    twice = [message_id for message_id, count in arrived.items() if count > 1]
    print(f"\nrestart {moment}: tick failures {failures}; delivered twice: {twice}")
    # At most what was in flight is sent again, each as itself: the sends of one batch's append.
    assert len(twice) <= 50 and max(arrived.values()) <= 2, twice
    assert all(len(_copies(tmp_path / "mail", message_id)) == 1 for message_id in twice)
    if moment == "between two statements":
        assert failures == [] and twice == []  # the pool replaced the dropped connection; nothing was lost


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_tick_with_ten_thousand_instances_and_nothing_due_reads_only_indexes(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(f"{database}_url")
    populate(url, instances=10_000, rows_per_instance=20)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # the planner's view of 200,000 outbox rows
    with MailSink(tmp_path / "mail") as sink:
        worker = _worker(url, sink.port, "w1")
        worker_engine: Engine = worker.services.store.engine  # type: ignore[attr-defined]
        captured: list[tuple[str, Any]] = []

        @event.listens_for(worker_engine, "before_cursor_execute")
        def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            captured.append((statement, parameters))

        report = worker.tick(QUIET)
    assert report.claimed == 0 and report.replanned == 0

    explain = "EXPLAIN QUERY PLAN " if database == "sqlite" else "EXPLAIN "
    plans: list[str] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in captured:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                continue
            cursor.execute(explain + statement, parameters)
            plan = "\n".join(" | ".join(str(cell) for cell in row) for row in cursor.fetchall())
            plans.append(f"{statement}\n{plan}")
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()
        worker_engine.dispose()
    shown = "\n\n".join(plans)
    print(f"\nquery plans of a tick ({database}, 10,000 instances, nothing due):\n{shown}")
    assert len(plans) >= 5
    full_scan = (
        # SQLite: SCAN reads a whole table or index; a SEARCH that names no index reads the table too.
        re.compile(
            r"\bSCAN (notifications|events|notification_plans)\b"
            r"|\bSEARCH (notifications|events|notification_plans)\b(?! USING)"
        )
        if database == "sqlite"
        else re.compile(r"Seq Scan on (notifications|events|notification_plans)\b")
    )
    assert not full_scan.search(shown), shown
