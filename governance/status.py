"""The status of an instance as plain data: phase, gates, tasks, deadlines.

:func:`status_of` builds the object ``govflow status --json`` prints (and ``audit
replay --json``), from the folded instance and a ``today`` given by the caller.
Its keys are a stable interface for scripts and dashboards: add, never rename.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from governance.definition import Gate
from governance.forecast import forecast
from governance.state import POSITIVE_OUTCOMES, Instance

MAX_NEXT_DEADLINES = 10


def _board_view(instance: Instance, gate: Gate, today: date) -> list[dict[str, Any]]:
    standing = instance.standing(gate.id)
    concluded = instance.concluded(gate)
    voided = {d.body for d in instance.decisions if d.gate == gate.id and d.void is not None}
    boards = []
    for body_id in gate.boards:
        body = instance.definition.body_by_id[body_id]
        period = body.membership_on(today) or body.membership[-1]
        decision = standing.get(body_id)
        boards.append(
            {
                "id": body_id,
                "decided": body_id in concluded,
                "outcome": decision.outcome if decision else None,
                "decision_date": decision.day.isoformat() if decision else None,
                "decision": decision.id if decision else None,
                "must_decide_again": body_id in voided and body_id not in concluded,
                "members": period.members,
                "quorum": body.quorum.required(period.members),
            }
        )
    return boards


def _gate_view(instance: Instance, gate: Gate, today: date) -> dict[str, Any]:
    status = instance.gate_status(gate)
    boards = _board_view(instance, gate, today)
    return {
        "id": gate.id,
        "name": gate.name,
        "phase": instance.definition.gate_phase[gate.id],
        "status": status,
        "due": gate.due.isoformat() if gate.due else None,
        "overdue": bool(gate.due and gate.due < today and status != "passed"),
        "passed_on": instance.passed[gate.id].isoformat() if gate.id in instance.passed else None,
        "rule": gate.rule if gate.rule == "all" else f"{gate.needed} of {len(gate.boards)}",
        "after": list(gate.after),
        "boards": boards,
        "waiting_for": [b["id"] for b in boards if not b["decided"]] if status in ("open", "waiting") else [],
        "dissent": sorted(b for b, d in instance.concluded(gate).items() if d.outcome not in POSITIVE_OUTCOMES),
        "conditions": [
            {
                "id": c.id,
                "text": c.text,
                "owner": c.owner,
                "due": c.due.isoformat() if c.due else None,
                "discharged_on": c.discharged_on.isoformat() if c.discharged_on else None,
            }
            for c in instance.conditions.values()
            if c.gate == gate.id
        ],
    }


def next_deadlines(instance: Instance, today: date) -> list[dict[str, Any]]:
    """What falls due from ``today`` on (and what is already overdue), soonest first."""
    calendar = instance.calendar
    definition = instance.definition
    items: list[dict[str, Any]] = []

    def add(day: date, kind: str, what: str, **extra: Any) -> None:
        items.append({"date": day.isoformat(), "kind": kind, "what": what, "overdue": day < today, **extra})

    for meeting in instance.meetings.values():
        if meeting.cancelled is not None:
            continue
        name = definition.body_by_id[meeting.body].name
        if meeting.day >= today:
            add(meeting.day, "meeting", f"{name} meets", meeting=meeting.id, synthetic=meeting.synthetic)
            papers = calendar.papers_deadline(meeting.day, definition.paper_clear_days)
            if papers >= today:
                add(papers, "papers", f"papers published for {name} on {meeting.day.isoformat()}", meeting=meeting.id)
        else:
            minutes = calendar.minutes_deadline(meeting.day, definition.minutes_clear_days)
            if minutes >= today:
                add(minutes, "minutes", f"draft minutes of {name} on {meeting.day.isoformat()}", meeting=meeting.id)
    if instance.active or instance.state == "paused":
        for gate in definition.gate_by_id.values():
            status = instance.gate_status(gate)
            if gate.due is not None and status in ("open", "conditional", "waiting"):
                add(gate.due, "gate", f"gate '{gate.id}' due", gate=gate.id)
            for decision in instance.standing(gate.id).values():
                deferred = decision.data.get("deferred_to")
                if decision.outcome == "deferred" and deferred and date.fromisoformat(deferred) >= today:
                    add(
                        date.fromisoformat(deferred),
                        "deferred",
                        f"'{decision.body}' to decide '{gate.id}'",
                        gate=gate.id,
                    )
        for condition in instance.conditions.values():
            if condition.discharged_on is None and condition.due is not None:
                add(condition.due, "condition", f"condition '{condition.id}' due", condition=condition.id)
        add(instance.deadline, "deadline", definition.deadline_label)
    items.sort(key=lambda item: (not item["overdue"], item["date"], item["kind"]))
    return items[:MAX_NEXT_DEADLINES]


def status_of(instance: Instance, today: date) -> dict[str, Any]:
    """The status object of ``govflow status --json`` as of ``today``."""
    definition = instance.definition
    working = instance.working_phase
    phase_tasks = {t.id for t in definition.phase_by_id[working].tasks} if working in definition.phase_by_id else set()
    return {
        "instance": instance.id,
        "definition": definition.id,
        "definition_version": definition.version,
        "definition_hash": definition.content_hash,
        "title": definition.title,
        "phase": instance.phase,
        "working_phase": working,
        "paused": instance.pause_reason,
        "superseded": instance.superseded,
        "version": instance.version,
        "as_of": today.isoformat(),
        "started": instance.started_on.isoformat(),
        "deadline": instance.deadline.isoformat(),
        "deadline_label": definition.deadline_label,
        "days_to_deadline": (instance.deadline - today).days,
        "document": (
            {"version": doc.number, "sha256": doc.sha256, "name": doc.name, "added_on": doc.added_on.isoformat()}
            if (doc := instance.current_document)
            else None
        ),
        "gates": [_gate_view(instance, gate, today) for gate in definition.gate_by_id.values()],
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "phase": definition.task_phase[task.id],
                "required": task.required,
                "done": task.id in instance.tasks_done,
                "done_on": instance.tasks_done[task.id].isoformat() if task.id in instance.tasks_done else None,
                "current": task.id in phase_tasks,
            }
            for task in definition.task_by_id.values()
        ],
        "next_deadlines": next_deadlines(instance, today),
        # Can the remaining gates still pass before the deadline? (governance.forecast)
        "at_risk": forecast(instance, today).as_json(),
        "corrections": [
            {
                "version": c.version,
                "corrects": c.corrects,
                "type": c.type,
                "effect": c.effect,
                "decision": c.decision,
                "reason": c.reason,
            }
            for c in instance.corrections
        ],
    }
