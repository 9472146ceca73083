"""The commands of the domain: each checks the rules and returns the new events.

Every command takes the folded :class:`~governance.state.Instance`, its
arguments and ``now`` (an aware datetime from the caller's clock: the domain never
reads one), raises a :class:`~governance.errors.RuleViolation` when a rule refuses
it, and otherwise returns the events to append. The events are applied to the
instance as they are made, so on return ``instance`` is the state after them; a
caller whose append fails simply drops that instance.

After each command, :func:`_settle` adds what follows from it by the rules: gates
whose decisions and conditions are complete pass, and a phase whose gates have all
passed and whose required tasks are done is left for the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from governance import events as ev
from governance.definition import PAUSED, SUPERSEDED, Definition
from governance.errors import (
    BlackoutInForce,
    BodyNotExpected,
    DateOutOfRange,
    GateNotOpen,
    InstanceNotActive,
    NotApplicable,
    UnknownName,
)
from governance.events import JsonDict, NewEvent
from governance.quorum import POSITIVE, DecisionInput, check_decision
from governance.state import CORRECTION_ANNOTATES, CORRECTION_VOIDS, OUTCOMES, Instance, begin

EVENT_SCHEMA_VERSION = 1


class _Changes:
    """Collects the events of one command, applying each to the instance as it goes."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.events: list[NewEvent] = []

    def emit(self, type_: str, data: JsonDict, occurred_at: datetime) -> None:
        event = NewEvent(type_, data, occurred_at)
        self.instance.apply(event)
        self.events.append(event)


def local_day(moment: datetime, definition: Definition) -> date:
    """The calendar date of ``moment`` in the workflow's timezone."""
    return _local_day(moment, definition.timezone)


@lru_cache(maxsize=64)  # a command asks for the same moment's day several times
def _local_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def start_of_day(day: date, definition: Definition) -> datetime:
    """Midnight at the start of ``day`` in the workflow's timezone."""
    return datetime.combine(day, time(0), ZoneInfo(definition.timezone))


def _occurred(day: date | None, now: datetime, definition: Definition) -> datetime:
    """When something dated ``day`` happened: that day, or ``now`` if it is today or undated."""
    if day is None or day == local_day(now, definition):
        return now
    return start_of_day(day, definition)


def _check_day(instance: Instance, what: str, day: date, now: datetime) -> None:
    if day < instance.started_on:
        raise DateOutOfRange(what, day, f"before the instance started ({instance.started_on.isoformat()})")
    today = local_day(now, instance.definition)
    if day > today:
        raise DateOutOfRange(what, day, f"in the future (today is {today.isoformat()})")


def _require_active(instance: Instance) -> None:
    if not instance.active:
        raise InstanceNotActive(instance.id, instance.state)


# -- starting ----------------------------------------------------------------------------------


def start(
    instance_id: str,
    definition: Definition,
    now: datetime,
    bank_holidays: Iterable[date],
    *,
    day: date | None = None,
) -> tuple[Instance, list[NewEvent]]:
    """Start an instance of ``definition``; it records the calendar it will run under.

    The meetings the definition plans belong to the definition the event names (by
    content hash), so the instance has them from its first event; a secretary
    confirms each with ``schedule_meeting``.
    """
    started = day or local_day(now, definition)
    if started > local_day(now, definition):
        raise DateOutOfRange("start date", started, "in the future")
    data: JsonDict = {
        "instance": instance_id,
        "definition": definition.id,
        "definition_version": definition.version,
        "date": started.isoformat(),
        "deadline": definition.deadline.isoformat(),
        "timezone": definition.timezone,
        "calendar": {
            "region": "england-and-wales",
            "bank_holidays": sorted(d.isoformat() for d in bank_holidays),
        },
    }
    first = NewEvent(ev.INSTANCE_STARTED, data, _occurred(started, now, definition))
    instance = begin(instance_id, definition, data)
    changes = _Changes(instance)
    changes.events.append(first)
    return instance, changes.events


# -- documents and tasks -----------------------------------------------------------------------


