"""The reminder worker at scale: a tick with nothing due, a tick with many due, and emails per second.

:func:`populate` builds, on SQLite or PostgreSQL, what a worker's outbox looks like after it
planned many LIS instances: each instance started (one sealed ``InstanceStarted`` event),
its whole reminder plan in the outbox (the rows ``SqlOutbox.apply_plan`` stores, one plan
computed once and given to every instance under its own keys), its plan mark (not due
again before tomorrow) and the cursor past every event. It is written with bulk inserts,
so 10,000 instances (2.3 million outbox rows) take seconds, not the hours planning each
would. :func:`make_due` then moves some planned rows to "due now".

- ``tick``: one :meth:`Worker.tick` (ms), with nothing due, or with rows due (each claimed,
  rendered, sent to the embedded SMTP server over one connection, recorded, settled);
- ``emails``: the same dispatch as emails per second, beside ``smtplib`` sending the same
  messages (built beforehand: their bytes, with ``sendmail``) over one connection to the
  same server. Twice: to a server that advertises PIPELINING (the sink's default, as
  most mail servers), which govflow's mailer uses and ``smtplib`` cannot, and to one that
  does not (``mail-sink --no-pipelining``), where both exchange one command at a time.

Where the SMTP server runs: in its own process (``govflow mail-sink``, as in real use,
where it or a real mail server is never inside the worker), for govflow and for the raw
``smtplib`` limit alike. Inside the benchmark's own process the aiosmtpd sink would share
the interpreter lock with whichever client is measured, and on a 2-core machine the
figure would be mostly the sink's own Python time, taken from both contenders' budget.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from bench.common import Figure, Series, scratch

SENDER = "govflow@selep.example"
PLANNED_ON = datetime(2019, 6, 3, 9, 30, tzinfo=UTC)
QUIET = datetime(2019, 7, 1, 9, 0, tzinfo=UTC)
"""A moment when nothing of the plan is due yet (the first notices fall on 1 August 2019)."""


def quiet_moment(step: int) -> datetime:
    """The ``step``-th moment after :data:`QUIET`, an hour apart: one per measurement that makes rows due.

    Every measurement needs a ``now`` of its own, later than the rows made due before it,
    yet before anything of the plan itself falls due (1 August 2019 at 08:00 UTC, 743
    steps on; :func:`make_due` checks): steps of a day reached it at the 31st, and a tick
    then sent the plan's own notices of every instance besides the rows made due.
    """
    return QUIET + timedelta(hours=step)


@dataclass(frozen=True)
class Population:
    url: str
    instances: int
    rows: int


def populate(url: str, instances: int, rows_per_instance: int | None = None) -> Population:
    """A migrated database at ``url`` holding ``instances`` planned LIS instances (see the module doc).

    ``rows_per_instance`` keeps only the first rows of each plan (the plan has 229).
    """
    from governance import commands
    from governance.calendar import local_datetime
    from governance.chain import GENESIS_HASH, canonical_json, format_timestamp
    from governance.commands import local_day
    from governance.reminders import plan_notifications
    from workflows.audit.records import StoredEvent, event_bytes
    from workflows.bank_holidays import england_and_wales_bank_holidays
    from workflows.database import make_engine, migrate
    from workflows.definition_file import find_definition, load_definition
    from workflows.outbox import notice_values
    from workflows.store.schema import (
        definitions,
        events,
        log_head,
        notification_cursor,
        notification_plans,
        notifications,
        streams,
    )

    migrate(url)
    path = find_definition("selep-lis-2019", [])
    definition = load_definition(path)
    holidays = england_and_wales_bank_holidays(2019, 2021)
    template, (started,) = commands.start("template", definition, PLANNED_ON, holidays)
    plan = plan_notifications(template, local_day(PLANNED_ON, definition), events=[], send_at=time(9))
    stamp = format_timestamp(PLANNED_ON)
    meta = canonical_json({"clock": "simulated", "source": "bench"})
    template_rows = [notice_values(notice, 1, stamp) for notice in plan.notices][:rows_per_instance]
    # As the worker marks a plan: made again on the day its at-risk forecast may change.
    assert plan.replan_on is not None
    replan_after = format_timestamp(local_datetime(plan.replan_on, time(0), definition.timezone))
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(definitions),
                [
                    {
                        "hash": definition.content_hash,
                        "definition_id": definition.id,
                        "version": definition.version,
                        "content": path.read_text(encoding="utf-8"),
                        "registered_at": stamp,
                    }
                ],
            )
            for first in range(0, instances, 1000):
                ids = [f"lis-{number:05d}" for number in range(first, min(first + 1000, instances))]
                sealed = []
                for offset, ident in enumerate(ids, start=first + 1):
                    data = canonical_json(started.data | {"instance": ident})
                    row = StoredEvent(ident, 1, offset, started.type, 1, data, meta, stamp, stamp, "bench",
                                      definition.content_hash, GENESIS_HASH, "")  # fmt: skip
                    sealed.append(row._replace(hash=hashlib.sha256(event_bytes(row)).hexdigest())._asdict())
                connection.execute(insert(events), sealed)
                connection.execute(
                    insert(streams),
                    [
                        {"stream_id": i, "version": 1, "definition_id": definition.id,
                         "definition_hash": definition.content_hash, "phase": template.phase,
                         "created_at": stamp, "updated_at": stamp}
                        for i in ids
                    ],
                )  # fmt: skip
                connection.execute(
                    insert(notification_plans),
                    [
                        {"instance": i, "version": 1, "as_of": "2019-06-03", "planned_at": stamp,
                         "replan_after": replan_after, "silenced": None, "problems": "[]"}
                        for i in ids
                    ],
                )  # fmt: skip
                connection.execute(
                    insert(notifications),
                    [
                        row | {"key": ident + row["key"].removeprefix("template"), "instance": ident}
                        for ident in ids
                        for row in template_rows
                    ],
                )
            connection.execute(update(log_head).values(position=instances))
            connection.execute(update(notification_cursor).values(position=instances))
    finally:
        engine.dispose()
    return Population(url, instances, instances * len(template_rows))


def make_due(engine: Engine, count: int, now: datetime) -> int:
    """Make ``count`` planned rows due at ``now`` (and never stale); returns how many were.

    Raises ``RuntimeError`` when rows are due at ``now`` already (the plan's own notices,
    or rows made due before and not sent): a tick would send them too.
    """
    from governance.chain import format_timestamp
    from workflows.store.schema import notifications

    column = notifications.c
    with engine.begin() as connection:
        already = connection.execute(
            select(func.count()).where(column.state == "planned", column.due_at <= format_timestamp(now))
        ).scalar_one()
        if already:
            raise RuntimeError(f"{already} planned rows are due at {now.isoformat()} already: choose an earlier now")
        chosen = select(column.id).where(column.state == "planned", column.due_at > format_timestamp(now)).limit(count)
        moved = connection.execute(
            update(notifications)
            .where(column.id.in_(chosen.scalar_subquery()))
            .values(due_at=format_timestamp(now - timedelta(minutes=1)), stale_after=None)
        )
    return int(moved.rowcount)


@dataclass(frozen=True)
class SinkAddress:
    host: str
    port: int


@contextmanager
def mail_sink(folder: Path, *, pipelining: bool = True) -> Iterator[SinkAddress]:
    """``govflow mail-sink`` on a free port, in its own process (see the module doc), until exit."""
    mail = folder / ("mail" if pipelining else "mail-lockstep")
    command = [sys.executable, "-m", "workflows.cli", "mail-sink", "--port", "0", "--maildir", str(mail)]
    if not pipelining:
        command.append("--no-pipelining")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # "mail sink listening on HOST:PORT, keeping messages in …"
        found = re.search(r"listening on (\S+):(\d+),", ready)
        if found is None:
            raise RuntimeError(f"the mail sink did not start: {ready!r}")
        yield SinkAddress(found[1], int(found[2]))
    finally:
        process.terminate()
        process.wait(timeout=30)


def worker(url: str, sink: Any, name: str = "bench") -> Any:
    """A worker with its own engine, sending to ``sink`` over one connection per batch."""
    from notifications.mailer import SmtpMailer, SmtpSettings
    from workflows.clock import FixedClock
    from workflows.database import make_engine
    from workflows.services import Services
    from workflows.store.sql import SqlEventStore
    from workflows.worker import Worker, WorkerSettings

    engine = make_engine(url)
    clock = FixedClock(QUIET)
    services = Services(SqlEventStore(engine, clock=clock.now), clock, source="bench", cache_size=20_000)
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=sink.port, sender=SENDER, timeout=30))
    return Worker(services, mailer, sender=SENDER, settings=WorkerSettings(worker_id=name, batch_size=200))


def prebuilt(engine: Engine, worker_: Any, now: datetime) -> list[Any]:
    """The messages of the rows due at ``now``, built as the worker builds them (for the raw limit)."""
    from governance.chain import format_timestamp
    from workflows.outbox_row import OutboxRow
    from workflows.store.schema import notifications

    column = notifications.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(notifications).where(column.state == "planned", column.due_at <= format_timestamp(now))
        ).all()
    courier = worker_.courier
    built = []
    for row in rows:
        outbox_row = OutboxRow.from_row(row)
        built.append(courier.build(outbox_row, courier.render(outbox_row), now))
    return built


def raw_smtp(sink: Any, messages: list[Any]) -> float:
    """Seconds for ``smtplib`` to send the bytes of ``messages`` over one connection to ``sink``."""
    from time import perf_counter

    started = perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port, "localhost", timeout=30) as connection:
        for message in messages:
            connection.sendmail(message.sender, message.recipients, message.data)
    return perf_counter() - started


def tick_seconds(worker_: Any, now: datetime) -> tuple[float, Any]:
    from time import perf_counter

    started = perf_counter()
    report = worker_.tick(now)
    return perf_counter() - started, report


def measure(url_for: Any, instances: int, due: int, repeats: int, database: str) -> list[Figure]:
    """The tick figures (nothing due, ``due`` due) and the emails-per-second figure on one database.

    ``url_for(folder)`` gives an empty database's URL.
    """
    from workflows.database import make_engine

    idle = Figure(
        figure=f"worker tick, {instances:,} instances, nothing due ({database})",
        unit="ms per tick",
        higher_is_better=False,
        govflow=Series("govflow Worker.tick"),
        target="< 50 ms",
    )
    busy = Figure(
        figure=f"worker tick, {instances:,} instances, {due:,} due ({database})",
        unit="ms per tick",
        higher_is_better=False,
        govflow=Series("govflow Worker.tick"),
        target="in proportion to what is due",
    )
    emails, lockstep = (
        Figure(
            figure=f"emails per second to the embedded SMTP server{server} ({database})",
            unit="emails/s",
            higher_is_better=True,
            govflow=Series("govflow worker dispatch (claim, render, send, record)"),
            limit=Series("smtplib, pre-built messages, one connection"),
            target="≥ 80% of the raw smtplib rate",
        )
        for server in ("", ", server without PIPELINING")
    )
    with scratch("worker") as folder:
        url = url_for(folder)
        population = populate(url, instances)
        engine = make_engine(url)
        try:
            with mail_sink(folder) as sink, mail_sink(folder, pipelining=False) as plain_sink:
                running, plain = worker(url, sink), worker(url, plain_sink, "bench-lockstep")
                for warming in (running, plain):
                    warming.tick(QUIET)  # warm: definitions parsed, statements compiled
                for repeat in range(repeats):
                    seconds, report = tick_seconds(running, QUIET)
                    assert report.claimed == 0, report.as_json()
                    idle.govflow.values.append(seconds * 1000)
                    for step, (figure, sending, to) in enumerate(
                        ((emails, running, sink), (lockstep, plain, plain_sink))
                    ):
                        now = quiet_moment(2 * repeat + step + 1)
                        made = make_due(engine, due, now)
                        messages = prebuilt(engine, sending, now)
                        seconds, report = tick_seconds(sending, now)
                        assert report.delivery.sent == made == len(messages), report.as_json()
                        if figure is emails:
                            busy.govflow.values.append(seconds * 1000)
                        figure.govflow.values.append(made / seconds)
                        assert figure.limit is not None
                        figure.limit.values.append(len(messages) / raw_smtp(to, messages))
                for used in (running, plain):
                    used.services.store.engine.dispose()
        finally:
            engine.dispose()
    note = (
        f"{population.rows:,} outbox rows; the due rows are sent to the embedded aiosmtpd sink (Maildir), "
        "running as `govflow mail-sink` in its own process for govflow and the raw limit alike"
    )
    idle.notes = busy.notes = lockstep.notes = note
    emails.notes = note + "; the sink advertises PIPELINING, which govflow uses and smtplib cannot"
    return [idle, busy, emails, lockstep]
