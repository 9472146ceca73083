"""Recorded events for the pure tests: what a store would hand back for a walk's events."""

from __future__ import annotations

from governance.events import RecordedEvent
from tests.unit.lis import Walk


def recorded(walk: Walk) -> list[RecordedEvent]:
    """The walk's events as recorded ones, each recorded when it occurred (enough for the news)."""
    return [
        RecordedEvent(
            stream_id=walk.instance.id,
            version=version,
            position=version,
            type=event.type,
            data=event.data,
            occurred_at=event.occurred_at,
            recorded_at=event.occurred_at,
            actor="programme officer",
            definition_hash=walk.definition.content_hash,
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for version, event in enumerate(walk.events, start=1)
    ]
