"""A workflow definition as the domain sees it: bodies, phases, gates, meetings.

These are immutable values built by ``workflows.definition_file`` from a TOML
file (and validated there). The domain only reads them. ``content_hash`` is the
SHA-256 of the file's text: an instance records it when it starts, so a replay
uses the definition then in force, never today's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cached_property
from math import ceil
from typing import Final, Literal

from governance.calendar import Blackout

BodyKind = Literal["board", "officer", "external"]
DecisionMode = Literal["meeting", "written", "chairs-action", "delegated", "external"]
GateRule = Literal["all", "n-of-m"]

DECISION_MODES: Final[tuple[DecisionMode, ...]] = ("meeting", "written", "chairs-action", "delegated", "external")
PAUSED: Final = "paused"
SUPERSEDED: Final = "superseded"


@dataclass(frozen=True, slots=True)
class Contact:
    role: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class MembershipPeriod:
    """How many members a body had from ``start`` to ``end`` (inclusive; None: open)."""

    start: date
    end: date | None
    members: int
    private: int | None = None
    voting: int | None = None
    source: str = "verified"

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class QuorumRule:
    """Quorum: at least ``fraction`` of the members (rounded up) and at least ``minimum``.

    ``min_voting``: how many of those present must be voting members.
    ``private_at_least_public``: among those present, private-sector members must
    be at least as many as public-sector ones (checked when the split is recorded).
    ``conflicted_count``: whether conflicted members still count towards quorum.
    """

    fraction: Fraction = Fraction(0)
    minimum: int = 1
    min_voting: int | None = None
    private_at_least_public: bool = False
    conflicted_count: bool = False

    def required(self, members: int) -> int:
        return max(self.minimum, ceil(self.fraction * members))


@dataclass(frozen=True, slots=True)
class Body:
    id: str
    name: str
    kind: BodyKind
    membership: tuple[MembershipPeriod, ...]
    quorum: QuorumRule
    modes: tuple[DecisionMode, ...]
    role: str = ""
    chair: str | None = None
    contacts: tuple[Contact, ...] = ()

    @property
    def default_mode(self) -> DecisionMode:
        return self.modes[0]

    def membership_on(self, day: date) -> MembershipPeriod | None:
        """The membership in force on ``day`` (the latest period that covers it)."""
        found = None
        for period in self.membership:
            if period.covers(day):
                found = period
        return found


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    name: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class RejectionRoute:
    """Where a rejection sends the instance, and which tasks must be done again."""

    to_phase: str
    reopen_tasks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gate:
    """A decision point: which bodies must decide, by which rule, after what.

    ``rule`` "all": every body in ``boards`` must conclude; "n-of-m": ``n`` of them
    must conclude positively. With ``strict`` a "not-endorsed" blocks the gate;
    otherwise it is recorded dissent that still concludes that body's part.
    ``document``: decisions bind the current document version and a new version
    voids decisions taken on the old one while the gate has not passed.
    """

    id: str
    name: str
    boards: tuple[str, ...]
    rule: GateRule = "all"
    n: int | None = None
    after: tuple[str, ...] = ()
    strict: bool = False
    due: date | None = None
    document: bool = False
    on_reject: RejectionRoute | None = None

    @property
    def needed(self) -> int:
        return len(self.boards) if self.rule == "all" else (self.n or len(self.boards))


@dataclass(frozen=True, slots=True)
class Phase:
    id: str
    name: str
    start: date | None = None
    end: date | None = None
    tasks: tuple[Task, ...] = ()
    gates: tuple[Gate, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Meeting:
    id: str
    body: str
    date: date
    synthetic: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReminderRule:
    """One rung of the reminder ladder (DOMAIN.md rule 9).

    ``anchor`` is what the offset counts from: "meeting", "gate-due",
    "condition-due" or "deadline"; ``offset`` is in working days (negative: before).
    """

    id: str
    anchor: str
    offset: int
    template: str
    to: tuple[str, ...]
    kind: str = "reminder"


@dataclass(frozen=True)
class Definition:
    id: str
    version: str
    title: str
    timezone: str
    starts: date
    deadline: date
    bodies: tuple[Body, ...]
    phases: tuple[Phase, ...]
    meetings: tuple[Meeting, ...] = ()
    blackouts: tuple[Blackout, ...] = ()
    reminders: tuple[ReminderRule, ...] = ()
    contacts: tuple[Contact, ...] = ()
    organisation: str = ""
    deadline_label: str = "external deadline"
    written_procedure_days: int = 5
    paper_clear_days: int = 5
    minutes_clear_days: int = 10
    content_hash: str = field(default="", compare=False)

    @cached_property
    def body_by_id(self) -> dict[str, Body]:
        return {body.id: body for body in self.bodies}

    @cached_property
    def phase_ids(self) -> tuple[str, ...]:
        return tuple(phase.id for phase in self.phases)

    @cached_property
    def phase_by_id(self) -> dict[str, Phase]:
        return {phase.id: phase for phase in self.phases}

    @cached_property
    def gate_by_id(self) -> dict[str, Gate]:
        return {gate.id: gate for phase in self.phases for gate in phase.gates}

    @cached_property
    def gate_phase(self) -> dict[str, str]:
        return {gate.id: phase.id for phase in self.phases for gate in phase.gates}

    @cached_property
    def task_phase(self) -> dict[str, str]:
        return {task.id: phase.id for phase in self.phases for task in phase.tasks}

    @cached_property
    def task_by_id(self) -> dict[str, Task]:
        return {task.id: task for phase in self.phases for task in phase.tasks}

    @property
    def initial_phase(self) -> str:
        return self.phases[0].id

    @property
    def final_phase(self) -> str:
        return self.phases[-1].id

    def phase_index(self, phase_id: str) -> int:
        return self.phase_ids.index(phase_id)
