"""The state of one workflow instance, and the fold of its events into it.

``Instance`` is rebuilt from the log by :func:`fold` and advanced by
:meth:`Instance.apply`, one event at a time. ``apply`` never reads the clock or
anything outside the event and the definition the instance started under, so a
replay in 2030 gives the 2019 answer. Phase changes go through the definition's
state machine, which refuses a transition the rules do not allow: a history that
breaks them cannot be folded (:class:`~governance.errors.CorruptHistory`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from transitions import MachineError

from governance import events as ev
from governance.calendar import WorkingCalendar
from governance.definition import PAUSED, SUPERSEDED, Definition, Gate
from governance.errors import CorruptHistory
from governance.events import EventPayload, JsonDict, RecordedEvent
from governance.machine import machine_for

POSITIVE_OUTCOMES = frozenset({"approved", "approved-with-conditions", "endorsed", "endorsed-with-comments"})
DISSENT_OUTCOMES = frozenset({"not-endorsed"})
OPEN_OUTCOMES = frozenset({"deferred", "noted", "returned", "rejected"})
CONCLUDING_OUTCOMES = POSITIVE_OUTCOMES | DISSENT_OUTCOMES
CORRECTION_VOIDS = "voided"
CORRECTION_ANNOTATES = "annotated"
OUTCOMES = (
    "approved",
    "approved-with-conditions",
    "endorsed",
    "endorsed-with-comments",
    "not-endorsed",
    "rejected",
    "deferred",
    "noted",
    "returned",
)


@dataclass(slots=True)
class Decision:
    """A recorded decision of one body at one gate."""

    id: str
    version: int
    gate: str
    body: str
    outcome: str
    mode: str
    day: date
    document: str | None
    data: JsonDict
    void: str | None = None
    """Why the decision no longer counts (a new document version, a rejection), or None."""


@dataclass(slots=True)
class Condition:
    id: str
    gate: str
    decision: str
    text: str
    owner: str | None
    due: date | None
    discharged_on: date | None = None


@dataclass(frozen=True, slots=True)
class MeetingState:
    """A meeting as the instance knows it. Immutable, so that the meetings a definition
    plans are shared by all its instances until an event changes one (see :func:`begin`)."""

    id: str
    body: str
    day: date
    synthetic: bool = False
    confirmed: bool = False
    """Scheduled by a secretary, not only planned in the definition."""
    cancelled: str | None = None
    moves: tuple[tuple[date, str], ...] = ()


@dataclass(slots=True)
class Correction:
    """An amendment of an earlier event, which stays in the log (see :func:`_event_corrected`)."""

    version: int
    corrects: int
    type: str
    reason: str
    effect: str
    """``voided`` (a decision that no longer counts) or ``annotated`` (a note on the record)."""
    decision: str | None = None


@dataclass(slots=True)
class DocumentVersion:
    number: int
    sha256: str
    name: str
    size: int
    added_on: date


@dataclass(slots=True)
class Instance:
    """The folded state of one instance; also the model the phase machine drives."""

    id: str
    definition: Definition
    started_on: date
    deadline: date
    calendar: WorkingCalendar
    state: str = ""
    version: int = 0
    resume_to: str | None = None
    pause_reason: str | None = None
    superseded: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    conditions: dict[str, Condition] = field(default_factory=dict)
    passed: dict[str, date] = field(default_factory=dict)
    tasks_done: dict[str, date] = field(default_factory=dict)
    meetings: dict[str, MeetingState] = field(default_factory=dict)
    documents: list[DocumentVersion] = field(default_factory=list)
    deadline_history: list[tuple[date, str]] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    # The gate ``gate_can_pass`` last found passable, and at which version: a command asks
    # and then applies the GatePassed it makes, whose handler asks again of the same state.
    _passable: tuple[str, int] | None = field(default=None, repr=False, compare=False)

    # -- derived views -----------------------------------------------------------------

    @property
    def phase(self) -> str:
        """The current state: a phase id, ``paused`` or ``superseded``."""
        return self.state

    @property
    def working_phase(self) -> str:
        """The phase the work is in: the phase paused in, or the phase superseded in."""
        return self.resume_to if self.resume_to is not None else self.state

    @property
    def active(self) -> bool:
        return self.state not in (PAUSED, SUPERSEDED, self.definition.final_phase)

    @property
    def current_document(self) -> DocumentVersion | None:
        return self.documents[-1] if self.documents else None

    def live_decisions(self, gate_id: str) -> list[Decision]:
        return [d for d in self.decisions if d.gate == gate_id and d.void is None]

    def standing(self, gate_id: str) -> dict[str, Decision]:
        """Each body's latest decision that still counts at a gate."""
        latest: dict[str, Decision] = {}
        for decision in self.decisions:
            if decision.gate == gate_id and decision.void is None:
                latest[decision.body] = decision
        return latest

    def concluded(self, gate: Gate) -> dict[str, Decision]:
        """The bodies whose standing decision concludes their part of the gate."""
        accepted = POSITIVE_OUTCOMES if gate.strict else CONCLUDING_OUTCOMES
        return {body: d for body, d in self.standing(gate.id).items() if d.outcome in accepted}

    def open_conditions(self, gate_id: str) -> list[Condition]:
        return [c for c in self.conditions.values() if c.gate == gate_id and c.discharged_on is None]

    def gate_decided(self, gate: Gate, concluded: dict[str, Decision] | None = None) -> bool:
        """Whether enough bodies have concluded, conditions aside."""
        concluded = self.concluded(gate) if concluded is None else concluded
        if gate.rule == "all":
            return all(body in concluded for body in gate.boards)
        positive = sum(1 for d in concluded.values() if d.outcome in POSITIVE_OUTCOMES)
        return positive >= gate.needed

    def gate_condition_ids(self, gate: Gate, concluded: dict[str, Decision] | None = None) -> list[str]:
        """Open conditions attached to the decisions that conclude the gate."""
        if not self.conditions:
            return []
        concluded = self.concluded(gate) if concluded is None else concluded
        deciding = {d.id for d in concluded.values()}
        return [c.id for c in self.open_conditions(gate.id) if c.decision in deciding]

    def gate_ready(self, gate: Gate) -> bool:
        """Whether the gate can pass now: decided, and every condition discharged."""
        concluded = self.concluded(gate)
        return self.gate_decided(gate, concluded) and not self.gate_condition_ids(gate, concluded)

    def gate_can_pass(self, gate: Gate) -> bool:
        """Open and ready: the gate passes now. Remembered until the state next changes."""
        if self._passable == (gate.id, self.version):
            return True
        if self.gate_is_open(gate) and self.gate_ready(gate):
            self._passable = (gate.id, self.version)
            return True
        return False

    def gate_is_open(self, gate: Gate) -> bool:
        """In the working phase, not passed, and every ``after`` gate passed."""
        return (
            self.definition.gate_phase[gate.id] == self.working_phase
            and gate.id not in self.passed
            and all(dep in self.passed for dep in gate.after)
        )

    def gate_status(self, gate: Gate) -> str:
        """``waiting``, ``open``, ``conditional`` or ``passed``."""
        if gate.id in self.passed:
            return "passed"
        if not self.gate_is_open(gate):
            return "waiting"
        if self.gate_decided(gate) and self.gate_condition_ids(gate):
            return "conditional"
        return "open"

    def phase_complete(self) -> bool:
        """Every gate of the current phase passed and its required tasks done."""
        phase = self.definition.phase_by_id.get(self.state)
        if phase is None:
            return False
        return all(g.id in self.passed for g in phase.gates) and all(
            t.id in self.tasks_done for t in phase.tasks if t.required
        )

    # -- the fold ----------------------------------------------------------------------

    def apply(self, event: RecordedEvent | EventPayload | ev.NewEvent, version: int | None = None) -> None:
        """Advance the state by one event. ``version`` defaults to the next one."""
        self.apply_payload(event.type, event.data, version if version is not None else self.version + 1)

    def apply_payload(self, event_type: str, data: JsonDict, version: int) -> None:
        """Advance the state by the event of ``event_type`` with payload ``data``, at ``version``.

        What :meth:`apply` does, for a caller holding the parts rather than an event
        (a replay of the whole log, which builds no event object per row).
        """
        handler = _HANDLERS.get(event_type)
        if handler is None:
            raise CorruptHistory(self.id, version, f"unknown event type '{event_type}'")
        try:
            handler(self, data, version)
        except (KeyError, ValueError, TypeError, MachineError) as error:
            raise CorruptHistory(self.id, version, f"{event_type}: {error}") from error
        self.version = version

    def _fire(self, trigger: str) -> None:
        if not machine_for(self.definition).trigger(self, trigger):
            raise MachineError(f"'{trigger}' is not allowed from '{self.state}' now")


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _document_added(inst: Instance, data: JsonDict, version: int) -> None:
    inst.documents.append(
        DocumentVersion(
            number=data["number"],
            sha256=data["sha256"],
            name=data["name"],
            size=data["size"],
            added_on=date.fromisoformat(data["date"]),
        )
    )
    _void(inst, data.get("voided", []), f"document version {data['number']} replaced the one decided on")


