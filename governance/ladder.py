"""The rungs of the reminder ladder, one draft per anchor: what to send, when, and with what.

:mod:`governance.reminders` turns these drafts into the plan (recipients, keys,
relevance). Here each anchor of the definition's ``[[reminders]]`` ladder becomes drafts:
each meeting, each gate due date, each condition due date, the external deadline (only
while the forecast says it is at risk), and the news of decisions and passed gates.

Two rungs count clear days (DOMAIN.md rule 7) rather than plain working days: the
publication rung (``offset = -paper_clear_days``) is sent on the last day the papers can
be published with that many clear days to spare (T−6 for 5), and the breach rung
(``offset = minutes_clear_days``) the working day after the last day the draft minutes
could be published, because only then is the breach certain.

A step concerning a body under a blackout is held to the first working day after the
window (:func:`hold`), and the draft's reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from governance.calendar import Blackout, WorkingCalendar
from governance.definition import ReminderRule
from governance.events import JsonDict
from governance.forecast import Forecast
from governance.notice_context import (
    authors_deadline,
    condition_context,
    gate_context,
    meeting_context,
    risk_context,
)
from governance.state import Instance

__all__ = ["KINDS", "Draft", "hold", "template_kind"]

# The template kinds of ``notifications.templates.KINDS`` (a test keeps the two equal;
# governance may not import notifications).
KINDS: Final = (
    "call_for_papers",
    "paper_deadline",
    "escalation",
    "publication",
    "quorum_check",
    "minutes",
    "condition_due",
    "gate_overdue",
    "at_risk",
    "decision_recorded",
    "gate_passed",
)
# Template names of the shipped ladder whose kind is not their own name.
_ALIASES: Final = {
    "pack-publication": "publication",
    "draft-minutes": "minutes",
    "draft-minutes-overdue": "minutes",
    "draft-minutes-breach": "minutes",
    "paper-overdue": "escalation",
    "paper-overdue-chair": "escalation",
    "condition-overdue": "condition_due",
    "gate-overdue-chair": "gate_overdue",
    "deadline-at-risk": "at_risk",
}
_ANCHOR_KINDS: Final = {
    "meeting": frozenset({"call_for_papers", "paper_deadline", "escalation", "publication", "quorum_check", "minutes"}),
    "gate-due": frozenset({"gate_overdue"}),
    "condition-due": frozenset({"condition_due"}),
    "deadline": frozenset({"at_risk"}),
}
_MAX_HOLDS: Final = 100
LATE_GRACE_WORKING_DAYS: Final = 5
"""How long a rung after its anchor stays worth sending, when no later rung replaces it."""
_LATE: Final = f"more than {LATE_GRACE_WORKING_DAYS} working days late"


@dataclass(frozen=True, slots=True)
class Draft:
    """One rung for one anchor, before recipients are resolved."""

    rule: str
    kind: str
    family: str
    """The anchor type ("meeting", "gate-due", …, "news"): rungs of one family and subject supersede each other."""
    subject: str
    target: date
    send_on: date
    roles: tuple[str, ...]
    concerns: tuple[str, ...]
    """The bodies it concerns (role lookup, blackouts); empty: the programme."""
    context: JsonDict
    reason: str
    stale_from: date | None
    """The local day from which it is no longer worth sending, and why (``stale_reason``)."""
    stale_reason: str
    not_before: datetime | None = None
    invite: JsonDict | None = None


def template_kind(rule: ReminderRule) -> str | None:
    """The template kind a rung is rendered with, or None when no template fits it."""
    own = rule.template.replace("-", "_")
    kind = own if own in KINDS else _ALIASES.get(rule.template)
    if kind is None:
        kind = {"gate-due": "gate_overdue", "condition-due": "condition_due", "deadline": "at_risk"}.get(rule.anchor)
        if rule.anchor == "meeting":
            kind = "escalation" if rule.kind == "escalation" else ("minutes" if rule.offset > 0 else "paper_deadline")
    if kind not in _ANCHOR_KINDS.get(rule.anchor, frozenset()):
        return None
    # The gate template speaks of a gate still open after its due date: it cannot announce one.
    return None if kind == "gate_overdue" and rule.offset <= 0 else kind


def hold(calendar: WorkingCalendar, day: date, concerns: tuple[str, ...]) -> tuple[date, str]:
    """``day``, or the first working day after the blackouts binding every body concerned; and why."""
    start, blackout = day, None
    for _ in range(_MAX_HOLDS):
        binding = _binding(calendar, day, concerns)
        if binding is None:
            break
        blackout = binding
        day = calendar.next_working_day(date.fromordinal(binding.end.toordinal() + 1))
    if blackout is None:
        return day, ""
    return day, f"held from {start.isoformat()} to {day.isoformat()} by blackout '{blackout.id}': {blackout.reason}"


def _binding(calendar: WorkingCalendar, day: date, concerns: tuple[str, ...]) -> Blackout | None:
    if not concerns:
        # The programme as a whole is held only by a window binding every body.
        return next((b for b in calendar.blackouts if not b.bodies and b.covers(day)), None)
    found = [calendar.blackout_on(day, body) for body in concerns]
    if any(b is None for b in found):
        return None
    return min((b for b in found if b is not None), key=lambda b: b.end)


def _offset_words(offset: int) -> str:
    if offset < 0:
        return f"T−{-offset} working day{'s' if offset != -1 else ''}"
    return f"T+{offset} working day{'s' if offset != 1 else ''}"


def _reason(what: str, rule: ReminderRule, held: str) -> str:
    text = f"{what} (rule '{rule.id}', {_offset_words(rule.offset)})"
    return f"{text}; {held}" if held else text


def meeting_drafts(instance: Instance, rule: ReminderRule, kind: str) -> list[Draft]:
    """The rung ``rule`` for every meeting still scheduled."""
    definition, calendar = instance.definition, instance.calendar
    drafts = []
    for meeting in instance.meetings.values():
        if meeting.cancelled is not None:
            continue
        day = meeting.day
        name = definition.body_by_id[meeting.body].name
        what = f"{kind.replace('_', ' ')}: {name} meets on {day.isoformat()}"
        if kind == "publication" and rule.offset < 0:
            planned = calendar.papers_deadline(day, -rule.offset)
            what += f"; papers are due out by {planned.isoformat()} ({-rule.offset} clear working days)"
        elif rule.offset == definition.minutes_clear_days:
            due = calendar.minutes_deadline(day, rule.offset)
            planned = calendar.shift(due, 1)
            what += f"; draft minutes were due by {due.isoformat()} ({rule.offset} clear working days)"
        else:
            planned = calendar.shift(day, rule.offset)
        send_on, held = hold(calendar, planned, (meeting.body,))
        context, invite = meeting_context(instance, meeting, rule, kind, send_on)
        before = rule.offset < 0
        if not before:
            stale_from, stale_reason = calendar.shift(send_on, LATE_GRACE_WORKING_DAYS), _LATE
        elif kind in ("call_for_papers", "paper_deadline") and (due := authors_deadline(instance, meeting)) < day:
            # Asking for papers after the day they were due would only confuse.
            stale_from, stale_reason = date.fromordinal(due.toordinal() + 1), f"the paper deadline {due} had passed"
        else:
            stale_from, stale_reason = day, f"the {name} meeting of {day.isoformat()} had been held"
        drafts.append(
            Draft(
                rule=rule.id,
                kind=kind,
                family="meeting",
                subject=meeting.id,
                target=day,
                send_on=send_on,
                roles=rule.to,
                concerns=(meeting.body,),
                context=context,
                reason=_reason(what, rule, held),
                stale_from=stale_from,
                stale_reason=stale_reason,
                invite=invite,
            )
        )
    return drafts


def gate_drafts(instance: Instance, rule: ReminderRule, kind: str) -> list[Draft]:
    """The escalation rung ``rule`` for every gate not passed whose due date has one."""
    definition, calendar = instance.definition, instance.calendar
    level = 1 + sorted({r.offset for r in definition.reminders if r.anchor == "gate-due" and r.offset > 0}).index(
        rule.offset
    )
    drafts = []
    for gate in definition.gate_by_id.values():
        if gate.due is None or gate.id in instance.passed:
            continue
        waiting = tuple(b for b in gate.boards if b not in instance.concluded(gate)) or gate.boards
        send_on, held = hold(calendar, calendar.shift(gate.due, rule.offset), waiting)
        drafts.append(
            Draft(
                rule=rule.id,
                kind=kind,
                family="gate-due",
                subject=gate.id,
                target=gate.due,
                send_on=send_on,
                roles=rule.to,
                concerns=waiting,
                context=gate_context(instance, gate, send_on, level),
                reason=_reason(f"gate '{gate.id}' was due on {gate.due.isoformat()} and has not passed", rule, held),
                stale_from=calendar.shift(send_on, LATE_GRACE_WORKING_DAYS),
                stale_reason=_LATE,
            )
        )
    return drafts


def condition_drafts(instance: Instance, rule: ReminderRule, kind: str) -> list[Draft]:
    """The rung ``rule`` for every open condition with a due date, of a decision that still counts."""
    calendar = instance.calendar
    live = {d.id: d for d in instance.decisions if d.void is None}
    drafts = []
    for condition in instance.conditions.values():
        decision = live.get(condition.decision)
        if condition.due is None or condition.discharged_on is not None or decision is None:
            continue
        if condition.gate in instance.passed:
            continue
        send_on, held = hold(calendar, calendar.shift(condition.due, rule.offset), (decision.body,))
        before = rule.offset < 0
        drafts.append(
            Draft(
                rule=rule.id,
                kind=kind,
                family="condition-due",
                subject=condition.id,
                target=condition.due,
                send_on=send_on,
                roles=rule.to,
                concerns=(decision.body,),
                context=condition_context(instance, condition, decision, send_on),
                reason=_reason(f"condition '{condition.id}' is due on {condition.due.isoformat()}", rule, held),
                stale_from=date.fromordinal(condition.due.toordinal() + 1)
                if before
                else calendar.shift(send_on, LATE_GRACE_WORKING_DAYS),
                stale_reason="its due date had passed" if before else _LATE,
            )
        )
    return drafts


def deadline_drafts(instance: Instance, rule: ReminderRule, kind: str, today: date, outlook: Forecast) -> list[Draft]:
    """The at-risk warning, from the rung's offset on, while a gate does not fit before the deadline."""
    blocking = outlook.blocking
    deadline = instance.deadline
    if blocking is None or today > deadline:
        return []
    calendar = instance.calendar
    window = calendar.shift(deadline, rule.offset)
    send_on, held = hold(calendar, calendar.next_working_day(max(window, today)), ())
    what = f"at risk: gate '{blocking.gate}' cannot pass before the deadline {deadline.isoformat()}: {blocking.reason}"
    return [
        Draft(
            rule=rule.id,
            kind=kind,
            family="deadline",
            subject=blocking.gate,
            target=deadline,
            send_on=send_on,
            roles=rule.to,
            concerns=(),
            context=risk_context(instance, outlook),
            reason=_reason(what, rule, held),
            stale_from=date.fromordinal(deadline.toordinal() + 1),
            stale_reason="the deadline had passed",
        )
    ]
