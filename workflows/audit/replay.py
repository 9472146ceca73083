"""Replaying an instance as of a moment, by what had happened or by what had been recorded.

Both meanings of "as of" are offered:

- ``recorded``: what the record showed at that moment. The events recorded by then
  are a prefix of the stream (events are appended in order), so the fold stops at
  the first event recorded later.
- ``occurred``: what had happened by then, including what was entered afterwards
  (a decision minuted on the 4th and entered on the 7th counts on the 4th). An
  event is in effect from its ``occurred_at``; a *derived* event (a gate passing,
  a phase change) only from when everything before it in the stream had happened
  (the running maximum of ``occurred_at``), because the rules derived it from all
  of that. So a derived event is replayed only onto the very state it was derived
  from, and the replay is sound. A recorded fact whose own date is in range but
  which cannot apply without a later fact (e.g. a condition discharged "before" the
  decision that set it) is *held back* and listed, never forced.

The replay uses the definition stored with the instance (by content hash) and the
calendar recorded in ``InstanceStarted``; it never reads today's files or clock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from governance import events as ev
from governance.chain import format_timestamp
from governance.definition import Definition
from governance.errors import CorruptHistory
from governance.events import NewEvent
from governance.state import Instance, begin
from workflows.audit.records import FoldRow, StoredEvent, parse_json
from workflows.collector import collector_paused

BY_OCCURRED: Final = "occurred"
BY_RECORDED: Final = "recorded"
DERIVED: Final = frozenset({ev.GATE_PASSED, ev.GATE_REOPENED, ev.PHASE_ENTERED})


@dataclass
class Replayed:
    """An instance as of a moment, and the events behind it."""

    instance: Instance | None
    """None when the instance had not started by then."""
    as_of: datetime
    by: str
    applied: list[StoredEvent] = field(default_factory=list)
    held_back: list[tuple[StoredEvent, str]] = field(default_factory=list)
    later: int = 0
    """Events of the stream not in effect at ``as_of``."""


def _event(row: StoredEvent) -> NewEvent:
    return NewEvent(row.type, json.loads(row.data), datetime.fromisoformat(row.occurred_at))


def _trial(instance: Instance, row: StoredEvent) -> Instance | str:
    """Apply ``row`` to a copy: the copy if it applies, else why not (the original is untouched)."""
    memo: dict[int, Any] = {id(instance.definition): instance.definition, id(instance.calendar): instance.calendar}
    trial = copy.deepcopy(instance, memo)
    try:
        trial.apply(_event(row), row.version)
    except CorruptHistory as error:
        return str(error).split(": ", 1)[-1]
    return trial


def replay_as_of(
    stream_id: str,
    rows: Iterable[StoredEvent],
    definition_for: Callable[[str], Definition],
    as_of: datetime,
    by: str = BY_OCCURRED,
) -> Replayed:
    """Fold the stream's events in effect at ``as_of`` (see the module docstring)."""
    if by not in (BY_OCCURRED, BY_RECORDED):
        raise ValueError(f"by must be '{BY_OCCURRED}' or '{BY_RECORDED}', not '{by}'")
    cutoff = format_timestamp(as_of)  # fixed-width UTC text: compares as it orders
    result = Replayed(None, as_of, by)
    instance: Instance | None = None
    whole_prefix = True
    high_water = ""
    stopped = False
    for row in rows:
        if stopped:
            result.later += 1
            continue
        high_water = max(high_water, row.occurred_at)
        if by == BY_RECORDED:
            if row.recorded_at > cutoff:
                stopped = True
                result.later += 1
                continue
        elif (high_water if row.type in DERIVED else row.occurred_at) > cutoff:
            whole_prefix = False
            result.later += 1
            continue
        if instance is None:
            if row.version != 1 or row.type != ev.INSTANCE_STARTED:
                stopped = True  # nothing can be in effect before the instance started
                result.later += 1
                continue
            instance = begin(stream_id, definition_for(row.definition_hash), json.loads(row.data))
        elif whole_prefix:
            instance.apply(_event(row), row.version)
        else:
            outcome = _trial(instance, row)
            if isinstance(outcome, str):
                result.held_back.append((row, outcome))
                continue
            instance = outcome
        result.applied.append(row)
    result.instance = instance
    return result


def replay_log(rows: Iterable[FoldRow], definition_for: Callable[[str], Definition]) -> dict[str, Instance]:
    """Fold every instance of the log from one pass in position order (other streams skipped).

    ``rows`` are what the fold reads of each event (``AuditLog.iter_fold_rows``): no
    timestamps to parse, no event object to build, only the payload text to decode.

    The cyclic garbage collector is paused meanwhile (see ``workflows.collector``).
    """
    with collector_paused():
        return _fold_all(rows, definition_for)


def _fold_all(rows: Iterable[FoldRow], definition_for: Callable[[str], Definition]) -> dict[str, Instance]:
    instances: dict[str, Instance] = {}
    parse = parse_json
    for stream_id, version, _, event_type, data, definition_hash in rows:
        instance = instances.get(stream_id)
        if instance is not None:
            if version != instance.version + 1:
                raise CorruptHistory(stream_id, version, f"expected version {instance.version + 1}")
            instance.apply_payload(event_type, parse(data), version)
        elif stream_id.startswith("$") or ":" in stream_id:
            continue  # checkpoints, notifications: not instances (see services.is_instance_stream)
        elif version == 1 and event_type == ev.INSTANCE_STARTED:
            instances[stream_id] = begin(stream_id, definition_for(definition_hash), parse(data))
        else:
            raise CorruptHistory(stream_id, version, "the stream does not begin with InstanceStarted")
    return instances