def _void(inst: Instance, decision_ids: Iterable[str], reason: str) -> None:
    wanted = set(decision_ids)
    for decision in inst.decisions:
        if decision.id in wanted and decision.void is None:
            decision.void = reason
            wanted.discard(decision.id)
    if wanted:
        raise ValueError(f"voids unknown or already void decisions: {', '.join(sorted(wanted))}")


def _task_completed(inst: Instance, data: JsonDict, version: int) -> None:
    inst.tasks_done[data["task"]] = date.fromisoformat(data["date"])


def _meeting_scheduled(inst: Instance, data: JsonDict, version: int) -> None:
    planned = inst.meetings.get(data["meeting"])
    if planned is not None:
        if planned.confirmed or planned.cancelled is not None or planned.day.isoformat() != data["date"]:
            raise ValueError(f"meeting '{planned.id}' cannot be confirmed")
        inst.meetings[planned.id] = replace(planned, confirmed=True)
        return
    inst.meetings[data["meeting"]] = MeetingState(
        confirmed=data.get("source") != "definition",
        id=data["meeting"],
        body=data["body"],
        day=date.fromisoformat(data["date"]),
        synthetic=bool(data.get("synthetic", False)),
    )


def _meeting_rescheduled(inst: Instance, data: JsonDict, version: int) -> None:
    meeting = inst.meetings[data["meeting"]]
    moves = (*meeting.moves, (meeting.day, data["reason"]))
    inst.meetings[meeting.id] = replace(meeting, day=date.fromisoformat(data["date"]), moves=moves)


