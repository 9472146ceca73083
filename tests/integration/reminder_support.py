"""Helpers for the reminder tests: a migrated database, the services, a worker, a scripted LIS run.

Everything is real (SQLite files, the embedded SMTP server on loopback) except the clock,
which is a FixedClock the tests move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from governance.quorum import DecisionInput
from notifications.mailer import SmtpMailer, SmtpSettings
from notifications.sink import MailSink
from workflows.clock import FixedClock
from workflows.database import make_engine
from workflows.services import Services
from workflows.store.sql import SqlEventStore
from workflows.worker import Worker, WorkerSettings

LONDON = ZoneInfo("Europe/London")
SENDER = "govflow@selep.example"
FEDERATED = ("success-essex", "kmep", "ose", "team-east-sussex")


def local(day: date, hour: int = 9, minute: int = 0) -> datetime:
    """``day`` at ``hour:minute`` in London, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


_ENGINES: list[Engine] = []


def services_on(url: str, clock: FixedClock) -> Services:
    """Services over their own engine (as a separate process would have); see :func:`dispose_engines`."""
    engine = make_engine(url)
    _ENGINES.append(engine)
    return Services(SqlEventStore(engine, clock=clock.now), clock, source="test")


def dispose_engines() -> None:
    """Close every engine made here (psycopg warns about connections left to the garbage collector)."""
    while _ENGINES:
        _ENGINES.pop().dispose()


def smtp_to(sink: MailSink) -> SmtpMailer:
    return SmtpMailer(SmtpSettings(host="127.0.0.1", port=sink.port, sender=SENDER, timeout=5))


def worker_on(url: str, clock: FixedClock, mailer: object, name: str = "w1", **settings: int) -> Worker:
    options = {"batch_size": 50, "lease_seconds": 600, **settings}
    return Worker(services_on(url, clock), mailer, sender=SENDER, settings=WorkerSettings(worker_id=name, **options))


def header(message: EmailMessage, name: str) -> str:
    return " ".join(str(message[name]).split())


def meeting_vote(body: str, gate: str, day: date, members: int, outcome: str = "endorsed") -> DecisionInput:
    present = members // 2 + 1
    return DecisionInput(gate=gate, body=body, outcome=outcome, day=day, present=present, votes_for=present, against=0)


MEMBERS = {"success-essex": 15, "kmep": 28, "ose": 15, "team-east-sussex": 17, "strategic-board": 27}


@dataclass(frozen=True)
class Step:
    at: datetime
    what: str
    run: Callable[[Services], object]


def lis_script(document: Path) -> list[Step]:
    """The LIS, June 2019 to March 2020, roughly as it happened: it slips and is never agreed."""
    who = {"actor": "programme officer"}

    def tasks(*names: str) -> Callable[[Services], object]:
        return lambda s: [s.complete_task("selep-lis", name, **who) for name in names]

    def decide(decision: DecisionInput) -> Callable[[Services], object]:
        return lambda s: s.decide("selep-lis", decision, **who)

    def federated(gate: str, days: dict[str, date]) -> list[Step]:
        return [
            Step(
                local(day + timedelta(days=1), 10),
                f"{body} {gate}",
                decide(meeting_vote(body, gate, day, MEMBERS[body])),
            )
            for body, day in days.items()
        ]

    return [
        Step(local(date(2019, 6, 3), 9, 30), "start", lambda s: s.start("selep-lis-2019", "selep-lis", **who)),
        Step(
            local(date(2019, 7, 24), 10),
            "scoping tasks",
            tasks("evidence-review", "stakeholder-consultation", "engagement-plan"),
        ),
        Step(
            local(date(2019, 7, 26), 15),
            "approach agreed",
            decide(
                DecisionInput(
                    "approach-agreed",
                    "secretariat",
                    "approved",
                    date(2019, 7, 26),
                    mode="delegated",
                    authority="SB/2019/06/3",
                )
            ),
        ),
        Step(local(date(2019, 9, 13), 9, 30), "evidence tasks", tasks("evidence-base", "emerging-propositions")),
        *federated(
            "evidence-agreed",
            {
                "team-east-sussex": date(2019, 9, 16),
                "success-essex": date(2019, 9, 17),
                "ose": date(2019, 9, 18),
                "kmep": date(2019, 9, 24),
            },
        ),
        Step(
            local(date(2019, 10, 7), 10),
            "structure agreed with a condition",
            decide(
                DecisionInput(
                    "structure-agreed",
                    "strategic-board",
                    "approved-with-conditions",
                    date(2019, 10, 4),
                    present=20,
                    votes_for=18,
                    against=0,
                    abstain=2,
                    conditions=("add a delivery timetable for the Clean Growth propositions",),
                    condition_owner="programme lead",
                    condition_due=date(2019, 10, 25),
                )
            ),
        ),
        Step(
            local(date(2019, 10, 15), 11),
            "OSE moves its November meeting",
            lambda s: s.reschedule_meeting(
                "selep-lis", "ose-2019-11-20", date(2019, 11, 19), "room unavailable", **who
            ),
        ),
        Step(
            local(date(2019, 10, 24), 12),
            "condition discharged",
            lambda s: s.discharge_condition("selep-lis", next(iter(s.load("selep-lis").conditions)), **who),
        ),
        Step(local(date(2019, 11, 1), 10), "draft registered", lambda s: s.add_document("selep-lis", document, **who)),
        Step(
            local(date(2019, 11, 1), 10, 5),
            "drafting tasks",
            tasks("draft-written", "wider-consultation", "draft-shared"),
        ),
        *federated(
            "federated-endorsement",
            {
                "ose": date(2019, 11, 19),
                "success-essex": date(2019, 11, 21),
                "team-east-sussex": date(2019, 11, 25),
                "kmep": date(2019, 11, 26),
            },
        ),
        Step(
            local(date(2019, 12, 16), 10),
            "final agreement",
            decide(meeting_vote("strategic-board", "final-agreement", date(2019, 12, 13), 27, "approved")),
        ),
        Step(local(date(2019, 12, 16), 10, 5), "document finalised", tasks("document-finalised")),
        Step(
            local(date(2019, 12, 20), 11),
            "priorities agreed",
            decide(DecisionInput("priorities-agreed", "government", "approved", date(2019, 12, 20), mode="external")),
        ),
        Step(
            local(date(2020, 2, 10), 11),
            "government asks for changes",
            decide(DecisionInput("lis-agreed", "government", "rejected", date(2020, 2, 10), mode="external")),
        ),
        Step(
            local(date(2020, 3, 23), 10),
            "paused",
            lambda s: s.pause("selep-lis", "COVID-19: in-person meetings stopped", **who),
        ),
    ]