def add_document(instance: Instance, sha256: str, name: str, size: int, now: datetime) -> list[NewEvent]:
    """Register a new version of the instance's document; voids decisions on the old one.

    Only decisions at gates that bind a document and have not passed yet are voided.
    """
    _require_active(instance)
    current = instance.current_document
    if current is not None and current.sha256 == sha256:
        raise NotApplicable(f"this file is already document version {current.number} ({sha256[:12]}…)")
    voided = [
        d.id
        for d in instance.decisions
        if d.void is None and instance.definition.gate_by_id[d.gate].document and d.gate not in instance.passed
    ]
    changes = _Changes(instance)
    changes.emit(
        ev.DOCUMENT_VERSION_ADDED,
        {
            "number": len(instance.documents) + 1,
            "sha256": sha256,
            "name": name,
            "size": size,
            "date": local_day(now, instance.definition).isoformat(),
            "voided": voided,
        },
        now,
    )
    return changes.events


def complete_task(
    instance: Instance, task_id: str, now: datetime, *, day: date | None = None, note: str | None = None
) -> list[NewEvent]:
    """Mark a task of the current (or an earlier) phase done."""
    _require_active(instance)
    definition = instance.definition
    if task_id not in definition.task_by_id:
        raise UnknownName("task", task_id, tuple(definition.task_by_id))
    phase = definition.task_phase[task_id]
    if definition.phase_index(phase) > definition.phase_index(instance.state):
        raise NotApplicable(f"task '{task_id}' belongs to phase '{phase}', which has not started")
    if task_id in instance.tasks_done:
        raise NotApplicable(f"task '{task_id}' was already completed on {instance.tasks_done[task_id].isoformat()}")
    done_on = day or local_day(now, definition)
    _check_day(instance, "completion date", done_on, now)
    changes = _Changes(instance)
    data: JsonDict = {"task": task_id, "phase": phase, "date": done_on.isoformat()}
    if note:
        data["note"] = note
    occurred = _occurred(done_on, now, definition)
    changes.emit(ev.TASK_COMPLETED, data, occurred)
    _settle(changes, done_on, occurred)
    return changes.events


# -- meetings ----------------------------------------------------------------------------------


def schedule_meeting(
    instance: Instance, body_id: str, day: date, now: datetime, *, meeting_id: str | None = None, note: str = ""
) -> list[NewEvent]:
    """Schedule a meeting of a body; its id defaults to ``<body>-<date>``."""
    _require_not_over(instance)
    if body_id not in instance.definition.body_by_id:
        raise UnknownName("body", body_id, tuple(instance.definition.body_by_id))
    ident = meeting_id or f"{body_id}-{day.isoformat()}"
    existing = instance.meetings.get(ident)
    if existing is not None and (
        existing.confirmed or existing.cancelled or existing.day != day or existing.body != body_id
    ):
        raise NotApplicable(f"meeting '{ident}' is already scheduled for {existing.day.isoformat()}")
    changes = _Changes(instance)
    data: JsonDict = {"meeting": ident, "body": body_id, "date": day.isoformat(), "source": "secretary"}
    if existing is not None:
        data["confirms"] = "definition"  # the secretary confirms a meeting the definition planned
    else:
        data["synthetic"] = False
    if note:
        data["note"] = note
    changes.emit(ev.MEETING_SCHEDULED, data, now)
    return changes.events


def _meeting(instance: Instance, meeting_id: str) -> Any:
    meeting = instance.meetings.get(meeting_id)
    if meeting is None:
        raise UnknownName("meeting", meeting_id, tuple(instance.meetings))
    if meeting.cancelled is not None:
        raise NotApplicable(f"meeting '{meeting_id}' was cancelled: {meeting.cancelled}")
    return meeting


def reschedule_meeting(instance: Instance, meeting_id: str, day: date, reason: str, now: datetime) -> list[NewEvent]:
    _require_not_over(instance)
    meeting = _meeting(instance, meeting_id)
    if meeting.day == day:
        raise NotApplicable(f"meeting '{meeting_id}' is already on {day.isoformat()}")
    changes = _Changes(instance)
    changes.emit(
        ev.MEETING_RESCHEDULED,
        {"meeting": meeting_id, "from": meeting.day.isoformat(), "date": day.isoformat(), "reason": reason},
        now,
    )
    return changes.events


