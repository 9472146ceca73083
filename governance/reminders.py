"""The reminder plan: every notification an instance should give, derived from its state alone.

:func:`plan_notifications` reads the folded :class:`~governance.state.Instance` (and, for
the news of decisions and passed gates, its recorded events) and returns a :class:`Plan`:
one :class:`Notice` per rung, anchor and recipient. Nothing here reads the clock: ``today``
is an argument, and only the at-risk warning depends on it.

Each notice has an idempotency key ``instance/rule/subject/target/recipient``. A moved
meeting or deadline changes the target, so it gets new keys and the old ones drop out of
the plan; a rung already sent stays sent. A notice is due on a working day at 09:00 in the
workflow's time zone (``local_datetime``), so a GMT/BST change neither moves nor repeats a
send. While an instance is paused, superseded or complete it gets no reminders, only news.

Relevance: a notice stops being worth sending (``stale_after``) when a later rung of the same
ladder to the same person falls due, when the meeting it prepares has been held, or when it is
more than a few working days late. A worker that was down marks such notices missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from itertools import pairwise
from typing import Final

from governance.calendar import local_datetime
from governance.definition import PAUSED, Body, Contact
from governance.events import JsonDict, RecordedEvent
from governance.forecast import Forecast, forecast
from governance.ladder import (
    KINDS,
    Draft,
    condition_drafts,
    deadline_drafts,
    gate_drafts,
    meeting_drafts,
    template_kind,
)
from governance.news import DECISION_RULE, GATE_PASSED_RULE, news_drafts
from governance.notice_context import common_context
from governance.state import Instance

__all__ = ["KINDS", "NEWS_RULES", "SEND_AT", "Notice", "Plan", "plan_notifications", "withdrawal_reason"]

SEND_AT: Final = time(9, 0)
NEWS_RULES: Final = frozenset({DECISION_RULE, GATE_PASSED_RULE})
"""News is planned once, from the events since the last plan, and never withdrawn."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to one recipient: when it is due, what it says, and why it exists."""

    key: str
    instance: str
    rule: str
    kind: str
    subject: str
    target: date
    send_on: date
    due_at: datetime
    """Aware, UTC."""
    recipient: Contact
    context: JsonDict
    reason: str
    stale_after: datetime | None
    stale_reason: str
    invite: JsonDict | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Every notice of one instance as of a version and a day."""

    instance: str
    version: int
    as_of: date
    notices: tuple[Notice, ...]
    replan_on: date | None
    """A day on which the plan may change without a new event (the at-risk forecast)."""
    silenced: str | None
    """Why no reminders are planned (paused, superseded, complete), or None."""
    problems: tuple[str, ...]
    """Rungs that could not be planned (no template kind, no contact for a role)."""
    forecast: Forecast | None = None


def plan_notifications(
    instance: Instance, today: date, *, events: Sequence[RecordedEvent] = (), send_at: time = SEND_AT
) -> Plan:
    """The plan of ``instance`` as of ``today``; ``events`` (its stream) give the news notices."""
    definition = instance.definition
    problems: list[str] = []
    drafts: list[Draft] = []
    outlook: Forecast | None = None
    silenced = _silenced(instance)
    if silenced is None:
        outlook = forecast(instance, today)
        for rule in definition.reminders:
            kind = template_kind(rule)
            if kind is None:
                problems.append(f"rule '{rule.id}': no template fits '{rule.template}' at anchor '{rule.anchor}'")
            elif rule.anchor == "meeting":
                drafts += meeting_drafts(instance, rule, kind)
            elif rule.anchor == "gate-due":
                drafts += gate_drafts(instance, rule, kind)
            elif rule.anchor == "condition-due":
                drafts += condition_drafts(instance, rule, kind)
            else:
                drafts += deadline_drafts(instance, rule, kind, today, outlook)
    drafts += news_drafts(instance, events, send_at)
    notices = _relevance(_expand(instance, drafts, send_at, problems))
    return Plan(
        instance=instance.id,
        version=instance.version,
        as_of=today,
        notices=tuple(sorted(notices, key=lambda n: (n.due_at, n.key))),
        replan_on=_replan_on(instance, today, outlook),
        silenced=silenced,
        problems=tuple(dict.fromkeys(problems)),
        forecast=outlook,
    )


def _silenced(instance: Instance) -> str | None:
    if instance.superseded is not None:
        return f"superseded: {instance.superseded}"
    if instance.state == PAUSED:
        return f"paused: {instance.pause_reason}"
    if not instance.active:
        return f"complete ({instance.state})"
    return None


def _expand(instance: Instance, drafts: list[Draft], send_at: time, problems: list[str]) -> list[tuple[str, Notice]]:
    """One notice per draft and recipient; a role with no contact is a problem, not a silence."""
    definition = instance.definition
    zone = definition.timezone
    notices = []
    for draft in drafts:
        due_at = local_datetime(draft.send_on, send_at, zone).astimezone(UTC)
        if draft.not_before is not None and draft.not_before > due_at:
            due_at = draft.not_before.astimezone(UTC)
        stale_after = None
        if draft.stale_from is not None:
            stale_after = local_datetime(draft.stale_from, time(0), zone).astimezone(UTC)
        for contact, body in _recipients(instance, draft, problems):
            key = f"{instance.id}/{draft.rule}/{draft.subject}/{draft.target.isoformat()}/{contact.email.lower()}"
            notices.append(
                (
                    draft.family,
                    Notice(
                        key=key,
                        instance=instance.id,
                        rule=draft.rule,
                        kind=draft.kind,
                        subject=draft.subject,
                        target=draft.target,
                        send_on=draft.send_on,
                        due_at=due_at,
                        recipient=contact,
                        context={**common_context(instance, contact, body, key), **draft.context},
                        reason=draft.reason,
                        stale_after=stale_after,
                        stale_reason=draft.stale_reason,
                        invite=draft.invite,
                    ),
                )
            )
    return notices


def _recipients(instance: Instance, draft: Draft, problems: list[str]) -> list[tuple[Contact, Body | None]]:
    """Each role resolved in each body concerned, else programme-wide (docs/definition-format.md)."""
    definition = instance.definition
    found: dict[str, tuple[Contact, Body | None]] = {}
    bodies: list[Body | None] = [definition.body_by_id[b] for b in draft.concerns] or [None]
    for role in draft.roles:
        for body in bodies:
            own = next((c for c in body.contacts if c.role == role), None) if body is not None else None
            contact = own or next((c for c in definition.contacts if c.role == role), None)
            if contact is None:
                where = f"body '{body.id}'" if body is not None else "the programme"
                problems.append(f"rule '{draft.rule}': no contact with role '{role}' for {where}")
                continue
            found.setdefault(contact.email.lower(), (contact, body if own else None))
    return list(found.values())


def _relevance(notices: list[tuple[str, Notice]]) -> list[Notice]:
    """Let a later rung of the same ladder to the same person replace an earlier one once it is due."""
    ladders: dict[tuple[str, str, date, str], list[Notice]] = {}
    for family, notice in notices:
        ladders.setdefault((family, notice.subject, notice.target, notice.recipient.email.lower()), []).append(notice)
    result = []
    for group in ladders.values():
        group.sort(key=lambda n: n.due_at)
        replaced: dict[str, Notice] = {}
        for earlier, later in pairwise(group):
            if later.due_at > earlier.due_at:
                replaced[earlier.key] = later
        for notice in group:
            after = replaced.get(notice.key)
            if after is not None and (notice.stale_after is None or after.due_at < notice.stale_after):
                reason = f"'{after.rule}' to the same person was due by then ({after.send_on.isoformat()})"
                notice = _with_stale(notice, after.due_at, reason)
            result.append(notice)
    return result


def _with_stale(notice: Notice, when: datetime, reason: str) -> Notice:
    return replace(notice, stale_after=when, stale_reason=reason)


def _replan_on(instance: Instance, today: date, outlook: Forecast | None) -> date | None:
    """When the forecast can change with no new event: a meeting goes by, or the slack runs out."""
    if outlook is None or not outlook.placements:
        return None
    calendar = instance.calendar
    candidates = [
        date.fromordinal(m.day.toordinal() + 1)
        for m in instance.meetings.values()
        if m.cancelled is None and m.day >= today
    ]
    if not outlook.at_risk and any(p.moves_with_today for p in outlook.placements):
        last = max(p.day for p in outlook.placements if p.day is not None)
        slack = max(calendar.working_days_until(last, instance.deadline), 1)
        candidates.append(calendar.add_working_days(today, slack))
    return min(candidates, default=None)


def withdrawal_reason(instance: Instance, subject: str, target: date, silenced: str | None) -> str:
    """Why a notice planned earlier is no longer in the plan, in words for the outbox and the CLI."""
    if silenced is not None:
        return f"instance {silenced}"
    meeting = instance.meetings.get(subject)
    if meeting is not None:
        if meeting.cancelled is not None:
            return f"meeting cancelled: {meeting.cancelled}"
        if meeting.day != target:
            why = meeting.moves[-1][1] if meeting.moves else "rescheduled"
            return f"meeting moved to {meeting.day.isoformat()}: {why}"
    if subject in instance.passed:
        return f"gate '{subject}' passed on {instance.passed[subject].isoformat()}"
    condition = instance.conditions.get(subject)
    if condition is not None:
        if condition.discharged_on is not None:
            return f"condition discharged on {condition.discharged_on.isoformat()}"
        if all(d.void is not None for d in instance.decisions if d.id == condition.decision):
            return "the decision that set the condition no longer counts"
    gate = instance.definition.gate_by_id.get(subject)
    if gate is not None and target != gate.due:
        if target == instance.deadline:
            return "no longer at risk: the remaining gates fit before the deadline"
        return f"the deadline moved to {instance.deadline.isoformat()}"
    return f"no longer in the plan as of version {instance.version}"