def _meeting_cancelled(inst: Instance, data: JsonDict, version: int) -> None:
    meeting = inst.meetings[data["meeting"]]
    inst.meetings[meeting.id] = replace(meeting, cancelled=data["reason"])


def _decision_recorded(inst: Instance, data: JsonDict, version: int) -> None:
    decision = Decision(
        id=data["decision"],
        version=version,
        gate=data["gate"],
        body=data["body"],
        outcome=data["outcome"],
        mode=data["mode"],
        day=date.fromisoformat(data["date"]),
        document=data.get("document"),
        data=data,
    )
    inst.decisions.append(decision)
    for item in data.get("conditions", []):
        inst.conditions[item["id"]] = Condition(
            id=item["id"],
            gate=decision.gate,
            decision=decision.id,
            text=item["text"],
            owner=item.get("owner"),
            due=_day(item.get("due")),
        )


def _condition_discharged(inst: Instance, data: JsonDict, version: int) -> None:
    condition = inst.conditions[data["condition"]]
    if condition.discharged_on is not None:
        raise ValueError(f"condition '{condition.id}' was already discharged")
    condition.discharged_on = date.fromisoformat(data["date"])


def _gate_passed(inst: Instance, data: JsonDict, version: int) -> None:
    gate = inst.definition.gate_by_id[data["gate"]]
    if not inst.gate_can_pass(gate):
        raise ValueError(f"gate '{gate.id}' cannot pass in this state")
    inst.passed[gate.id] = date.fromisoformat(data["date"])


