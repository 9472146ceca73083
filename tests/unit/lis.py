"""Helpers for the domain tests: the shipped LIS definition and a walk through it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from governance import commands
from governance.definition import Definition
from governance.events import NewEvent
from governance.quorum import DecisionInput
from governance.state import Instance, begin
from workflows.bank_holidays import england_and_wales_bank_holidays
from workflows.definition_file import parse_definition

LIS_FILE = Path(__file__).resolve().parents[2] / "workflows" / "definitions" / "selep-lis-2019.toml"
FEDERATED = ("success-essex", "kmep", "ose", "team-east-sussex")


@cache
def lis_text() -> str:
    return LIS_FILE.read_text(encoding="utf-8")


@cache
def lis() -> Definition:
    return parse_definition(lis_text(), str(LIS_FILE))


def variant(old: str, new: str) -> Definition:
    """The LIS definition with one piece of its text replaced (the text must occur)."""
    text = lis_text()
    assert old in text, old
    return parse_definition(text.replace(old, new, 1), "variant")


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class Walk:
    """An instance driven command by command, keeping every event for replay checks."""

    def __init__(self, definition: Definition | None = None, started: date = date(2019, 6, 3)) -> None:
        self.definition = definition or lis()
        holidays = england_and_wales_bank_holidays(2019, 2021)
        self.instance, self.events = commands.start("selep-lis", self.definition, at(started), holidays)
        self.now = at(started)

    def on(self, day: date) -> Walk:
        self.now = at(day)
        return self

    def record(self, new: Sequence[NewEvent]) -> list[NewEvent]:
        self.events.extend(new)
        return list(new)

    def tasks(self, *task_ids: str) -> list[NewEvent]:
        out: list[NewEvent] = []
        for task_id in task_ids:
            out += self.record(commands.complete_task(self.instance, task_id, self.now))
        return out

    def phase_tasks(self, phase: str) -> list[NewEvent]:
        return self.tasks(*(t.id for t in self.definition.phase_by_id[phase].tasks if t.required))

    def decide(
        self, gate: str, body: str, outcome: str = "approved", day: date | None = None, **extra: object
    ) -> list[NewEvent]:
        decision = DecisionInput(gate=gate, body=body, outcome=outcome, day=day or self.now.date(), **extra)  # type: ignore[arg-type]
        return self.record(commands.record_decision(self.instance, decision, self.now))

    def meeting_vote(self, gate: str, body: str, outcome: str = "endorsed", day: date | None = None) -> list[NewEvent]:
        members = self.definition.body_by_id[body].membership[-1].members
        present = members // 2 + 1
        negative = outcome in ("rejected", "not-endorsed")
        votes = {"votes_for": 0, "against": present} if negative else {"votes_for": present, "against": 0}
        return self.decide(gate, body, outcome, day, present=present, abstain=0, **votes)

    def through_scoping(self) -> Walk:
        self.on(date(2019, 7, 26))
        self.phase_tasks("scoping")
        self.decide("approach-agreed", "secretariat", mode="delegated", authority="SB/2019/06/3")
        return self

    def through_evidence(self) -> Walk:
        self.through_scoping().on(date(2019, 9, 27))
        self.phase_tasks("evidence")
        for body in FEDERATED:
            self.meeting_vote("evidence-agreed", body, day=date(2019, 9, 24))
        return self

    def through_drafting(self, document: str = "a" * 64) -> Walk:
        self.through_evidence().on(date(2019, 10, 4))
        self.decide(
            "structure-agreed",
            "strategic-board",
            day=date(2019, 10, 4),
            present=20,
            votes_for=18,
            against=0,
            abstain=1,
            conflicted=1,
        )
        self.on(date(2019, 11, 1))
        self.record(commands.add_document(self.instance, document, "lis-draft.pdf", 1000, self.now))
        self.phase_tasks("drafting")
        return self

    def replayed(self) -> Instance:
        """A fresh fold of every event recorded so far."""
        first, *rest = self.events
        instance = begin("selep-lis", self.definition, first.data)
        for event in rest:
            instance.apply(event)
        return instance
