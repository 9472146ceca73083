"""Turning new events into recorded ones: the shared step of every store adapter.

Both adapters call :func:`seal` with the versions, positions and previous hash they
allocated, so the SQL store and the in-memory store produce the same text and the
same hash chain for the same input (``governance.chain`` defines the hashing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.chain import canonical_event_text, canonical_json, format_timestamp, parse_timestamp, text_hash
from governance.events import NewEvent, RecordedEvent
from workflows.store.base import AppendRequest

DEFAULT_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class EventText:
    """One new event's fields as they will be stored, before version and position are known."""

    type: str
    schema_version: int
    data: str
    occurred_at: str
    occurred: datetime  # occurred_at as an aware UTC datetime, equal to parsing the text
    source: NewEvent


@dataclass(frozen=True, slots=True)
class Sealed:
    """A recorded event and the row that stores it (texts exactly as hashed)."""

    event: RecordedEvent
    row: dict[str, Any]


def prepare(request: AppendRequest, events: Sequence[NewEvent]) -> tuple[list[EventText], str, str]:
    """Serialise what does not depend on the log (payloads, timestamps, meta) up front.

    Done before a write transaction starts, so a payload that is not JSON fails without
    holding a lock. Returns the events' texts, the meta text and the recorded_at text.
    Raises ``ValueError`` for an empty batch, ``TypeError`` for an event without a type
    and ``TypeError``/``ValueError`` for a payload that is not JSON-native.
    """
    if not events:
        raise ValueError(f"append to '{request.stream_id}' needs at least one event")
    texts = []
    for event in events:
        if not isinstance(event.type, str) or not event.type:
            raise TypeError(f"event type must be a non-empty string, not {event.type!r}")
        occurred_at = format_timestamp(event.occurred_at)  # refuses a naive datetime
        texts.append(
            EventText(
                type=event.type,
                # NewEvent has no schema version yet; read it if a later version adds one.
                schema_version=getattr(event, "schema_version", DEFAULT_SCHEMA_VERSION),
                data=canonical_json(event.data),
                occurred_at=occurred_at,
                occurred=event.occurred_at.astimezone(UTC),
                source=event,
            )
        )
    return texts, canonical_json(request.meta or {}), format_timestamp(request.recorded_at)


def seal(
    request: AppendRequest,
    texts: Sequence[EventText],
    meta: str,
    recorded_at: str,
    *,
    first_version: int,
    first_position: int,
    prev_hash: str,
) -> list[Sealed]:
    """Give each event its version, position and hash, each chained to the one before."""
    sealed: list[Sealed] = []
    meta_value = json.loads(meta)  # a copy of its own for each recorded event list
    recorded = request.recorded_at.astimezone(UTC)  # what parsing ``recorded_at`` gives, for less
    stream_id, actor, definition_hash = request.stream_id, request.actor, request.definition_hash
    for offset, text in enumerate(texts):
        version, position = first_version + offset, first_position + offset
        # The texts are canonical already: splice them instead of decoding and re-encoding.
        digest = text_hash(
            canonical_event_text(
                stream_id=stream_id,
                version=version,
                position=position,
                type=text.type,
                schema_version=text.schema_version,
                data_text=text.data,
                meta_text=meta,
                occurred_at=text.occurred_at,
                recorded_at=recorded_at,
                actor=actor,
                definition_hash=definition_hash,
                prev_hash=prev_hash,
            )
        )
        row: dict[str, Any] = {
            "stream_id": stream_id,
            "version": version,
            "position": position,
            "type": text.type,
            "schema_version": text.schema_version,
            "data": text.data,
            "meta": meta,
            "occurred_at": text.occurred_at,
            "recorded_at": recorded_at,
            "actor": actor,
            "definition_hash": definition_hash,
            "prev_hash": prev_hash,
            "hash": digest,
        }
        event = RecordedEvent(
            stream_id=stream_id,
            version=version,
            position=position,
            type=text.type,
            data=text.source.data,
            occurred_at=text.occurred,
            recorded_at=recorded,
            actor=actor,
            definition_hash=definition_hash,
            prev_hash=prev_hash,
            hash=digest,
            schema_version=text.schema_version,
            meta=meta_value,
        )
        sealed.append(Sealed(event=event, row=row))
        prev_hash = digest
    return sealed


def to_recorded(row: Mapping[Any, Any]) -> RecordedEvent:
    """A :class:`RecordedEvent` from a stored row (for SQLAlchemy, ``row._mapping``)."""
    return RecordedEvent(
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        type=row["type"],
        # Parsed afresh so that callers never share (and so never mutate) stored payloads.
        data=json.loads(row["data"]),
        occurred_at=parse_timestamp(row["occurred_at"]),
        recorded_at=parse_timestamp(row["recorded_at"]),
        actor=row["actor"],
        definition_hash=row["definition_hash"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        schema_version=row["schema_version"],
        meta=json.loads(row["meta"]),
    )