def _gate_reopened(inst: Instance, data: JsonDict, version: int) -> None:
    inst.passed.pop(data["gate"])


def _phase_entered(inst: Instance, data: JsonDict, version: int) -> None:
    if data["from"] != inst.state:
        raise ValueError(f"enters '{data['to']}' from '{data['from']}' but the instance is in '{inst.state}'")
    cause = data["cause"]
    if cause == "advance":
        inst._fire("advance")
    elif cause == "rejection":
        for gate_id in data.get("reopened_gates", []):
            inst.passed.pop(gate_id, None)
        for task_id in data.get("reopened_tasks", []):
            inst.tasks_done.pop(task_id, None)
        _void(inst, data.get("voided", []), f"rejected: back to '{data['to']}'")
        inst._fire(f"back_to_{data['to']}")
    else:
        raise ValueError(f"unknown cause '{cause}'")
    if inst.state != data["to"]:
        raise ValueError(f"entered '{inst.state}', the event says '{data['to']}'")


def _paused(inst: Instance, data: JsonDict, version: int) -> None:
    previous = inst.state
    inst._fire("pause")
    inst.resume_to = previous
    inst.pause_reason = data["reason"]


def _resumed(inst: Instance, data: JsonDict, version: int) -> None:
    if inst.resume_to is None:
        raise ValueError("resumes an instance that is not paused")
    inst._fire(f"resume_to_{inst.resume_to}")
    inst.resume_to = None
    inst.pause_reason = None


def _superseded(inst: Instance, data: JsonDict, version: int) -> None:
    previous = inst.resume_to if inst.state == PAUSED else inst.state
    inst._fire("supersede")
    inst.resume_to = previous
    inst.superseded = data["reason"]


def _deadline_extended(inst: Instance, data: JsonDict, version: int) -> None:
    inst.deadline_history.append((inst.deadline, data["reason"]))
    inst.deadline = date.fromisoformat(data["deadline"])
    extra = data.get("bank_holidays")
    if extra:
        added = frozenset(date.fromisoformat(d) for d in extra)
        inst.calendar = replace(inst.calendar, bank_holidays=inst.calendar.bank_holidays | added)


def _event_corrected(inst: Instance, data: JsonDict, version: int) -> None:
    """A correction voids the decision it corrects while its gate is open, else annotates.

    A voided decision stops counting (the body must decide again, as after a new
    document version); a passed gate, or any other event, stays as it was: the
    correction is recorded beside it and shown in history and status.
    """
    corrects = data["corrects"]
    if not 1 <= corrects < version:
        raise ValueError(f"corrects version {corrects}, which is not an earlier event")
    effect = data["effect"]
    decision_id = data.get("decision")
    if effect == CORRECTION_VOIDS:
        decision = next((d for d in inst.decisions if d.id == decision_id and d.version == corrects), None)
        if decision is None or decision.gate in inst.passed:
            raise ValueError(f"cannot void decision '{decision_id}': unknown, or its gate has passed")
        _void(inst, [decision.id], f"corrected: {data['reason']}")
    elif effect != CORRECTION_ANNOTATES:
        raise ValueError(f"unknown correction effect '{effect}'")
    inst.corrections.append(Correction(version, corrects, data["type"], data["reason"], effect, decision_id))


def _started(inst: Instance, data: JsonDict, version: int) -> None:
    raise ValueError("an instance can start only once")


