"""Scripted LIS histories, recorded through the services API under a simulated clock.

Used by the audit tests and by ``tests/golden/make_golden.py``. Each story is a list
of steps ``(when, command)``; decisions are often entered days after their meeting,
so ``occurred_at`` and ``recorded_at`` differ as they do in real life.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from governance.quorum import DecisionInput
from workflows.clock import FixedClock
from workflows.services import Services

LONDON = ZoneInfo("Europe/London")
FEDERATED_MEETINGS = {
    "autumn": (
        ("team-east-sussex", "2019-09-16"),
        ("success-essex", "2019-09-17"),
        ("ose", "2019-09-18"),
        ("kmep", "2019-09-24"),
    ),
    "november": (
        ("ose", "2019-11-20"),
        ("success-essex", "2019-11-21"),
        ("team-east-sussex", "2019-11-25"),
        ("kmep", "2019-11-26"),
    ),
    "january": (
        ("team-east-sussex", "2020-01-20"),
        ("ose", "2020-01-22"),
        ("success-essex", "2020-01-23"),
        ("kmep", "2020-01-28"),
    ),
}

Step = tuple[str, Callable[[Services, str], Any]]


def at(text: str) -> datetime:
    """A London wall-clock time (``YYYY-MM-DDTHH:MM``) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


def _tasks(*task_ids: str, actor: str = "programme lead") -> Callable[[Services, str], Any]:
    def run(services: Services, instance: str) -> None:
        for task in task_ids:
            services.complete_task(instance, task, actor=actor)

    return run


def _board(
    gate: str, body: str, day: str, outcome: str = "endorsed", *, present: int = 10, **extra: Any
) -> Callable[..., Any]:
    negative = outcome in ("rejected", "not-endorsed")
    decision = DecisionInput(
        gate=gate,
        body=body,
        outcome=outcome,
        day=date.fromisoformat(day),
        present=present,
        votes_for=0 if negative else present,
        against=present if negative else 0,
        abstain=0,
        **extra,
    )
    return lambda services, instance: services.decide(instance, decision, actor=f"{body} secretary")


def _officer(gate: str, body: str, day: str, mode: str, outcome: str = "approved") -> Callable[..., Any]:
    decision = DecisionInput(
        gate=gate, body=body, outcome=outcome, day=date.fromisoformat(day), mode=mode, authority="SB/2019/06/3"
    )
    return lambda services, instance: services.decide(instance, decision, actor=f"{body} officer")


def _correct(gate: str, body: str, reason: str) -> Callable[[Services, str], Any]:
    """Correct the latest decision of ``body`` at ``gate``."""

    def run(services: Services, instance: str) -> None:
        version = max(
            e.version
            for e in services.store.read_stream(instance)
            if e.type == "DecisionRecorded" and e.data["gate"] == gate and e.data["body"] == body
        )
        services.correct(instance, version, reason, actor=f"{body} secretary")

    return run


def _document(folder: Path, name: str, content: bytes) -> Callable[..., Any]:
    def run(services: Services, instance: str) -> None:
        path = folder / name
        path.write_bytes(content)
        services.add_document(instance, path, actor="programme officer")

    return run


def _federated(gate: str, round_: str, entered: str) -> list[Step]:
    return [(entered, _board(gate, body, day, present=12)) for body, day in FEDERATED_MEETINGS[round_]]


