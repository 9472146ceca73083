"""An in-memory event store for fast unit tests, honouring the same contract as the SQL one.

It shares the sealing and hashing code with ``SqlEventStore`` (``workflows.store.sealing``),
so the events, versions, positions and hashes it records are exactly what SQL would
record for the same appends. A lock makes it safe to share between threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from governance.chain import GENESIS_HASH, canonical_json, format_timestamp, parse_timestamp
from governance.events import EventPayload, NewEvent, RecordedEvent
from workflows.audit.records import StoredEvent
from workflows.errors import CommandKeyReused, ConcurrencyConflict
from workflows.store.base import AppendRequest, CommandRecord, StreamSummary, check_batch
from workflows.store.sealing import EventText, prepare, recorded_events, seal, to_recorded


class InMemoryEventStore:
    """The :class:`~workflows.store.base.EventStore` in process memory; nothing survives the process."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # Rows as the SQL store would hold them (texts), so reads parse fresh copies.
        self._log: list[StoredEvent] = []
        self._by_stream: dict[str, list[StoredEvent]] = {}
        self._streams: dict[str, StreamSummary] = {}
        self._commands: dict[str, tuple[CommandRecord, str]] = {}
        self._definitions: dict[str, tuple[str, str, str, str | None]] = {}

    def append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append atomically after ``request.expected_version``; see the contract in ``base``."""
        (recorded,) = self.append_many([(request, events)])
        return recorded

    def write(self, request: AppendRequest, events: Sequence[NewEvent]) -> int:
        """:meth:`append`, answering only how many events were written (0: the command was recorded already)."""
        return len(self.append(request, events))

    def append_many(self, batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[list[RecordedEvent]]:
        """Several appends to distinct streams, all or none; see the contract in ``base``."""
        check_batch([request for request, _ in batch])
        prepared = [(request, *prepare(request, events)) for request, events in batch]
        with self._lock:
            todo = []
            for request, texts, meta, recorded_at in prepared:
                if request.command is not None:
                    seen = self._commands.get(request.command.key)
                    if seen is not None:
                        if seen[0].request_hash != request.command.request_hash:
                            raise CommandKeyReused(request.command.key)
                        continue
                current = self._streams.get(request.stream_id)
                if (current.version if current else 0) != request.expected_version:
                    raise ConcurrencyConflict(request.stream_id, request.expected_version)
                todo.append((request, texts, meta, recorded_at))
            # Everything that can fail has run: from here on the batch cannot half-happen.
            recorded = {
                request.stream_id: self._write(request, texts, meta, recorded_at)
                for request, texts, meta, recorded_at in todo
            }
        return [recorded.get(request.stream_id, []) for request, _ in batch]

    def _write(
        self, request: AppendRequest, texts: list[EventText], meta: str, recorded_at: str
    ) -> list[RecordedEvent]:
        current = self._streams.get(request.stream_id)
        history = self._by_stream.get(request.stream_id, [])
        rows = seal(
            request,
            texts,
            meta,
            recorded_at,
            first_version=request.expected_version + 1,
            first_position=len(self._log) + 1,
            prev_hash=history[-1].hash if history else GENESIS_HASH,
        )
        self._log.extend(rows)
        self._by_stream.setdefault(request.stream_id, []).extend(rows)
        now = parse_timestamp(recorded_at)
        self._streams[request.stream_id] = StreamSummary(
            stream_id=request.stream_id,
            version=request.expected_version + len(rows),
            definition_id=current.definition_id if current else request.definition_id,
            definition_hash=request.definition_hash,
            phase=request.phase,
            created_at=current.created_at if current else now,
            updated_at=now,
        )
        if request.command is not None:
            self._commands[request.command.key] = (request.command, canonical_json(request.command.response))
        return recorded_events(request, texts, rows)

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        """The stream's events after ``after_version``, in version order; empty if none."""
        with self._lock:
            rows = list(self._by_stream.get(stream_id, [])[after_version:])
        return [to_recorded(row._asdict()) for row in rows]

    def iter_payloads(self, stream_ids: Sequence[str]) -> Iterator[EventPayload]:
        """The events of ``stream_ids``, stream by stream, reduced to what the fold needs."""
        for stream_id in sorted(set(stream_ids)):
            for event in self.read_stream(stream_id):
                yield EventPayload(event.stream_id, event.version, event.type, event.data, event.definition_hash)

    def iter_all(self, *, after_position: int = 0, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        """Every event after ``after_position`` in position order, copied ``batch_size`` at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        start = max(after_position, 0)
        while True:
            # Position p is at index p - 1: the log is gapless.
            with self._lock:
                rows = self._log[start : start + batch_size]
            for row in rows:
                yield to_recorded(row._asdict())
            if len(rows) < batch_size:
                return
            start += batch_size

    def stream(self, stream_id: str) -> StreamSummary | None:
        """The projection row of one stream, or None."""
        with self._lock:
            return self._streams.get(stream_id)

    def streams(self) -> list[StreamSummary]:
        """Every stream's projection row, ordered by stream id."""
        with self._lock:
            return [self._streams[key] for key in sorted(self._streams)]

    def find_command(self, key: str) -> CommandRecord | None:
        """The command stored under an idempotency key, or None (with a fresh copy of its response)."""
        with self._lock:
            seen = self._commands.get(key)
        if seen is None:
            return None
        return replace(seen[0], response=json.loads(seen[1]))

    def save_definition(self, definition_hash: str, definition_id: str, version: str, content: str) -> None:
        """Store a definition by content hash; a no-op when present."""
        registered_at = None if self._clock is None else format_timestamp(self._clock())
        with self._lock:
            self._definitions.setdefault(definition_hash, (definition_id, version, content, registered_at))

    def load_definition(self, definition_hash: str) -> str | None:
        """The source text stored under a content hash, or None."""
        with self._lock:
            stored = self._definitions.get(definition_hash)
        return None if stored is None else stored[2]
