"""At-risk forecasting: can the remaining gates still pass before the external deadline?

The gates not yet passed are placed in order, phase by phase and respecting ``after``,
on the earliest day each could pass as the instance stands on ``today``:

- a board (``kind = "board"``) decides at a meeting: its first scheduled, not cancelled
  meeting on or after the earliest day, outside any blackout binding it;
- an officer or an external party (the secretariat, government) decides on any working
  day outside its blackouts;
- a gate waits for its ``after`` gates, and a phase for every gate of the phases before
  it, and then passes on a later day; a body that deferred waits for the date it named;
- a gate already decided but held by open conditions passes when the last one is due.

The first gate that cannot be placed, or lands after the deadline, puts the instance
at risk. Tasks are assumed to keep pace. Pure: ``today`` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from governance.definition import Gate
from governance.state import POSITIVE_OUTCOMES, Instance

__all__ = ["Forecast", "Placement", "forecast"]

_DAY = timedelta(days=1)
ANY_WORKING_DAY = " (any working day)"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one remaining gate lands: the day it can pass (None: nothing can take it)."""

    gate: str
    name: str
    earliest: date | None
    day: date | None
    via: tuple[str, ...]
    """Meeting ids used, or ``<body> (any working day)`` for bodies that need no meeting."""
    fits: bool
    reason: str = ""

    @property
    def moves_with_today(self) -> bool:
        """Whether the day follows from "today" through a body that needs no meeting."""
        return any(v.endswith(ANY_WORKING_DAY) for v in self.via)


@dataclass(frozen=True, slots=True)
class Forecast:
    """The forecast of an instance as of a day."""

    as_of: date
    deadline: date
    placements: tuple[Placement, ...]
    active: bool = True

    @property
    def blocking(self) -> Placement | None:
        """The first gate that does not fit before the deadline, if any."""
        return next((p for p in self.placements if not p.fits), None)

    @property
    def at_risk(self) -> bool:
        return self.blocking is not None

    def as_json(self) -> dict[str, Any]:
        """The ``at_risk`` object of ``govflow status --json``."""
        blocking = self.blocking
        return {
            "at_risk": blocking is not None,
            "gate": blocking.gate if blocking else None,
            "gate_name": blocking.name if blocking else None,
            "reason": blocking.reason if blocking else "",
            "forecast_date": blocking.day.isoformat() if blocking and blocking.day else None,
            "deadline": self.deadline.isoformat(),
            "as_of": self.as_of.isoformat(),
            "active": self.active,
            "gates": [
                {
                    "gate": p.gate,
                    "earliest": p.earliest.isoformat() if p.earliest else None,
                    "forecast": p.day.isoformat() if p.day else None,
                    "via": list(p.via),
                    "fits": p.fits,
                }
                for p in self.placements
            ],
        }


def forecast(instance: Instance, today: date) -> Forecast:
    """Place the remaining gates of ``instance`` from ``today`` on and compare with its deadline."""
    definition = instance.definition
    over = instance.superseded is not None or instance.state == definition.final_phase
    if over:
        return Forecast(today, instance.deadline, (), active=False)
    placed: dict[str, Placement] = {}
    floor: date | None = today
    start = definition.phase_index(instance.working_phase)
    for phase in definition.phases[start:]:
        days: list[date | None] = []
        for gate in phase.gates:
            if gate.id not in instance.passed:
                placed[gate.id] = _place(instance, gate, floor, placed)
                days.append(placed[gate.id].day)
        if floor is None or None in days:
            floor = None
        elif days:
            # The next phase opens once every gate of this one has passed: the day after the last.
            floor = max(floor, *(day + _DAY for day in days if day is not None))
    return Forecast(today, instance.deadline, tuple(placed.values()))


def _place(instance: Instance, gate: Gate, floor: date | None, placed: dict[str, Placement]) -> Placement:
    if floor is None:
        return _unplaced(gate, "an earlier gate cannot pass, so its phase cannot open")
    deadline = instance.deadline
    earliest = floor
    for dependency in gate.after:
        if dependency in instance.passed:
            continue
        before = placed.get(dependency)
        if before is None or before.day is None:
            return _unplaced(gate, f"it waits for '{dependency}', which cannot pass")
        earliest = max(earliest, before.day + _DAY)
    day, via, missing = _decision_day(instance, gate, earliest)
    if day is None:
        reason = f"no meeting of {' or '.join(missing)} is scheduled from {earliest.isoformat()} on"
        return Placement(gate.id, gate.name, earliest, None, via, False, reason)
    fits = day <= deadline
    reason = "" if fits else f"it can pass on {day.isoformat()} at the earliest ({', '.join(via)}), after the deadline"
    return Placement(gate.id, gate.name, earliest, day, via, fits, reason)


def _unplaced(gate: Gate, reason: str) -> Placement:
    return Placement(gate.id, gate.name, None, None, (), False, reason)


def _decision_day(instance: Instance, gate: Gate, earliest: date) -> tuple[date | None, tuple[str, ...], list[str]]:
    """The day the gate can pass, the meetings or bodies used, and the bodies that cannot decide."""
    definition = instance.definition
    concluded = instance.concluded(gate)
    if instance.gate_decided(gate):
        dues = [c.due for c in instance.open_conditions(gate.id) if c.due is not None]
        return max([earliest, *dues]), ("conditions",), []
    candidates: list[tuple[date, str]] = []
    missing: list[str] = []
    for body_id in gate.boards:
        if body_id in concluded:
            continue
        start = earliest
        standing = instance.standing(gate.id).get(body_id)
        deferred = standing.data.get("deferred_to") if standing and standing.outcome == "deferred" else None
        if deferred:
            start = max(start, date.fromisoformat(deferred))
        found = _body_day(instance, body_id, start)
        if found is None:
            missing.append(definition.body_by_id[body_id].name)
        else:
            candidates.append(found)
    candidates.sort()
    if gate.rule == "all":
        if missing:
            return None, (), missing
        needed = len(candidates)
    else:
        positive = sum(1 for d in concluded.values() if d.outcome in POSITIVE_OUTCOMES)
        needed = max(gate.needed - positive, 0)
        if len(candidates) < needed:
            return None, (), missing
    if needed == 0:
        return earliest, (), []
    chosen = candidates[:needed]
    return chosen[-1][0], tuple(via for _, via in chosen), []


def _body_day(instance: Instance, body_id: str, start: date) -> tuple[date, str] | None:
    calendar = instance.calendar
    body = instance.definition.body_by_id[body_id]
    if body.kind != "board":
        day = calendar.first_working_day_clear_of_blackout(start, body_id)
        return day, f"{body_id}{ANY_WORKING_DAY}"
    meetings = sorted(
        (m for m in instance.meetings.values() if m.body == body_id and m.cancelled is None and m.day >= start),
        key=lambda m: m.day,
    )
    for meeting in meetings:
        if calendar.blackout_on(meeting.day, body_id) is None:
            return meeting.day, meeting.id
    return None
