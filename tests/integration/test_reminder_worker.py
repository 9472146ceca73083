"""The worker against real SQLite files and the embedded SMTP server: crashes, two workers, downtime, failures."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from governance.events import NOTIFICATION_FAILED, NOTIFICATION_MISSED, NOTIFICATION_SENT, NewEvent, RecordedEvent
from notifications.errors import NotificationError
from notifications.mailer import Submission
from notifications.message import OutgoingMessage
from notifications.sink import MailSink
from tests.integration.reminder_support import LONDON, dispose_engines, header, local, services_on, smtp_to, worker_on
from workflows.clock import FixedClock
from workflows.database import migrate
from workflows.store.base import AppendRequest
from workflows.worker import Worker


class Crash(BaseException):
    """A process dying: nothing catches it."""


class CrashingMailer:
    """The real SMTP mailer, dying once right after the server accepted a message."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = True

    def __enter__(self) -> CrashingMailer:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.inner.__exit__(*exc)

    def send(self, message: OutgoingMessage) -> str:
        message_id: str = self.inner.send(message)
        if self.armed:
            self.armed = False
            raise Crash
        return message_id

    def submit(self, message: OutgoingMessage) -> Submission:
        # The answer at once: what happens after the server accepted the message happens now.
        try:
            return Submission.done(self.send(message))
        except NotificationError as error:
            return Submission.done(error)


class InterruptedMailer(CrashingMailer):
    """The real SMTP mailer, letting ``meanwhile`` run once after the server accepted a message."""

    def __init__(self, inner: Any, meanwhile: Callable[[], object]) -> None:
        super().__init__(inner)
        self.meanwhile = meanwhile

    def send(self, message: OutgoingMessage) -> str:
        message_id: str = self.inner.send(message)
        if self.armed:
            self.armed = False
            self.meanwhile()
        return message_id