def cancel_meeting(instance: Instance, meeting_id: str, reason: str, now: datetime) -> list[NewEvent]:
    _require_not_over(instance)
    meeting = _meeting(instance, meeting_id)
    changes = _Changes(instance)
    changes.emit(ev.MEETING_CANCELLED, {"meeting": meeting_id, "date": meeting.day.isoformat(), "reason": reason}, now)
    return changes.events


def _require_not_over(instance: Instance) -> None:
    if instance.state == SUPERSEDED or instance.state == instance.definition.final_phase:
        raise InstanceNotActive(instance.id, instance.state)


# -- decisions ---------------------------------------------------------------------------------


def record_decision(instance: Instance, decision: DecisionInput, now: datetime) -> list[NewEvent]:
    """Record a body's decision at a gate, after checking every rule of DOMAIN.md."""
    _require_active(instance)
    definition = instance.definition
    gate = definition.gate_by_id.get(decision.gate)
    if gate is None:
        raise UnknownName("gate", decision.gate, tuple(definition.gate_by_id))
    body = definition.body_by_id.get(decision.body)
    if body is None:
        raise UnknownName("body", decision.body, tuple(definition.body_by_id))
    if decision.outcome not in OUTCOMES:
        raise UnknownName("outcome", decision.outcome, OUTCOMES)
    if body.id not in gate.boards:
        raise BodyNotExpected(gate.id, body.id, gate.boards)
    _check_gate_open(instance, gate.id)
    _check_day(instance, "decision date", decision.day, now)
    standing = instance.standing(gate.id).get(body.id)
    if standing is not None and standing.outcome in POSITIVE | {"not-endorsed"}:
        raise NotApplicable(
            f"'{body.id}' already decided '{standing.outcome}' at gate '{gate.id}' on {standing.day.isoformat()} "
            f"(decision {standing.id})"
        )
    if decision.outcome in POSITIVE:
        blackout = instance.calendar.blackout_on(decision.day, body.id)
        if blackout is not None:
            raise BlackoutInForce(body.id, blackout.id, blackout.start, blackout.end, blackout.reason)
    document = instance.current_document
    if gate.document and document is None:
        raise GateNotOpen(gate.id, "it decides on a document and none is registered yet (govflow document add)")
    _check_conditions(decision)
    mode = decision.mode or body.default_mode
    facts = check_decision(body, decision, mode)

    decision_id = f"{gate.id}/{body.id}/{instance.version + 1}"
    data: JsonDict = {
        "decision": decision_id,
        "gate": gate.id,
        "body": body.id,
        "outcome": decision.outcome,
        "mode": mode,
        "date": decision.day.isoformat(),
        "document": document.sha256 if document is not None else None,
        "document_version": document.number if document is not None else None,
        "quorum": facts,
    }
    data.update(_optional_record(decision))
    if decision.conditions:
        data["conditions"] = [
            {
                "id": f"{gate.id}/c{instance.version + 1}.{index}",
                "text": text,
                "owner": decision.condition_owner,
                "due": decision.condition_due.isoformat() if decision.condition_due else None,
            }
            for index, text in enumerate(decision.conditions, start=1)
        ]
    changes = _Changes(instance)
    occurred = _occurred(decision.day, now, definition)
    changes.emit(ev.DECISION_RECORDED, data, occurred)
    if decision.outcome == "rejected" and gate.on_reject is not None:
        _follow_rejection(changes, gate.id, decision_id, occurred)
    _settle(changes, decision.day, occurred)
    return changes.events


def _check_gate_open(instance: Instance, gate_id: str) -> None:
    definition = instance.definition
    gate = definition.gate_by_id[gate_id]
    phase = definition.gate_phase[gate_id]
    if gate_id in instance.passed:
        raise GateNotOpen(gate_id, f"it passed on {instance.passed[gate_id].isoformat()}")
    if phase != instance.state:
        raise GateNotOpen(gate_id, f"it belongs to phase '{phase}' and the instance is in '{instance.state}'")
    waiting = [dep for dep in gate.after if dep not in instance.passed]
    if waiting:
        raise GateNotOpen(gate_id, f"it waits for {', '.join(repr(w) for w in waiting)} to pass")