def through_drafting(folder: Path) -> list[Step]:
    """Scoping, evidence (decisions entered after the meetings) and drafting, with one correction."""
    return [
        ("2019-06-03T09:00", lambda s, i: s.start("selep-lis-2019", i, actor="programme lead")),
        ("2019-07-24T10:00", _tasks("evidence-review", "stakeholder-consultation", "engagement-plan")),
        ("2019-07-26T15:00", _officer("approach-agreed", "secretariat", "2019-07-26", "delegated")),
        ("2019-09-13T09:00", _tasks("evidence-base", "emerging-propositions")),
        *_federated("evidence-agreed", "autumn", "2019-09-27T10:00"),
        ("2019-10-01T11:00", _correct("evidence-agreed", "kmep", "minute reference should read KMEP/2019/09/7")),
        (
            "2019-10-07T09:30",
            _board(
                "structure-agreed", "strategic-board", "2019-10-04", "approved", present=20, minute_ref="SB/2019/10/5"
            ),
        ),
        ("2019-11-01T12:00", _document(folder, "lis-draft-1.pdf", b"%PDF-1.4 draft one")),
        ("2019-11-01T12:05", _tasks("draft-written", "wider-consultation", "draft-shared")),
    ]


def normal(folder: Path) -> list[Step]:
    """The LIS as planned: signed off in December, agreed with government in March 2020."""
    return [
        *through_drafting(folder),
        *_federated("federated-endorsement", "november", "2019-11-27T10:00"),
        ("2019-12-16T09:00", _board("final-agreement", "strategic-board", "2019-12-13", "approved", present=18)),
        ("2019-12-16T09:10", _tasks("document-finalised")),
        ("2019-12-18T16:00", _officer("priorities-agreed", "government", "2019-12-18", "external")),
        ("2020-03-02T10:00", _tasks("implementation-plan", "publication-and-launch")),
        ("2020-03-23T10:00", _officer("lis-agreed", "government", "2020-03-20", "external")),
    ]


def rejection_loop(folder: Path) -> list[Step]:
    """The Strategic Board rejects the final draft: back to drafting, a second draft, signed off in March."""
    return [
        *through_drafting(folder),
        *_federated("federated-endorsement", "november", "2019-11-27T10:00"),
        ("2019-12-16T09:00", _board("final-agreement", "strategic-board", "2019-12-13", "rejected", present=18)),
        ("2020-01-10T12:00", _document(folder, "lis-draft-2.pdf", b"%PDF-1.4 draft two")),
        ("2020-01-10T12:05", _tasks("draft-written", "draft-shared")),
        # Entered against the wrong board, then corrected (voided) and entered again.
        ("2020-01-21T09:00", _board("federated-endorsement", "ose", "2020-01-20", present=12)),
        ("2020-01-21T09:30", _correct("federated-endorsement", "ose", "entered for OSE; it was Team East Sussex")),
        *_federated("federated-endorsement", "january", "2020-01-29T10:00"),
        ("2020-03-23T09:00", _board("final-agreement", "strategic-board", "2020-03-20", "approved", present=18)),
        ("2020-03-23T09:10", _tasks("document-finalised")),
    ]


def paused_and_superseded(folder: Path) -> list[Step]:
    """Paused for the election, resumed, the deadline moved for COVID-19, paused again, superseded."""
    return [
        *through_drafting(folder),
        ("2019-11-06T09:00", lambda s, i: s.pause(i, "pre-election period", actor="chief executive")),
        ("2019-12-13T09:00", lambda s, i: s.resume(i, "election over", actor="chief executive")),
        ("2020-03-17T09:00", lambda s, i: s.extend_deadline(i, date(2020, 9, 30), "COVID-19", actor="chief executive")),
        ("2020-03-23T09:00", lambda s, i: s.pause(i, "COVID-19: no in-person meetings", actor="chief executive")),
        (
            "2021-02-01T09:00",
            lambda s, i: s.supersede(
                i, "replaced by the Economic Recovery and Renewal Strategy", by="ERRS 2021", actor="chief executive"
            ),
        ),
    ]


STORIES: dict[str, Callable[[Path], list[Step]]] = {
    "normal": normal,
    "rejection-loop": rejection_loop,
    "paused-superseded": paused_and_superseded,
}


def play(services: Services, clock: FixedClock, instance: str, steps: list[Step]) -> None:
    """Run each step at its time; every step must succeed."""
    for when, command in steps:
        clock.set(at(when))
        command(services, instance)
