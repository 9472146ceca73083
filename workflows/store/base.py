"""The event store port: an append-only, hash-chained log of streams.

One stream per workflow instance; every event has a stream ``version`` (1, 2, 3 …
without gaps) and a global ``position`` (1, 2, 3 … without gaps, in commit order).
Each event's ``hash`` chains it to the previous event of its stream (see
``governance.chain``).

Contract every adapter honours (the contract tests in
``tests/integration/test_event_store_contract.py`` run against each):

- ``append`` writes all of its events or none, in one transaction. It raises
  :class:`~workflows.errors.ConcurrencyConflict` when the stream's version is not
  ``expected_version`` (``0`` means: the stream must not exist yet).
- With a ``command``, the key is stored in the same transaction. A key seen before
  with the same request writes nothing and returns ``[]`` (the caller reads the
  stored answer with ``find_command``); with another request it raises
  :class:`~workflows.errors.CommandKeyReused`.
- Events are never updated or deleted; the database itself refuses it.
- ``definitions`` are stored by content hash, insert-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from governance.events import EventPayload, NewEvent, RecordedEvent


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """The cached projection of one stream, kept in step with ``append``."""

    stream_id: str
    version: int
    definition_id: str
    definition_hash: str
    phase: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """An idempotency key and what the command answered the first time."""

    key: str
    stream_id: str
    request_hash: str
    response: dict[str, Any]


class AppendRequest(NamedTuple):
    """Everything ``append`` needs besides the events themselves.

    A named tuple (immutable, and cheaper to make than a frozen dataclass): one is made
    for every command.
    """

    stream_id: str
    expected_version: int
    actor: str
    definition_hash: str
    recorded_at: datetime
    phase: str
    """The stream's phase after these events, for the ``streams`` projection."""
    definition_id: str = ""
    meta: dict[str, Any] | None = None
    command: CommandRecord | None = None


class EventStore(Protocol):
    """The port. Implementations: ``SqlEventStore`` (SQLite, PostgreSQL)."""

    def append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append ``events`` atomically after ``request.expected_version``; see the module contract."""
        ...

    def write(self, request: AppendRequest, events: Sequence[NewEvent]) -> int:
        """:meth:`append`, answering only how many events were written (0 when the command key
        was recorded already): for callers that do not need the events back, at less cost."""
        ...

    def append_many(self, batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[list[RecordedEvent]]:
        """Several appends, each to a different stream, in one transaction: all or none.

        Each is checked as :meth:`append` checks it (version, command key); the first that
        fails fails the batch and nothing is written. One durable commit for many streams:
        the worker records a batch's sends this way. Returns each append's events, in order.
        """
        ...

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        """The stream's events after ``after_version`` (all by default) in version order."""
        ...

    def iter_payloads(self, stream_ids: Sequence[str]) -> Iterator[EventPayload]:
        """The events of the given streams, stream by stream in version order, reduced to
        what the fold needs (no timestamps, metadata or hashes): loading many instances."""
        ...

    def iter_all(self, *, after_position: int = 0, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        """Every event in global position order, streamed in batches (constant memory)."""
        ...

    def stream(self, stream_id: str) -> StreamSummary | None:
        """The projection row of one stream, or None."""
        ...

    def streams(self) -> list[StreamSummary]:
        """Every stream's projection row, ordered by stream id."""
        ...

    def find_command(self, key: str) -> CommandRecord | None:
        """The command stored under an idempotency key, or None."""
        ...

    def save_definition(self, definition_hash: str, definition_id: str, version: str, content: str) -> None:
        """Store a definition's source by content hash (no-op when already there)."""
        ...

    def load_definition(self, definition_hash: str) -> str | None:
        """The source text stored under a content hash, or None."""
        ...


def check_batch(requests: Sequence[AppendRequest]) -> None:
    """Refuse (``ValueError``) a batch that appends to a stream twice or after a negative version."""
    seen: set[str] = set()
    for request in requests:
        if request.expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, not {request.expected_version}")
        if request.stream_id in seen:
            raise ValueError(f"a batch appends to each stream once; '{request.stream_id}' comes twice")
        seen.add(request.stream_id)