_HANDLERS: dict[str, Callable[[Instance, JsonDict, int], None]] = {
    ev.INSTANCE_STARTED: _started,
    ev.DOCUMENT_VERSION_ADDED: _document_added,
    ev.TASK_COMPLETED: _task_completed,
    ev.MEETING_SCHEDULED: _meeting_scheduled,
    ev.MEETING_RESCHEDULED: _meeting_rescheduled,
    ev.MEETING_CANCELLED: _meeting_cancelled,
    ev.DECISION_RECORDED: _decision_recorded,
    ev.CONDITION_DISCHARGED: _condition_discharged,
    ev.GATE_PASSED: _gate_passed,
    ev.GATE_REOPENED: _gate_reopened,
    ev.PHASE_ENTERED: _phase_entered,
    ev.INSTANCE_PAUSED: _paused,
    ev.INSTANCE_RESUMED: _resumed,
    ev.INSTANCE_SUPERSEDED: _superseded,
    ev.DEADLINE_EXTENDED: _deadline_extended,
    ev.EVENT_CORRECTED: _event_corrected,
}


_calendars: dict[tuple[str, tuple[str, ...]], WorkingCalendar] = {}


def _calendar(definition: Definition, holidays: list[str]) -> WorkingCalendar:
    """The calendar an instance runs under, shared by every instance recording the same one."""
    key = (definition.content_hash or str(id(definition)), tuple(holidays))
    calendar = _calendars.get(key)
    if calendar is None:
        calendar = WorkingCalendar(
            bank_holidays=frozenset(date.fromisoformat(d) for d in holidays),
            blackouts=definition.blackouts,
        )
        if len(_calendars) < 256:
            _calendars[key] = calendar
    return calendar


def begin(instance_id: str, definition: Definition, data: JsonDict) -> Instance:
    """The state right after an ``InstanceStarted`` event with payload ``data``."""
    instance = Instance(
        id=instance_id,
        definition=definition,
        started_on=date.fromisoformat(data["date"]),
        deadline=date.fromisoformat(data["deadline"]),
        calendar=_calendar(definition, data["calendar"]["bank_holidays"]),
        state=definition.initial_phase,
        version=1,
        meetings=dict(_planned_meetings(definition)),
    )
    return instance


_planned: dict[int, tuple[Definition, dict[str, MeetingState]]] = {}


def _planned_meetings(definition: Definition) -> dict[str, MeetingState]:
    """The meetings ``definition`` plans, built once and shared by every instance it starts.

    A replay of the whole log starts thousands of instances; a state per planned
    meeting per instance was a third of the objects it kept, and the garbage
    collector walks them all, again and again, as the heap grows. Keyed by identity
    like ``machine.machine_for`` (the entry keeps the definition alive).
    """
    entry = _planned.get(id(definition))
    if entry is None:
        meetings = {m.id: MeetingState(m.id, m.body, m.date, m.synthetic) for m in definition.meetings}
        entry = (definition, meetings)
        if len(_planned) < 256:
            _planned[id(definition)] = entry
    return entry[1]


def fold(
    stream_id: str,
    events: Iterable[RecordedEvent | EventPayload],
    definition_for: Callable[[str], Definition],
) -> Instance:
    """Rebuild an instance from its events; ``definition_for`` maps a content hash to a definition."""
    instance: Instance | None = None
    for event in events:
        if instance is None:
            if event.type != ev.INSTANCE_STARTED or event.version != 1:
                raise CorruptHistory(stream_id, event.version, "the stream does not begin with InstanceStarted")
            instance = begin(stream_id, definition_for(event.definition_hash), event.data)
            continue
        if event.version != instance.version + 1:
            raise CorruptHistory(stream_id, event.version, f"expected version {instance.version + 1}")
        instance.apply(event, event.version)
    if instance is None:
        raise CorruptHistory(stream_id, 0, "the stream is empty")
    return instance
