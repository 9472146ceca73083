"""The template variables of each notification, filled from the workflow state.

The contract is ``notifications.samples.SAMPLE_CONTEXT``: each builder here returns
exactly the keys its kind lists (a test checks it), dates as ISO strings so that a
context survives a round trip through JSON in the outbox. The variables every kind
shares (recipient, reference, …) are added by :func:`common_context` per recipient.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from governance.definition import Body, Contact, Gate, ReminderRule
from governance.events import JsonDict
from governance.forecast import Forecast
from governance.state import Condition, Decision, Instance, MeetingState

_MODES = {
    "meeting": "at a meeting",
    "written": "by written procedure",
    "chairs-action": "by chair's action",
    "delegated": "by an officer under delegated authority",
    "external": "by the external party",
}


def role_words(role: str, body: Body | None) -> str:
    """``Secretary, Team East Sussex``, or ``Programme lead`` for a programme-wide role."""
    words = role.replace("-", " ").capitalize()
    return f"{words}, {body.name}" if body is not None else words


def common_context(instance: Instance, contact: Contact, body: Body | None, key: str) -> JsonDict:
    """The variables of every kind: who gets it, about what, whom to ask."""
    definition = instance.definition
    return {
        "recipient_name": contact.name,
        "recipient_role": role_words(contact.role, body),
        "organisation": definition.organisation or definition.title,
        "instance_title": definition.title,
        "reference": key,
        "link": "",
        "contact": programme_contact(instance),
    }


def programme_contact(instance: Instance) -> str:
    secretary = secretary_of(instance)
    return f"{secretary.name} ({secretary.email})" if secretary else "the programme team"


def secretary_of(instance: Instance) -> Contact | None:
    """The instance's secretary: the programme-wide contact with role ``secretary``."""
    return next((c for c in instance.definition.contacts if c.role == "secretary"), None)


def item_title(instance: Instance, body_id: str) -> str:
    """The paper a body's meeting is asked for: the next gate it decides, else a progress report."""
    definition = instance.definition
    for gate in definition.gate_by_id.values():
        if body_id in gate.boards and gate.id not in instance.passed:
            return f"{definition.title}: {gate.name}"
    return f"{definition.title}: progress report"


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def authors_deadline(instance: Instance, meeting: MeetingState) -> date:
    """The day papers are due from their authors: the paper-deadline rung's day, else publication."""
    definition = instance.definition
    for rule in definition.reminders:
        if rule.anchor == "meeting" and rule.offset < 0 and rule.template.replace("-", "_") == "paper_deadline":
            return instance.calendar.shift(meeting.day, rule.offset)
    return instance.calendar.papers_deadline(meeting.day, definition.paper_clear_days)


def meeting_context(
    instance: Instance, meeting: MeetingState, rule: ReminderRule, kind: str, send_on: date
) -> tuple[JsonDict, JsonDict | None]:
    """The variables of a meeting rung, and the calendar invitation a call for papers carries."""
    definition, calendar = instance.definition, instance.calendar
    body = definition.body_by_id[meeting.body]
    title = item_title(instance, meeting.body)
    context: JsonDict = {"body_name": body.name, "meeting_date": meeting.day.isoformat()}
    invite = None
    if kind in ("call_for_papers", "paper_deadline"):
        due = authors_deadline(instance, meeting)
        left = max(calendar.working_days_until(send_on, due), 0)
        context |= {"paper_deadline": due.isoformat(), "working_days_left": left, "item_title": title}
        if kind == "call_for_papers":
            invite = {
                "uid": f"{instance.id}/{meeting.id}",
                "summary": f"{body.name}: {definition.title}",
                "description": f"{title}. Papers due by {due.isoformat()}.",
                "day": meeting.day.isoformat(),
                "sequence": len(meeting.moves),
                "timezone": definition.timezone,
            }
    elif kind == "publication":
        gate = next((g for g in definition.gate_by_id.values() if meeting.body in g.boards), None)
        received = gate is not None and gate.document and instance.current_document is not None
        publish_by = calendar.papers_deadline(meeting.day, definition.paper_clear_days)
        context |= {"publish_by": publish_by.isoformat(), "outstanding_items": [] if received else [title]}
    elif kind == "quorum_check":
        period = body.membership_on(meeting.day) or body.membership[-1]
        context |= {
            "meeting_time": "",
            "members_count": period.members,
            "quorum_required": body.quorum.required(period.members),
            "quorum_rule": quorum_words(body),
        }
    elif kind == "minutes":
        due = calendar.minutes_deadline(meeting.day, definition.minutes_clear_days)
        left = max(calendar.working_days_until(send_on, due), 0)
        context |= {"minutes_due": due.isoformat(), "working_days_left": left, "breached": send_on > due}
    else:
        context |= _escalation(instance, meeting, body, rule, send_on, title)
    return context, invite