class CountingAppends:
    """The worker's event store, keeping the event types of each append that wrote.

    ``before_sent`` runs once, just before the first append of ``NotificationSent`` events.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.appended: list[list[str]] = []
        self.commits: list[list[list[str]]] = []  # the appends of each commit
        self.before_sent: Callable[[], object] | None = None

    def append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        (written,) = self.append_many([(request, events)])
        return written

    def write(self, request: AppendRequest, events: Sequence[NewEvent]) -> int:
        return len(self.append(request, events))

    def append_many(self, batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[list[RecordedEvent]]:
        """Each append of the batch counts as one (they commit together)."""
        if self.before_sent is not None and any(e.type == NOTIFICATION_SENT for _, events in batch for e in events):
            run, self.before_sent = self.before_sent, None
            run()
        written: list[list[RecordedEvent]] = self.inner.append_many(batch)
        self.commits.append([[event.type for event in events] for _, events in batch])
        self.appended += self.commits[-1]
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    """A migrated SQLite file, then a PostgreSQL schema (when GOVFLOW_TEST_POSTGRES_URL is set)."""
    migrate(database_url)
    yield database_url
    dispose_engines()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail") as running:
        yield running


@pytest.fixture
def clock(url: str) -> FixedClock:
    clock = FixedClock(local(date(2019, 6, 3), 9, 30))
    services = services_on(url, clock)
    services.start("selep-lis-2019", "selep-lis", actor="programme officer")
    return clock


def sent_events(worker: Worker) -> list[Any]:
    return [e for e in worker.services.store.read_stream("notifications:selep-lis") if e.type == NOTIFICATION_SENT]


def test_a_worker_killed_between_send_and_record_loses_nothing_and_resends_with_the_same_message_id(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    now = local(date(2019, 9, 13))  # the Strategic Board's call for papers is due
    dying = worker_on(url, clock, CrashingMailer(smtp_to(sink)), "dying")
    with pytest.raises(Crash):
        dying.tick(now)
    (first,) = sink.messages()

    restarted = worker_on(url, clock, smtp_to(sink), "restarted", lease_seconds=600)
    assert restarted.tick(now + timedelta(minutes=5)).delivery.sent == 0  # the dead worker's lease holds
    report = restarted.tick(now + timedelta(minutes=11))

    resent = [m for m in sink.messages() if header(m, "Message-ID") == header(first, "Message-ID")]
    assert len(resent) == 2 and resent[0].as_bytes().split(b"\n\n", 1)[1] == resent[1].as_bytes().split(b"\n\n", 1)[1]
    keys = [e.data["key"] for e in sent_events(restarted)]
    assert report.delivery.sent >= 1 and len(keys) == len(set(keys))
    assert {row.state for row in restarted.outbox.rows("selep-lis") if row.due_at <= now} <= {"sent", "missed"}


def test_a_worker_killed_after_recording_does_not_send_again(url: str, sink: MailSink, clock: FixedClock) -> None:
    now = local(date(2019, 9, 13))
    dying = worker_on(url, clock, smtp_to(sink), "dying")

    def crash(*args: Any) -> None:
        raise Crash

    dying.claims.settle_done = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        dying.tick(now)
    count = len(sink.messages())

    report = worker_on(url, clock, smtp_to(sink), "restarted").tick(now + timedelta(minutes=20))

    assert report.delivery.recovered == count > 0  # every message sent before the crash, none sent again
    assert report.delivery.sent == 0 and len(sink.messages()) == count
    assert max(Counter(header(m, "Message-ID") for m in sink.messages()).values()) == 1


def test_the_sends_of_a_batch_are_recorded_in_one_append_per_instance(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    worker = worker_on(url, clock, smtp_to(sink), batch_size=200)
    store = worker.log.store = CountingAppends(worker.log.store)  # type: ignore[assignment]

    report = worker.tick(local(date(2019, 10, 30)))  # a week of notices at once, for one instance

    recorded = [types for types in store.appended if NOTIFICATION_SENT in types]
    assert report.delivery.sent > 1 and recorded == [[NOTIFICATION_SENT] * report.delivery.sent]
    assert [e.data["message_id"] for e in sent_events(worker)] == report.delivery.message_ids
    assert len(sink.messages()) == report.delivery.sent


def test_the_sends_of_a_batch_over_several_instances_commit_together(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    started = clock.now()
    services = services_on(url, clock)
    for other in ("lis-kent", "lis-essex"):
        services.start("selep-lis-2019", other, actor="programme officer", day=started.date())
    worker = worker_on(url, clock, smtp_to(sink), batch_size=500)
    store = worker.log.store = CountingAppends(worker.log.store)  # type: ignore[assignment]

    report = worker.tick(local(date(2019, 10, 30)))

    streams = {e.stream_id for e in store.inner.iter_all() if e.type == NOTIFICATION_SENT}
    assert streams == {"notifications:selep-lis", "notifications:lis-kent", "notifications:lis-essex"}
    (sends,) = [appends for appends in store.commits if any(NOTIFICATION_SENT in types for types in appends)]
    assert len(sends) == 3  # one append per instance, one commit for the three
    assert sum(len(types) for types in sends) == report.delivery.sent == len(sink.messages())


def test_a_worker_whose_lease_ran_out_while_sending_records_each_notification_once(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    now = local(date(2019, 9, 13))
    other = worker_on(url, clock, smtp_to(sink), "other")
    # After its first message the slow worker stalls past its lease: the other claims its rows,
    # sends them and records them before the slow one records anything.
    stalled = InterruptedMailer(smtp_to(sink), lambda: other.tick(now + timedelta(minutes=11)))
    slow = worker_on(url, clock, stalled, "slow")

    slow.tick(now)

    keys = Counter(e.data["key"] for e in sent_events(slow))
    ids = Counter(header(m, "Message-ID") for m in sink.messages())
    assert len(keys) == len(ids) > 1 and max(keys.values()) == 1  # each recorded once
    assert max(ids.values()) == 2  # sent twice (at least once), always with the same Message-ID
    assert {row.state for row in slow.outbox.rows("selep-lis") if row.due_at <= now} == {"sent", "missed"}


def test_sends_recorded_meanwhile_by_another_worker_are_not_recorded_again(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    now = local(date(2019, 9, 13))
    other = worker_on(url, clock, smtp_to(sink), "other")
    slow = worker_on(url, clock, smtp_to(sink), "slow")
    store = slow.log.store = CountingAppends(slow.log.store)  # type: ignore[assignment]
    # Between reading the stream and appending to it, the other worker (the slow one's lease
    # ran out) sends and records the same notifications: the append fails on the stream's
    # version, and the slow worker reads what was recorded instead of recording it again.
    store.before_sent = lambda: other.tick(now + timedelta(minutes=11))

    report = slow.tick(now)

    recorded = sent_events(slow)
    keys = Counter(e.data["key"] for e in recorded)
    assert report.delivery.sent == len(keys) > 1 and max(keys.values()) == 1
    assert {e.meta["worker"] for e in recorded} == {"other"}
    assert not [types for types in store.appended if NOTIFICATION_SENT in types]


def test_two_workers_on_one_database_send_each_notification_once(url: str, sink: MailSink, clock: FixedClock) -> None:
    workers = [worker_on(url, clock, smtp_to(sink), f"w{i}", batch_size=3) for i in range(2)]
    day = date(2019, 9, 2)
    while day <= date(2019, 10, 25):
        start = threading.Barrier(len(workers))
        moment = local(day)

        def tick(worker: Worker, moment: datetime = moment, start: threading.Barrier = start) -> None:
            start.wait()
            worker.tick(moment)

        threads = [threading.Thread(target=tick, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        day += timedelta(days=1)

    ids = Counter(header(m, "Message-ID") for m in sink.messages())
    assert len(ids) > 40 and max(ids.values()) == 1
    assert len(sent_events(workers[0])) == len(ids)


def test_a_worker_down_for_a_week_sends_what_is_still_relevant_and_marks_the_rest_missed(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    worker = worker_on(url, clock, smtp_to(sink))
    day = date(2019, 8, 1)
    while day <= date(2019, 9, 13):
        worker.tick(local(day))
        day += timedelta(days=1)

    report = worker_on(url, clock, smtp_to(sink), "back").tick(local(date(2019, 9, 20)))

    rows = {(row.rule, row.subject, row.recipient): row for row in worker.outbox.rows("selep-lis")}
    held = rows[("quorum-check", "success-essex-2019-09-17", "secretary@success-essex.selep.example")]
    assert held.state == "missed" and held.outcome == "the Success Essex meeting of 2019-09-17 had been held"
    late = rows[("paper-overdue-chair", "kmep-2019-09-24", "chair@kmep.selep.example")]
    assert late.state == "sent" and late.sent_at is not None
    assert late.sent_at.astimezone(LONDON).date() == date(2019, 9, 20)
    missed = [e for e in worker.log.history("selep-lis") if e.type == NOTIFICATION_MISSED]
    assert report.delivery.missed == len(missed) > 0 and all(e.data["reason"] for e in missed)


def test_a_transient_refusal_is_retried_with_backoff(url: str, sink: MailSink, clock: FixedClock) -> None:
    sink.refusals["secretary@strategic-board.selep.example"] = "451 4.3.0 mailbox busy, try later"
    worker = worker_on(url, clock, smtp_to(sink))
    now = local(date(2019, 9, 13))

    first = worker.tick(now)
    row = next(r for r in worker.outbox.rows("selep-lis") if r.recipient.startswith("secretary@strategic-board"))
    assert first.delivery.retried == 1 and row.state == "planned" and row.attempts == 1
    assert row.due_at == now + timedelta(seconds=30) and "451" in (row.last_error or "")

    del sink.refusals["secretary@strategic-board.selep.example"]
    worker.tick(now + timedelta(seconds=31))

    row = next(r for r in worker.outbox.rows("selep-lis") if r.key == row.key)
    assert row.state == "sent"


def test_a_permanent_refusal_is_recorded_and_forwarded_to_the_secretary(
    url: str, sink: MailSink, clock: FixedClock
) -> None:
    sink.refusals["lead-officer@strategic-board.selep.example"] = "550 5.1.1 no such mailbox"
    worker = worker_on(url, clock, smtp_to(sink))

    report = worker.tick(local(date(2019, 9, 13)))

    assert report.delivery.failed == 1 and report.delivery.escalated == 1
    failed = [e for e in worker.log.history("selep-lis") if e.type == NOTIFICATION_FAILED]
    assert len(failed) == 1 and "550" in failed[0].data["error"]
    (forward,) = [m for m in sink.messages() if header(m, "Subject").startswith("Undelivered:")]
    assert "secretariat@selep.example" in header(forward, "To")
    assert "no such mailbox" in forward.get_body(("plain",)).get_content()  # type: ignore[union-attr]
