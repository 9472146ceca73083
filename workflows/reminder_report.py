"""What ``govflow reminders`` and ``govflow notifications`` show, as data and as text.

``reminders`` merges the live plan (computed now from the log, so it is right even before
a worker has run) with the outbox (what the worker stored, claimed, sent, missed or
cancelled). ``notifications`` reads the audit record: the ``NotificationSent``,
``NotificationFailed`` and ``NotificationMissed`` events of ``notifications:<instance>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from governance.events import RecordedEvent
from governance.reminders import NEWS_RULES, Notice, Plan, withdrawal_reason
from governance.state import Instance
from workflows.delivery import DELIVERY_FAILED_RULE
from workflows.outbox_row import OutboxRow

__all__ = ["notifications_json", "notifications_text", "reminders_json", "reminders_text"]

# News and forwarded failures are never withdrawn from the outbox (see workflows.worker).
_NEVER_WITHDRAWN = NEWS_RULES | {DELIVERY_FAILED_RULE}


def _local(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def reminders_json(
    instance: Instance, plan: Plan, rows: list[OutboxRow], moot_before: datetime | None = None
) -> dict[str, Any]:
    """The plan and the outbox of one instance, one entry per notification key.

    A notice not stored yet that was already not worth sending at ``moot_before`` (the last
    event's time) is left out, as the worker leaves it out of the outbox.
    """
    timezone = instance.definition.timezone
    stored = {row.key: row for row in rows}
    planned = {notice.key: notice for notice in plan.notices}
    entries = [_stored_entry(instance, plan, row, row.key in planned, timezone) for row in rows]
    entries += [
        _planned_entry(notice, timezone)
        for notice in plan.notices
        if notice.key not in stored
        and not (moot_before is not None and notice.stale_after is not None and notice.stale_after <= moot_before)
    ]
    for entry in entries:
        notice = planned.get(entry["key"]) if entry["state"] == "planned" else None
        if notice is not None:  # the live plan knows the current due time
            entry |= {"due_at": notice.due_at.isoformat(), "due_local": _local(notice.due_at, timezone)}
    entries.sort(key=lambda e: (e["due_at"], e["key"]))
    return {
        "instance": instance.id,
        "version": instance.version,
        "as_of": plan.as_of.isoformat(),
        "silenced": plan.silenced,
        "problems": list(plan.problems),
        "at_risk": plan.forecast.as_json() if plan.forecast is not None else None,
        "notifications": entries,
    }


def _planned_entry(notice: Notice, timezone: str) -> dict[str, Any]:
    return {
        "key": notice.key,
        "rule": notice.rule,
        "kind": notice.kind,
        "subject": notice.subject,
        "target": notice.target.isoformat(),
        "recipient": notice.recipient.email.lower(),
        "recipient_role": notice.recipient.role,
        "due_at": notice.due_at.isoformat(),
        "due_local": _local(notice.due_at, timezone),
        "state": "planned",
        "stored": False,
        "reason": notice.reason,
        "outcome": None,
        "attempts": 0,
        "message_id": None,
        "sent_at": None,
    }


def _stored_entry(instance: Instance, plan: Plan, row: OutboxRow, in_plan: bool, timezone: str) -> dict[str, Any]:
    state, outcome = row.state, row.outcome
    if state == "planned" and not in_plan and row.rule not in _NEVER_WITHDRAWN:
        state, outcome = "withdrawn", withdrawal_reason(instance, row.subject, row.target, plan.silenced)
    return {
        "key": row.key,
        "rule": row.rule,
        "kind": row.kind,
        "subject": row.subject,
        "target": row.target.isoformat(),
        "recipient": row.recipient,
        "recipient_role": row.recipient_role,
        "due_at": row.due_at.isoformat(),
        "due_local": _local(row.due_at, timezone),
        "state": state,
        "stored": True,
        "reason": row.reason,
        "outcome": outcome,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def reminders_text(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for entry in report["notifications"]:
        counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
    lines = [f"{report['instance']} — notifications as of {report['as_of']} (version {report['version']}): {summary}"]
    if report["silenced"]:
        lines.append(f"  no reminders: {report['silenced']}")
    risk = report["at_risk"]
    if risk and risk["at_risk"]:
        lines.append(f"  AT RISK: gate '{risk['gate']}' cannot pass before {risk['deadline']}: {risk['reason']}")
    for problem in report["problems"]:
        lines.append(f"  not planned: {problem}")
    lines.append(f"  {'due':<21} {'state':<10} {'rule':<22} {'to':<44} why")
    for entry in report["notifications"]:
        mark = "" if entry["stored"] else "*"
        why = entry["outcome"] if entry["state"] in ("cancelled", "missed", "failed", "withdrawn") else entry["reason"]
        lines.append(
            f"  {entry['due_local']:<21} {entry['state'] + mark:<10} {entry['rule']:<22} {entry['recipient']:<44} {why}"
        )
    if any(not entry["stored"] for entry in report["notifications"]):
        lines.append("  * not stored yet: the worker stores it at its next tick")
    return "\n".join(lines)


def notifications_json(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    """The notification events of one instance, oldest first."""
    return [
        {
            "type": event.type,
            "recorded_at": event.recorded_at.isoformat(),
            "version": event.version,
            "position": event.position,
            "actor": event.actor,
            **event.data,
        }
        for event in events
    ]


def notifications_text(instance: str, entries: list[dict[str, Any]], timezone: str) -> str:
    if not entries:
        return f"{instance}: no notification sent yet (is `govflow worker` running?)"
    lines = [f"{'when':<21} {'what':<8} {'rule':<22} {'to':<44} Message-ID / reason"]
    words = {"NotificationSent": "sent", "NotificationFailed": "FAILED", "NotificationMissed": "missed"}
    for entry in entries:
        when = _local(datetime.fromisoformat(entry["recorded_at"]), timezone)
        detail = entry.get("message_id") or entry.get("error") or entry.get("reason") or ""
        what = words.get(entry["type"], entry["type"])
        lines.append(f"{when:<21} {what:<8} {entry['rule']:<22} {entry['recipient']:<44} {detail}")
    return "\n".join(lines)