def _check_conditions(decision: DecisionInput) -> None:
    if decision.outcome == "approved-with-conditions" and not decision.conditions:
        raise NotApplicable("'approved-with-conditions' needs at least one --condition")
    if decision.conditions and decision.outcome != "approved-with-conditions":
        raise NotApplicable(f"conditions go with 'approved-with-conditions', not '{decision.outcome}'")
    if decision.deferred_to is not None:
        if decision.outcome != "deferred":
            raise NotApplicable(f"--deferred-to goes with 'deferred', not '{decision.outcome}'")
        if decision.deferred_to <= decision.day:
            raise DateOutOfRange("deferred-to date", decision.deferred_to, "not after the decision date")


def _optional_record(decision: DecisionInput) -> JsonDict:
    votes = {
        "present": decision.present,
        "for": decision.votes_for,
        "against": decision.against,
        "abstain": decision.abstain,
        "conflicted": decision.conflicted,
        "present_private": decision.present_private,
        "present_public": decision.present_public,
        "present_voting": decision.present_voting,
    }
    record: JsonDict = {"votes": {k: v for k, v in votes.items() if v is not None}}
    for key, value in (
        ("minute_ref", decision.minute_ref),
        ("authority", decision.authority),
        ("comments", decision.comments),
        ("deferred_to", decision.deferred_to.isoformat() if decision.deferred_to else None),
    ):
        if value is not None:
            record[key] = value
    if decision.declarations:
        record["declarations"] = list(decision.declarations)
    return record


def _follow_rejection(changes: _Changes, gate_id: str, decision_id: str, occurred: datetime) -> None:
    """Send the instance back along the gate's rejection route, voiding what no longer stands."""
    instance = changes.instance
    definition = instance.definition
    route = definition.gate_by_id[gate_id].on_reject
    assert route is not None
    later = set(definition.phase_ids[definition.phase_index(route.to_phase) :])
    reset_gates = {
        g.id for g in definition.gate_by_id.values() if definition.gate_phase[g.id] in later and g.document
    } | {gate_id}
    voided = [d.id for d in instance.decisions if d.void is None and d.gate in reset_gates]
    changes.emit(
        ev.PHASE_ENTERED,
        {
            "from": instance.state,
            "to": route.to_phase,
            "cause": "rejection",
            "decision": decision_id,
            "reopened_gates": sorted(g for g in reset_gates if g in instance.passed),
            "reopened_tasks": [t for t in route.reopen_tasks if t in instance.tasks_done],
            "voided": voided,
        },
        occurred,
    )


def discharge_condition(
    instance: Instance, condition_id: str, now: datetime, *, day: date | None = None, evidence: str | None = None
) -> list[NewEvent]:
    """Discharge a condition; the gate passes once its last condition is discharged."""
    _require_active(instance)
    condition = instance.conditions.get(condition_id)
    if condition is None:
        raise UnknownName("condition", condition_id, tuple(instance.conditions))
    if condition.discharged_on is not None:
        raise NotApplicable(f"condition '{condition_id}' was discharged on {condition.discharged_on.isoformat()}")
    done_on = day or local_day(now, instance.definition)
    _check_day(instance, "discharge date", done_on, now)
    changes = _Changes(instance)
    data: JsonDict = {"condition": condition_id, "gate": condition.gate, "date": done_on.isoformat()}
    if evidence:
        data["evidence"] = evidence
    occurred = _occurred(done_on, now, instance.definition)
    changes.emit(ev.CONDITION_DISCHARGED, data, occurred)
    _settle(changes, done_on, occurred)
    return changes.events


