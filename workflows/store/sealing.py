"""Turning new events into recorded ones: the shared step of every store adapter.

Both adapters call :func:`seal` with the versions, positions and previous hash they
allocated, so the SQL store and the in-memory store produce the same text and the
same hash chain for the same input (``governance.chain`` defines the hashing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from governance.chain import canonical_event_text, canonical_json, format_timestamp, parse_timestamp, text_hash
from governance.events import NewEvent, RecordedEvent
from workflows.audit.records import StoredEvent
from workflows.store.base import AppendRequest

DEFAULT_SCHEMA_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventText(NamedTuple):
    """One new event's fields as they will be stored, before version and position are known.

    A named tuple: made for every event appended, and cheaper to make than a dataclass.
    """

    type: str
    schema_version: int
    data: str
    occurred_at: str
    occurred: datetime  # occurred_at as an aware UTC datetime, equal to parsing the text
    source: NewEvent


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
    # The events of one command nearly always share their time, and it is often the time
    # they are recorded at: each distinct moment is formatted once.
    moment: datetime | None = None
    occurred_at = ""
    occurred = _EPOCH
    for event in events:
        if not isinstance(event.type, str) or not event.type:
            raise TypeError(f"event type must be a non-empty string, not {event.type!r}")
        if moment is None or event.occurred_at != moment:
            moment = event.occurred_at
            occurred_at = format_timestamp(moment)  # refuses a naive datetime
            occurred = moment.astimezone(UTC)
        texts.append(
            EventText(
                type=event.type,
                # NewEvent has no schema version yet; read it if a later version adds one.
                schema_version=getattr(event, "schema_version", DEFAULT_SCHEMA_VERSION),
                data=canonical_json(event.data),
                occurred_at=occurred_at,
                occurred=occurred,
                source=event,
            )
        )
    recorded_at = occurred_at if request.recorded_at == moment else format_timestamp(request.recorded_at)
    return texts, canonical_json(request.meta or {}), recorded_at


def seal(
    request: AppendRequest,
    texts: Sequence[EventText],
    meta: str,
    recorded_at: str,
    *,
    first_version: int,
    first_position: int,
    prev_hash: str,
) -> list[StoredEvent]:
    """Give each event its version, position and hash, each chained to the one before.

    Returns the rows to store, texts exactly as hashed, their fields in column order
    (:func:`recorded_events` turns them into :class:`RecordedEvent`, for the callers
    that want them back).
    """
    rows: list[StoredEvent] = []
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
        rows.append(
            StoredEvent(
                stream_id, version, position, text.type, text.schema_version, text.data, meta,
                text.occurred_at, recorded_at, actor, definition_hash, prev_hash, digest,
            )
        )  # fmt: skip
        prev_hash = digest
    return rows


def recorded_events(
    request: AppendRequest, texts: Sequence[EventText], rows: Sequence[StoredEvent]
) -> list[RecordedEvent]:
    """The :class:`RecordedEvent` of each row :func:`seal` made from ``texts``.

    The payloads are the appending caller's own objects (as given in :class:`NewEvent`);
    the metadata is parsed afresh, one copy for the list.
    """
    if not rows:
        return []
    meta = json.loads(rows[0].meta)
    recorded = request.recorded_at.astimezone(UTC)  # what parsing ``recorded_at`` gives, for less
    return [
        RecordedEvent(
            stream_id=row.stream_id,
            version=row.version,
            position=row.position,
            type=row.type,
            data=text.source.data,
            occurred_at=text.occurred,
            recorded_at=recorded,
            actor=row.actor,
            definition_hash=row.definition_hash,
            prev_hash=row.prev_hash,
            hash=row.hash,
            schema_version=row.schema_version,
            meta=meta,
        )
        for text, row in zip(texts, rows, strict=True)
    ]


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
