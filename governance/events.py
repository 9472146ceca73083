"""The event vocabulary: what can happen to a workflow instance, in the past tense.

An event the domain decides on is a :class:`NewEvent` (type, payload, when it
happened). Once the store has appended it, it becomes a :class:`RecordedEvent`
with its stream version, global position, timestamps, actor and hash chain.
Payloads hold JSON-native values only (str, int, bool, None, lists, dicts), so
that their canonical JSON, and therefore their hash, is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

JsonDict = dict[str, Any]

INSTANCE_STARTED: Final = "InstanceStarted"
DOCUMENT_VERSION_ADDED: Final = "DocumentVersionAdded"
TASK_COMPLETED: Final = "TaskCompleted"
MEETING_SCHEDULED: Final = "MeetingScheduled"
MEETING_RESCHEDULED: Final = "MeetingRescheduled"
MEETING_CANCELLED: Final = "MeetingCancelled"
DECISION_RECORDED: Final = "DecisionRecorded"
CONDITION_DISCHARGED: Final = "ConditionDischarged"
GATE_PASSED: Final = "GatePassed"
GATE_REOPENED: Final = "GateReopened"
PHASE_ENTERED: Final = "PhaseEntered"
INSTANCE_PAUSED: Final = "InstancePaused"
INSTANCE_RESUMED: Final = "InstanceResumed"
INSTANCE_SUPERSEDED: Final = "InstanceSuperseded"
DEADLINE_EXTENDED: Final = "DeadlineExtended"
# An amendment: references an earlier event of the stream, which stays in the log.
EVENT_CORRECTED: Final = "EventCorrected"

EVENT_TYPES: Final = frozenset(
    {
        INSTANCE_STARTED,
        DOCUMENT_VERSION_ADDED,
        TASK_COMPLETED,
        MEETING_SCHEDULED,
        MEETING_RESCHEDULED,
        MEETING_CANCELLED,
        DECISION_RECORDED,
        CONDITION_DISCHARGED,
        GATE_PASSED,
        GATE_REOPENED,
        PHASE_ENTERED,
        INSTANCE_PAUSED,
        INSTANCE_RESUMED,
        INSTANCE_SUPERSEDED,
        DEADLINE_EXTENDED,
        EVENT_CORRECTED,
    }
)

# What the reminder worker did, in the stream ``notifications:<instance>`` (never in the
# instance's own stream, so the fold never sees them): notice given, or why it was not.
NOTIFICATION_SENT: Final = "NotificationSent"
NOTIFICATION_FAILED: Final = "NotificationFailed"
NOTIFICATION_MISSED: Final = "NotificationMissed"
NOTIFICATION_EVENT_TYPES: Final = frozenset({NOTIFICATION_SENT, NOTIFICATION_FAILED, NOTIFICATION_MISSED})


class NewEvent(NamedTuple):
    """An event decided by the domain, not yet appended to the log.

    A named tuple, as immutable as a frozen dataclass and made in half the time: every
    command makes its events, and a frozen dataclass sets each field through
    ``object.__setattr__``.
    """

    type: str
    data: JsonDict
    occurred_at: datetime


class EventPayload(NamedTuple):
    """What the fold needs of a recorded event, and nothing more (cheap to read in bulk)."""

    stream_id: str
    version: int
    type: str
    data: JsonDict
    definition_hash: str


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as it stands in the log.

    ``occurred_at`` is when it happened (the meeting date of a decision);
    ``recorded_at`` is when it was entered. Both are timezone-aware UTC.
    ``meta`` says where it came from (the clock used, the command key).
    """

    stream_id: str
    version: int
    position: int
    type: str
    data: JsonDict
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    definition_hash: str
    prev_hash: str
    hash: str
    schema_version: int = 1
    meta: JsonDict = field(default_factory=dict)