def _settle(changes: _Changes, day: date, occurred: datetime) -> None:
    """Pass every gate that is ready, and advance through every complete phase."""
    instance = changes.instance
    definition = instance.definition
    while instance.active:
        phase = definition.phase_by_id[instance.state]
        for gate in phase.gates:
            if instance.gate_can_pass(gate):
                concluded = instance.concluded(gate)
                changes.emit(
                    ev.GATE_PASSED,
                    {
                        "gate": gate.id,
                        "date": day.isoformat(),
                        "decisions": sorted(d.id for d in concluded.values()),
                        "dissent": sorted(b for b, d in concluded.items() if d.outcome not in POSITIVE),
                    },
                    occurred,
                )
        if not instance.phase_complete():
            return
        following = definition.phase_ids[definition.phase_index(instance.state) + 1]
        changes.emit(ev.PHASE_ENTERED, {"from": instance.state, "to": following, "cause": "advance"}, occurred)


# -- pause, resume, supersede, deadline --------------------------------------------------------


def pause(instance: Instance, reason: str, now: datetime) -> list[NewEvent]:
    if instance.state == PAUSED:
        raise NotApplicable(f"instance '{instance.id}' is already paused: {instance.pause_reason}")
    _require_active(instance)
    changes = _Changes(instance)
    changes.emit(ev.INSTANCE_PAUSED, {"reason": reason, "phase": instance.state}, now)
    return changes.events


def resume(instance: Instance, reason: str, now: datetime) -> list[NewEvent]:
    if instance.state != PAUSED:
        raise NotApplicable(f"instance '{instance.id}' is not paused (it is in '{instance.state}')")
    changes = _Changes(instance)
    changes.emit(ev.INSTANCE_RESUMED, {"reason": reason, "phase": instance.resume_to}, now)
    _settle(changes, local_day(now, instance.definition), now)
    return changes.events


def supersede(instance: Instance, reason: str, now: datetime, *, by: str | None = None) -> list[NewEvent]:
    _require_not_over(instance)
    changes = _Changes(instance)
    data: JsonDict = {"reason": reason, "phase": instance.working_phase}
    if by:
        data["by"] = by
    changes.emit(ev.INSTANCE_SUPERSEDED, data, now)
    return changes.events


def extend_deadline(
    instance: Instance, deadline: date, reason: str, now: datetime, bank_holidays: Iterable[date] = ()
) -> list[NewEvent]:
    """Move the external deadline; holidays of newly covered years are recorded with it."""
    _require_not_over(instance)
    if deadline == instance.deadline:
        raise NotApplicable(f"the deadline is already {deadline.isoformat()}")
    if deadline < instance.started_on:
        raise DateOutOfRange("deadline", deadline, f"before the instance started ({instance.started_on.isoformat()})")
    known = instance.calendar.bank_holidays
    extra = sorted(d.isoformat() for d in bank_holidays if d not in known)
    changes = _Changes(instance)
    data: JsonDict = {"from": instance.deadline.isoformat(), "deadline": deadline.isoformat(), "reason": reason}
    if extra:
        data["bank_holidays"] = extra
    changes.emit(ev.DEADLINE_EXTENDED, data, now)
    return changes.events


# -- corrections -------------------------------------------------------------------------------


def correct_event(
    instance: Instance, version: int, event_type: str, reason: str, now: datetime, *, event_hash: str | None = None
) -> list[NewEvent]:
    """Record an amendment of event ``version`` (of type ``event_type``); the event itself stays.

    A decision whose gate is still open is voided, so its body must decide again;
    anything else (a passed gate, a finished instance, another kind of event) is
    annotated. Allowed in every state: an auditor may correct a closed record too.
    """
    if not 1 <= version <= instance.version:
        raise UnknownName("event version", str(version))
    if not reason.strip():
        raise NotApplicable("a correction needs a reason")
    decision = next((d for d in instance.decisions if d.version == version), None)
    voids = (
        decision is not None
        and decision.void is None
        and decision.gate not in instance.passed
        and instance.state not in (SUPERSEDED, instance.definition.final_phase)
    )
    data: JsonDict = {
        "corrects": version,
        "type": event_type,
        "reason": reason,
        "effect": CORRECTION_VOIDS if voids else CORRECTION_ANNOTATES,
    }
    if decision is not None:
        data["decision"] = decision.id
    if event_hash is not None:
        data["hash"] = event_hash
    changes = _Changes(instance)
    changes.emit(ev.EVENT_CORRECTED, data, now)
    return changes.events