def _escalation(
    instance: Instance, meeting: MeetingState, body: Body, rule: ReminderRule, send_on: date, title: str
) -> JsonDict:
    definition, calendar = instance.definition, instance.calendar
    paper = rule.offset < 0
    same_side = sorted(
        {
            r.offset
            for r in definition.reminders
            if r.anchor == "meeting" and r.kind == "escalation" and (r.offset < 0) == paper
        }
    )
    due = (
        authors_deadline(instance, meeting)
        if paper
        else calendar.minutes_deadline(meeting.day, definition.minutes_clear_days)
    )
    responsible_role = "lead-officer" if paper else "secretary"
    responsible = next((c for c in body.contacts if c.role == responsible_role), None) or next(
        (c for c in definition.contacts if c.role in (responsible_role, "programme-lead")), None
    )
    return {
        "escalation_level": 1 + same_side.index(rule.offset),
        "item_type": "paper" if paper else "minutes",
        "overdue_item": f"the paper “{title}”" if paper else "the draft minutes",
        "responsible_name": responsible.name if responsible else "the officer responsible",
        "responsible_role": role_words(responsible.role, body) if responsible else "not named",
        "due_date": due.isoformat(),
        "working_days_overdue": max(calendar.working_days_until(due, send_on), 0),
    }


def quorum_words(body: Body) -> str:
    """The quorum rule in words, for the quorum check."""
    rule = body.quorum
    parts = []
    if rule.fraction:
        parts.append(f"{rule.fraction.numerator}/{rule.fraction.denominator} of the members, rounded up")
    if rule.minimum > 1:
        parts.append(f"at least {rule.minimum} members")
    if rule.min_voting:
        parts.append(f"including {rule.min_voting} voting members")
    if rule.private_at_least_public:
        parts.append("with at least as many private-sector as public-sector members present")
    if not rule.conflicted_count:
        parts.append("members with a conflict of interest in an item do not count towards it")
    return "; ".join(parts) or "at least one member"


def gate_context(instance: Instance, gate: Gate, send_on: date, level: int) -> JsonDict:
    definition = instance.definition
    concluded = instance.concluded(gate)
    assert gate.due is not None
    return {
        "gate_id": gate.id,
        "gate_name": gate.name,
        "due_date": gate.due.isoformat(),
        "working_days_overdue": max(instance.calendar.working_days_until(gate.due, send_on), 0),
        "escalation_level": level,
        "waiting_for": [definition.body_by_id[b].name for b in gate.boards if b not in concluded],
    }


def condition_context(instance: Instance, condition: Condition, decision: Decision, send_on: date) -> JsonDict:
    definition = instance.definition
    assert condition.due is not None
    return {
        "body_name": definition.body_by_id[decision.body].name,
        "decision_date": decision.day.isoformat(),
        "gate_name": definition.gate_by_id[condition.gate].name,
        "condition_text": condition.text,
        "condition_owner": condition.owner or "the owner named in the decision",
        "due_date": condition.due.isoformat(),
        "working_days_left": instance.calendar.working_days_until(send_on, condition.due),
    }


def risk_context(instance: Instance, outlook: Forecast) -> JsonDict:
    blocking = outlook.blocking
    assert blocking is not None
    return {
        "gate_id": blocking.gate,
        "gate_name": blocking.name,
        "deadline_name": instance.definition.deadline_label,
        "external_deadline": instance.deadline.isoformat(),
        "reason": blocking.reason,
        "forecast_date": _iso(blocking.day),
        "remaining_gates": [p.name for p in outlook.placements],
    }


def decision_context(instance: Instance, data: dict[str, Any], actor: str) -> JsonDict:
    definition = instance.definition
    return {
        "body_name": definition.body_by_id[data["body"]].name,
        "decision_date": data["date"],
        "gate_id": data["gate"],
        "gate_name": definition.gate_by_id[data["gate"]].name,
        "outcome": str(data["outcome"]).replace("-", " "),
        "decision_mode": _MODES.get(data["mode"], data["mode"]),
        "recorded_by": actor,
        "conditions": [
            {"text": c["text"], "owner": c.get("owner") or "not named", "due": c.get("due")}
            for c in data.get("conditions", [])
        ],
    }


def gate_passed_context(instance: Instance, data: dict[str, Any]) -> JsonDict:
    definition = instance.definition
    gate_id = data["gate"]
    bodies = [str(decision).split("/")[1] for decision in data.get("decisions", [])]
    return {
        "gate_id": gate_id,
        "gate_name": definition.gate_by_id[gate_id].name,
        "passed_on": data["date"],
        "decided_by": [definition.body_by_id[b].name for b in bodies if b in definition.body_by_id],
        "next_step": next_step(instance, gate_id),
    }


def next_step(instance: Instance, gate_id: str) -> str:
    """What follows a gate, in words: the next gate of its phase, else the next phase; "" after the last."""
    definition = instance.definition
    phase = definition.phase_by_id[definition.gate_phase[gate_id]]
    later = [g for g in phase.gates if gate_id in g.after] or phase.gates[
        [g.id for g in phase.gates].index(gate_id) + 1 :
    ]
    if later:
        return f"“{later[0].name}”"
    following = definition.phase_ids[definition.phase_index(phase.id) + 1 :]
    if not following or following[0] == definition.final_phase:
        return ""
    upcoming = definition.phase_by_id[following[0]]
    return f"{upcoming.name}: {upcoming.description}" if upcoming.description else upcoming.name
