"""The LIS from June 2019 to March 2020 under a simulated clock, against the real embedded SMTP server.

The worker ticks every day at 09:00 and 17:00 London time while the secretaries' commands
happen in between. Every expected notification arrives exactly once, on the right working
day, never at a weekend, on a bank holiday or (for government) in the pre-election period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from governance.events import NOTIFICATION_SENT
from notifications.sink import MailSink
from tests.integration.reminder_support import (
    LONDON,
    dispose_engines,
    header,
    lis_script,
    local,
    services_on,
    smtp_to,
    worker_on,
)
from workflows.bank_holidays import england_and_wales_bank_holidays
from workflows.clock import FixedClock
from workflows.database import migrate
from workflows.outbox_row import OutboxRow
from workflows.worker import Worker

START, END = date(2019, 6, 3), date(2020, 3, 31)
BLACKOUT = (date(2019, 11, 6), date(2019, 12, 12))


@dataclass
class Run:
    worker: Worker
    messages: list[EmailMessage]
    rows: dict[str, OutboxRow]

    def sent(self, rule: str, subject: str) -> list[OutboxRow]:
        return [r for r in self.rows.values() if r.rule == rule and r.subject == subject and r.state == "sent"]

    def delivered_on(self, rule: str, subject: str) -> set[date]:
        return {r.sent_at.astimezone(LONDON).date() for r in self.sent(rule, subject) if r.sent_at}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("walk")
    url = f"sqlite:///{folder / 'govflow.db'}"
    migrate(url)
    document = folder / "lis-draft.pdf"
    document.write_bytes(b"%PDF draft LIS")
    clock = FixedClock(local(START, 8))
    secretaries = services_on(url, clock)
    steps = lis_script(document)
    with MailSink(folder / "mail") as sink:
        worker = worker_on(url, clock, smtp_to(sink))
        day = START
        while day <= END:
            # 09:00 sends the day's reminders; 17:00 on working days sends the news of the day.
            for hour in (9, 17) if day.weekday() < 5 else (9,):
                moment = local(day, hour)
                while steps and steps[0].at <= moment:
                    step = steps.pop(0)
                    clock.set(step.at)
                    step.run(secretaries)
                clock.set(moment)
                worker.tick(moment)
            day += timedelta(days=1)
        messages = sink.messages()
    rows = {row.key: row for row in worker.outbox.rows("selep-lis")}
    yield Run(worker, messages, rows)
    dispose_engines()


def test_every_notification_arrives_exactly_once(run: Run) -> None:
    ids = Counter(header(m, "Message-ID") for m in run.messages)
    keys = Counter(header(m, "X-Govflow-Key") for m in run.messages)

    assert ids and max(ids.values()) == 1 and max(keys.values()) == 1
    sent = {r.message_id for r in run.rows.values() if r.state == "sent"}
    assert sent == set(ids)
    events = run.worker.services.store.read_stream("notifications:selep-lis")
    assert {e.data["message_id"] for e in events if e.type == NOTIFICATION_SENT} == sent
    assert Counter(r.state for r in run.rows.values())["sent"] == len(run.messages)


def test_nothing_is_left_behind_failed_or_missed(run: Run) -> None:
    states = Counter(r.state for r in run.rows.values())

    assert [(r.key, r.outcome) for r in run.rows.values() if r.state == "missed"] == []
    assert states["failed"] == states["missed"] == states["claimed"] == 0
    overdue = [r.key for r in run.rows.values() if r.state == "planned" and r.due_at < local(END, 17)]
    assert overdue == []


def test_nothing_goes_out_at_a_weekend_or_on_a_bank_holiday(run: Run) -> None:
    holidays = england_and_wales_bank_holidays(2019, 2020)
    for message in run.messages:
        day = parsedate_to_datetime(str(message["Date"])).astimezone(LONDON).date()
        assert day.weekday() < 5 and day not in holidays, header(message, "Subject")


def test_each_reminder_arrives_on_the_working_day_it_was_due(run: Run) -> None:
    for row in run.rows.values():
        if row.state == "sent" and row.kind not in ("decision_recorded", "gate_passed"):
            assert row.sent_at is not None
            assert row.sent_at.astimezone(LONDON).date() == row.due_at.astimezone(LONDON).date(), row.key
            assert row.due_at.astimezone(LONDON).hour == 9


def test_nothing_about_government_goes_out_in_the_pre_election_period(run: Run) -> None:
    for row in run.rows.values():
        if row.state == "sent" and row.subject in ("priorities-agreed", "lis-agreed") and row.sent_at:
            assert not BLACKOUT[0] <= row.sent_at.astimezone(LONDON).date() <= BLACKOUT[1], row.key


def test_the_strategic_board_of_4_october_gets_its_whole_ladder(run: Run) -> None:
    subject = "strategic-board-2019-10-04"
    expected = {
        "call-for-papers": date(2019, 9, 13),
        "paper-deadline": date(2019, 9, 20),
        "paper-overdue": date(2019, 9, 24),
        "paper-overdue-chair": date(2019, 9, 26),
        "pack-publication": date(2019, 9, 26),
        "quorum-check": date(2019, 10, 3),
        "draft-minutes": date(2019, 10, 11),
        "draft-minutes-overdue": date(2019, 10, 16),
        "draft-minutes-breach": date(2019, 10, 21),
    }
    for rule, day in expected.items():
        assert run.delivered_on(rule, subject) == {day}, rule
    assert len(run.sent("call-for-papers", subject)) == 2  # the board's secretary and lead officer


def test_a_call_for_papers_carries_the_meeting_as_an_ics_invitation(run: Run) -> None:
    (row, *_) = run.sent("call-for-papers", "strategic-board-2019-10-04")
    message = next(m for m in run.messages if header(m, "Message-ID") == row.message_id)

    invites = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    assert invites and "DTSTART;VALUE=DATE:20191004" in invites[0].get_content()


def test_a_discharged_condition_stops_its_escalation(run: Run) -> None:
    due = [r for r in run.rows.values() if r.rule == "condition-due"]
    overdue = [r for r in run.rows.values() if r.rule == "condition-overdue"]

    assert {r.state for r in due} == {"sent"} and {r.sent_at.date() for r in due if r.sent_at} == {date(2019, 10, 18)}
    assert {r.state for r in overdue} == {"cancelled"}
    assert all(r.outcome == "condition discharged on 2019-10-24" for r in overdue)


def test_a_moved_meeting_gets_a_new_ladder_and_the_old_one_is_cancelled_with_the_reason(run: Run) -> None:
    old = [r for r in run.rows.values() if r.subject == "ose-2019-11-20" and r.target == date(2019, 11, 20)]
    new = [r for r in run.rows.values() if r.subject == "ose-2019-11-20" and r.target == date(2019, 11, 19)]

    assert old and {r.state for r in old} == {"cancelled"}
    assert {r.outcome for r in old} == {"meeting moved to 2019-11-19: room unavailable"}
    assert run.delivered_on("call-for-papers", "ose-2019-11-20") == {date(2019, 10, 29)}
    assert all(r.state == "sent" for r in new if r.due_at < local(END))


def test_the_slipped_lis_warns_of_the_deadline_naming_the_gate_that_does_not_fit(run: Run) -> None:
    warnings = [r for r in run.rows.values() if r.kind == "at_risk"]

    assert {r.state for r in warnings} == {"sent"}
    assert {r.sent_at.astimezone(LONDON).date() for r in warnings if r.sent_at} == {date(2020, 3, 3)}
    assert {r.recipient for r in warnings} == {
        "lis-programme-lead@selep.example",
        "chair@strategic-board.selep.example",
        "chief-executive@selep.example",
    }
    assert {r.subject for r in warnings} == {"federated-endorsement"}


def test_the_pause_cancels_what_was_still_to_come(run: Run) -> None:
    after_pause = [
        r for r in run.rows.values() if r.due_at >= local(date(2020, 3, 23), 10) and r.rule != "delivery-failed"
    ]

    assert after_pause and {r.state for r in after_pause} == {"cancelled"}
    assert all(r.outcome == "instance paused: COVID-19: in-person meetings stopped" for r in after_pause)


def test_the_secretary_hears_of_every_decision_on_the_day_it_is_recorded(run: Run) -> None:
    decisions = run.worker.services.load("selep-lis").decisions
    news = [r for r in run.rows.values() if r.kind == "decision_recorded"]

    assert len(news) == len(decisions) and {r.state for r in news} == {"sent"}
    assert {r.recipient for r in news} == {"secretariat@selep.example"}
    for row in news:
        assert row.sent_at is not None and row.sent_at.astimezone(LONDON).hour == 17
