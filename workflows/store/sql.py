"""The event store over SQLAlchemy Core: SQLite by default, PostgreSQL for shared use.

An append is one write transaction (``BEGIN IMMEDIATE`` on SQLite): check the command
key, move the stream's head in ``streams`` from the expected version (the optimistic
concurrency check), read the previous event's hash, allocate global positions from
``log_head``, insert the events (a multi-row ``INSERT`` per hundred), store the command
key, commit. On PostgreSQL, where each statement is a round trip to the server, moving
the head, reading the hash and allocating are one statement.
The global lock on ``log_head`` is taken last, so it is held only for the inserts.
On PostgreSQL, an append to a stream whose head this store wrote itself is sealed in
advance on what it last wrote and sent as one statement (one round trip instead of four);
the server applies it only if that guess still holds, and otherwise the transaction runs.
Driver errors are translated here: a lost race becomes ``ConcurrencyConflict``,
anything else ``StoreError`` with a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache, partial
from itertools import chain
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from governance.chain import GENESIS_HASH, canonical_json, format_timestamp, parse_timestamp
from governance.events import EventPayload, NewEvent, RecordedEvent
from workflows.audit.records import COLUMNS, StoredEvent
from workflows.database import DriverWriter, StaleConnection, read_connection, store_error, write_transaction
from workflows.errors import CommandKeyReused, ConcurrencyConflict, StoreError
from workflows.store.base import AppendRequest, CommandRecord, StreamSummary, check_batch
from workflows.store.schema import command_keys, definitions, events, streams
from workflows.store.sealing import EventText, prepare, recorded_events, seal, to_recorded

# Built once; SQLAlchemy caches their compiled form, so each append only binds values.
_FIND_COMMAND: Final = select(command_keys).where(command_keys.c.key == bindparam("key"))
_READ_STREAM: Final = (
    select(events)
    .where(events.c.stream_id == bindparam("stream_id"), events.c.version > bindparam("after_version"))
    .order_by(events.c.version)
)
_PAYLOADS: Final = (
    select(events.c.stream_id, events.c.version, events.c.type, events.c.data, events.c.definition_hash)
    .where(events.c.stream_id.in_(bindparam("stream_ids", expanding=True)))
    .order_by(events.c.stream_id, events.c.version)
)
_PAYLOAD_CHUNK: Final = 500
_STREAM: Final = select(streams).where(streams.c.stream_id == bindparam("stream_id"))
_STREAMS: Final = select(streams).order_by(streams.c.stream_id)
_LOAD_DEFINITION: Final = select(definitions.c.content).where(definitions.c.hash == bindparam("hash"))

# SQLSTATE class 40: PostgreSQL rolled the transaction back (serialisation, deadlock); retryable.
_RETRYABLE_SQLSTATE_CLASS: Final = "40"
_UNIQUE_VIOLATION: Final = "23505"
_DIVISION_BY_ZERO: Final = "22012"
_SQLITE_UNIQUE_ERRORS: Final = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


# The append path in plain SQL, run on the driver's own cursor: it skips SQLAlchemy's
# statement compilation, which cost more than the statements themselves. Written with
# positional ``?`` parameters (sqlite3's style, translated for psycopg): the driver binds
# them in order, where a named parameter is looked up by name in a dict for each value.
_RAW_FIND_COMMAND: Final = "SELECT request_hash FROM command_keys WHERE key = ?"
# Moves the head and reads the hash to chain onto in one statement: no row back means
# another writer moved the stream first; a NULL hash, a projection out of step with the log.
# Parameters: the new version, phase, definition hash, updated_at; stream id and expected
# version, twice (the update's and the hash's).
_RAW_ADVANCE_STREAM: Final = (
    "UPDATE streams SET version = ?, phase = ?, definition_hash = ?, updated_at = ? "
    "WHERE stream_id = ? AND version = ? "
    "RETURNING (SELECT hash FROM events WHERE events.stream_id = ? AND events.version = ?)"
)
_RAW_INSERT_STREAM: Final = (
    "INSERT INTO streams (stream_id, version, definition_id, definition_hash, phase, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_RAW_INSERT_COMMAND: Final = (
    "INSERT INTO command_keys (key, stream_id, request_hash, response, recorded_at) VALUES (?, ?, ?, ?, ?)"
)
_RAW_ALLOCATE: Final = "UPDATE log_head SET position = position + ? WHERE id = 1 RETURNING position"
# PostgreSQL only: advance the stream, read the hash to chain onto and allocate positions in one
# round trip. A data-modifying CTE runs once; ``allocated`` reads ``moved``, so the stream's row is
# locked first and log_head only when the stream moved (NULL position: another writer won).
_PG_ADVANCE_AND_ALLOCATE: Final = (
    "WITH moved AS (UPDATE streams SET version = %(version)s, phase = %(phase)s, "
    "definition_hash = %(definition_hash)s, updated_at = %(updated_at)s "
    "WHERE stream_id = %(stream_id)s AND version = %(expected)s RETURNING 1), "
    "allocated AS (UPDATE log_head SET position = position + %(count)s "
    "WHERE id = 1 AND EXISTS (SELECT 1 FROM moved) RETURNING position) "
    "SELECT (SELECT hash FROM events WHERE stream_id = %(stream_id)s AND version = %(expected)s), "
    "(SELECT position FROM allocated)"
)


# Events per INSERT: 1,300 parameters, far below PostgreSQL's 65,535 and SQLite's 32,766.
_ROWS_PER_INSERT: Final = 100
_PG_COLUMN_TYPES: Final = (
    "text", "int", "bigint", "text", "int", "text", "text", "text", "text", "text", "text", "text", "text",
)  # fmt: skip
_MOST_MISSES: Final = 6  # wrong guesses in a row that double the appends taking the transaction
_HEADS_KEPT: Final = 10_000  # streams whose head this store remembers, for appends in one statement


@cache
def _insert_rows(count: int, dialect: str) -> str:
    """``INSERT INTO events … VALUES (…), (…)`` for ``count`` rows, with the driver's positional parameters."""
    row = f"({', '.join(['?'] * len(COLUMNS))})"
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES {', '.join([row] * count)}"
    return _for_dialect(sql, dialect)


@cache
def _pg_append_alone(count: int) -> str:
    """PostgreSQL: a whole append of ``count`` events sealed in advance, as one statement.

    The events were sealed on a guess: the stream's head is the version and hash this
    store last wrote there, and the log's last position the one it last allocated.
    ``moved`` advances the stream only if its head is that event; ``allocated`` takes
    the positions only if the stream moved and the log ended at the guess. Otherwise
    the division by zero fails the statement, so nothing of it stays.
    """
    row = f"({', '.join(f'%s::{kind}' for kind in _PG_COLUMN_TYPES)})"
    columns = ", ".join(COLUMNS)
    return (
        "WITH moved AS (UPDATE streams SET version = %s, phase = %s, definition_hash = %s, updated_at = %s "
        "WHERE stream_id = %s AND version = %s "
        "AND (SELECT hash FROM events WHERE stream_id = %s AND version = %s) = %s RETURNING 1), "
        "allocated AS (UPDATE log_head SET position = position + %s "
        "WHERE id = 1 AND position = %s AND EXISTS (SELECT 1 FROM moved) RETURNING position) "
        f"INSERT INTO events ({columns}) SELECT * FROM (VALUES {', '.join([row] * count)}) AS new ({columns}) "
        "WHERE (SELECT 1 / count(*) FROM allocated) = 1"
    )


def _for_dialect(sql: str, dialect: str) -> str:
    """``?`` parameters as the driver wants them (psycopg: ``%s``)."""
    return sql.replace("?", "%s") if dialect == "postgresql" else sql


class SqlEventStore:
    """The :class:`~workflows.store.base.EventStore` on a migrated SQLAlchemy engine.

    ``clock`` (optional) only stamps ``definitions.registered_at``; event times come
    from the :class:`AppendRequest`, never from the store.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock
        dialect = engine.dialect.name
        self._find_command = _for_dialect(_RAW_FIND_COMMAND, dialect)
        self._advance = _for_dialect(_RAW_ADVANCE_STREAM, dialect)
        self._insert_stream = _for_dialect(_RAW_INSERT_STREAM, dialect)
        self._insert_command = _for_dialect(_RAW_INSERT_COMMAND, dialect)
        self._allocate = _for_dialect(_RAW_ALLOCATE, dialect)
        self._dialect = dialect
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        self._postgresql = dialect == "postgresql"
        self._writer = DriverWriter(engine)
        # PostgreSQL: what this store last wrote (each stream's head, the last position), the
        # guess an append in one statement is sealed on (see ``_pg_append_alone``).
        self._heads: dict[str, tuple[int, str]] = {}
        self._last_position: int | None = None
        # After a wrong guess, that many appends take the transaction without trying (doubling
        # up to 63 while guesses keep failing): other writers are busy, and a failed try costs a round trip.
        self._misses = 0
        self._skip = 0

    @property
    def engine(self) -> Engine:
        return self._engine

    def append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append atomically after ``request.expected_version``; see the contract in ``base``.

        Raises ``ConcurrencyConflict``, ``CommandKeyReused`` or ``StoreError``.
        """
        (recorded,) = self.append_many([(request, events)])
        return recorded

    def write(self, request: AppendRequest, events: Sequence[NewEvent]) -> int:
        """:meth:`append`, answering only how many events were written (0: the command was recorded already)."""
        (rows,) = self._write(_prepared([(request, events)]))
        return 0 if rows is None else len(rows)

    def append_many(self, batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[list[RecordedEvent]]:
        """Several appends, each to its own stream, in one transaction: all or none.

        See the contract in ``base``. Raises as :meth:`append` does; a conflict names the
        first stream found moved (or, when the database refused a row, the first of the batch).
        """
        if not batch:
            return []
        items = _prepared(batch)
        written = self._write(items)
        return [
            [] if rows is None else recorded_events(item.request, item.texts, rows)
            for item, rows in zip(items, written, strict=True)
        ]

    def _write(self, items: Sequence[_Pending]) -> list[list[StoredEvent] | None]:
        """The transaction, run again once on a fresh connection if the kept one had died."""
        try:
            if self._postgresql and len(items) == 1:
                rows = self._append_alone(items[0])
                if rows is not None:
                    return [rows]
            try:
                return self._append(items)
            except StaleConnection:
                # A connection held since an earlier append died before this one committed
                # (e.g. the server restarted): nothing was recorded, so run it once more.
                return self._append(items)
        except (self._driver_error, DBAPIError) as error:
            # The append's statements fail with the driver's own errors; taking a connection
            # from the pool (connecting, PostgreSQL's pre-ping) fails wrapped by SQLAlchemy.
            wrapped = (
                error
                if isinstance(error, DBAPIError)
                else cast(
                    DBAPIError,
                    DBAPIError.instance(None, None, error, self._driver_error, dialect=self._engine.dialect),
                )
            )
            first = items[0].request
            if _lost_race(wrapped):
                raise ConcurrencyConflict(first.stream_id, first.expected_version) from error
            raise store_error(self._engine, wrapped, f"append to '{first.stream_id}'") from error

    def _append_alone(self, item: _Pending) -> list[StoredEvent] | None:
        """PostgreSQL: the append as one statement in one round trip, when this store wrote the stream's head.

        None when it cannot be tried (the stream's head or the log's end unknown here, a
        command key to record, the connection busy, recent guesses wrong) or the guess was
        wrong (another writer moved the stream or the log): the caller then runs the
        transaction, which finds out what happened.
        """
        if self._skip:
            self._skip -= 1
            return None
        request = item.request
        head = self._heads.get(request.stream_id)
        count = len(item.texts)
        guess = self._last_position
        if (
            request.command is not None
            or head is None
            or head[0] != request.expected_version
            or guess is None
            or count > _ROWS_PER_INSERT
        ):
            return None
        rows = _sealed(item, guess + 1, head[1])
        stream_id, expected = request.stream_id, request.expected_version
        parameters: list[Any] = [
            expected + count, request.phase, request.definition_hash, item.now,
            stream_id, expected, stream_id, expected, head[1],
            count, guess,
        ]  # fmt: skip
        parameters += chain.from_iterable(rows)
        try:
            ran = self._writer.run_alone(_pg_append_alone(count), parameters)
        except self._driver_error as error:
            self._forget(stream_id)
            if getattr(error, "sqlstate", None) == _DIVISION_BY_ZERO:
                self._misses = min(self._misses + 1, _MOST_MISSES)
                self._skip = 2**self._misses - 1
                return None
            try:
                landed = self._landed(rows[0])
            except StoreError as unreachable:
                raise StoreError(
                    f"the connection was lost while appending to '{stream_id}', and whether the append "
                    f"was recorded cannot be checked now: {unreachable}"
                ) from error
            if not landed:
                # The statement failed (e.g. the connection had died while idle): nothing was
                # recorded, and the transaction will say why if it fails too.
                return None
            ran = True  # the connection failed after the server had committed
        if not ran:
            return None
        self._misses = 0
        self._remember(rows)
        return rows

    def _landed(self, first: StoredEvent) -> bool:
        """Whether the first of an append's rows is in the log (a failed connection left it unknown)."""
        with self._reading(f"check the append to '{first.stream_id}'") as connection:
            stored = connection.execute(
                select(events.c.hash).where(events.c.stream_id == first.stream_id, events.c.version == first.version)
            ).scalar_one_or_none()
        return bool(stored == first.hash)

    def _remember(self, rows: Sequence[StoredEvent]) -> None:
        last = rows[-1]
        if len(self._heads) >= _HEADS_KEPT:
            self._heads.clear()
        self._heads[last.stream_id] = (last.version, last.hash)
        self._last_position = max(self._last_position or 0, last.position)

    def _forget(self, stream_id: str) -> None:
        self._heads.pop(stream_id, None)
        self._last_position = None

    def _append(self, items: Sequence[_Pending]) -> list[list[StoredEvent] | None]:
        """One attempt at the transaction: each item's rows, or None where its command key was recorded already.

        The driver's own cursor: an append is a handful of small statements, and
        SQLAlchemy's per-transaction and per-statement work cost more than SQLite spent
        running them. Locks are taken as a single append takes them, the streams' rows
        (in stream order) and then ``log_head``, so appends and batches cannot deadlock.
        """
        written = self._writer.run(partial(self._statements, items))
        if self._postgresql:
            for rows in written.values():
                self._remember(rows)
        return [written.get(item.request.stream_id) for item in items]

    def _statements(self, items: Sequence[_Pending], cursor: Any) -> dict[str, list[StoredEvent]]:
        """:meth:`_append`'s statements, in its transaction: the rows written, by stream."""
        todo = [
            item
            for item in items
            if item.request.command is None or not self._command_seen(cursor, item.request.command)
        ]
        count = sum(len(item.texts) for item in todo)
        if len(todo) == 1 and self._postgresql and todo[0].request.expected_version > 0:
            # The common case on PostgreSQL: moving the head and allocating in one round trip.
            prev_hash, last_position = self._advance_and_allocate(cursor, todo[0].request, count, todo[0].now)
            chained = {todo[0].request.stream_id: prev_hash}
        else:
            in_order = todo if len(todo) == 1 else sorted(todo, key=lambda item: item.request.stream_id)
            chained = {
                item.request.stream_id: self._advance_stream(cursor, item.request, len(item.texts), item.now)
                for item in in_order
            }
            last_position = 0
            if count:
                cursor.execute(self._allocate, (count,))
                last_position = int(cursor.fetchone()[0])
        position = last_position - count + 1
        written: dict[str, list[StoredEvent]] = {}
        for item in todo:
            request = item.request
            written[request.stream_id] = rows = _sealed(item, position, chained[request.stream_id])
            position += len(rows)
            self._insert(cursor, rows)
            if request.command is not None:
                cursor.execute(self._insert_command, _command_row(request.command, item.now))
        return written

    def _insert(self, cursor: Any, rows: list[StoredEvent]) -> None:
        """The rows in multi-row INSERTs: one statement (on PostgreSQL, one round trip) per
        hundred, where ``executemany`` runs one per row (and psycopg's sets up a pipeline)."""
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            cursor.execute(_insert_rows(len(chunk), self._dialect), list(chain.from_iterable(chunk)))

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        """The stream's events after ``after_version``, in version order; empty if none."""
        with self._reading(f"read stream '{stream_id}'") as connection:
            parameters = {"stream_id": stream_id, "after_version": after_version}
            rows = connection.execute(_READ_STREAM, parameters).mappings().all()
        return [to_recorded(row) for row in rows]

    def iter_payloads(self, stream_ids: Sequence[str]) -> Iterator[EventPayload]:
        """The events of ``stream_ids``, stream by stream, reduced to what the fold needs.

        Streams are read in chunks (one query each), which costs far less than a
        query per stream when thousands of instances are loaded at once.
        """
        wanted = sorted(set(stream_ids))
        for start in range(0, len(wanted), _PAYLOAD_CHUNK):
            chunk = wanted[start : start + _PAYLOAD_CHUNK]
            with self._reading("read streams") as connection:
                rows = connection.execute(_PAYLOADS, {"stream_ids": chunk}).all()
            loads = json.loads
            for stream_id, version, type_, data, definition_hash in rows:  # a Row unpacks like a tuple
                yield EventPayload(
                    str(stream_id), cast(int, version), str(type_), loads(str(data)), str(definition_hash)
                )

    def iter_all(self, *, after_position: int = 0, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        """Every event after ``after_position`` in position order, ``batch_size`` rows per query.

        Keyset pagination: each batch is a fresh, short read, so a slow consumer holds
        no transaction open (which on SQLite would stop the WAL from being checkpointed).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        page = select(events).where(events.c.position > bindparam("after")).order_by(events.c.position)
        page = page.limit(batch_size)
        after = after_position
        while True:
            with self._reading("read the event log") as connection:
                rows = connection.execute(page, {"after": after}).mappings().all()
            for row in rows:
                yield to_recorded(row)
            if len(rows) < batch_size:
                return
            after = rows[-1]["position"]

    def stream(self, stream_id: str) -> StreamSummary | None:
        """The projection row of one stream, or None."""
        with self._reading(f"read stream '{stream_id}'") as connection:
            row = connection.execute(_STREAM, {"stream_id": stream_id}).mappings().first()
        return None if row is None else _summary(row)

    def streams(self) -> list[StreamSummary]:
        """Every stream's projection row, ordered by stream id."""
        with self._reading("list streams") as connection:
            rows = connection.execute(_STREAMS).mappings().all()
        return [_summary(row) for row in rows]

    def find_command(self, key: str) -> CommandRecord | None:
        """The command stored under an idempotency key, or None."""
        with self._reading(f"look up command key '{key}'") as connection:
            row = connection.execute(_FIND_COMMAND, {"key": key}).mappings().first()
        if row is None:
            return None
        return CommandRecord(
            key=row["key"],
            stream_id=row["stream_id"],
            request_hash=row["request_hash"],
            response=json.loads(row["response"]),
        )

    def save_definition(self, definition_hash: str, definition_id: str, version: str, content: str) -> None:
        """Store a definition by content hash; a no-op when present, also when two processes race."""
        values = {
            "hash": definition_hash,
            "definition_id": definition_id,
            "version": version,
            "content": content,
            "registered_at": None if self._clock is None else format_timestamp(self._clock()),
        }
        dialect = self._engine.dialect.name
        try:
            with write_transaction(self._engine) as connection:
                # Dialect modules are imported here, not at the top: the PostgreSQL one pulls in
                # asyncio, which a command on SQLite should not pay for at start-up.
                if dialect == "postgresql":
                    from sqlalchemy.dialects import postgresql

                    connection.execute(postgresql.insert(definitions).values(values).on_conflict_do_nothing())
                elif dialect == "sqlite":
                    from sqlalchemy.dialects import sqlite

                    connection.execute(sqlite.insert(definitions).values(values).on_conflict_do_nothing())
                elif connection.execute(_LOAD_DEFINITION, {"hash": definition_hash}).first() is None:
                    connection.execute(insert(definitions).values(values))
        except IntegrityError as error:
            # Only reachable on other databases: a concurrent insert of the same content won.
            if not _is_unique_violation(error):
                raise store_error(self._engine, error, "save a definition") from error
        except DBAPIError as error:
            raise store_error(self._engine, error, "save a definition") from error

    def load_definition(self, definition_hash: str) -> str | None:
        """The source text stored under a content hash, or None."""
        with self._reading("load a definition") as connection:
            content = connection.execute(_LOAD_DEFINITION, {"hash": definition_hash}).scalar_one_or_none()
        return content

    def _command_seen(self, cursor: Any, command: CommandRecord) -> bool:
        cursor.execute(self._find_command, (command.key,))
        row = cursor.fetchone()
        if row is None:
            return False
        stored = row[0]
        if stored != command.request_hash:
            raise CommandKeyReused(command.key)
        return True

    def _advance_stream(self, cursor: Any, request: AppendRequest, count: int, now: str) -> str:
        """Move the stream's head from the expected version; return the hash to chain onto."""
        stream_id, expected = request.stream_id, request.expected_version
        if expected == 0:
            row = (stream_id, count, request.definition_id, request.definition_hash, request.phase, now, now)
            try:
                cursor.execute(self._insert_stream, row)
            except self._integrity_error as error:
                # The stream exists: another writer created it first. Named here, where the
                # stream is known (in a batch, the driver's error does not say which).
                raise ConcurrencyConflict(request.stream_id, 0) from error
            return GENESIS_HASH
        cursor.execute(
            self._advance,
            (expected + count, request.phase, request.definition_hash, now, stream_id, expected, stream_id, expected),
        )
        moved = cursor.fetchone()
        if moved is None:
            raise ConcurrencyConflict(request.stream_id, request.expected_version)
        head = moved[0]
        if head is None:
            raise StoreError(
                f"stream '{request.stream_id}' is at version {request.expected_version} in the streams "
                "table but that event is missing: the projection must be rebuilt"
            )
        return str(head)

    def _advance_and_allocate(self, cursor: Any, request: AppendRequest, count: int, now: str) -> tuple[str, int]:
        """PostgreSQL: :meth:`_advance_stream` and the allocation in one statement (one round trip, not three).

        The positions are allocated only if the stream moved; locks are taken in the same
        order as on the other path (the stream's row, then ``log_head``).
        """
        cursor.execute(
            _PG_ADVANCE_AND_ALLOCATE,
            {
                "stream_id": request.stream_id,
                "expected": request.expected_version,
                "version": request.expected_version + count,
                "phase": request.phase,
                "definition_hash": request.definition_hash,
                "updated_at": now,
                "count": count,
            },
        )
        head, last_position = cursor.fetchone()
        if last_position is None:
            raise ConcurrencyConflict(request.stream_id, request.expected_version)
        if head is None:
            raise StoreError(
                f"stream '{request.stream_id}' is at version {request.expected_version} in the streams "
                "table but that event is missing: the projection must be rebuilt"
            )
        return str(head), int(last_position)

    @contextmanager
    def _reading(self, doing: str) -> Iterator[Connection]:
        try:
            with read_connection(self._engine) as connection:
                yield connection
        except DBAPIError as error:
            raise store_error(self._engine, error, doing) from error


def _command_row(command: CommandRecord, recorded_at: str) -> tuple[str, str, str, str, str]:
    return command.key, command.stream_id, command.request_hash, canonical_json(command.response), recorded_at


def _summary(row: Mapping[Any, Any]) -> StreamSummary:
    return StreamSummary(
        stream_id=row["stream_id"],
        version=row["version"],
        definition_id=row["definition_id"],
        definition_hash=row["definition_hash"],
        phase=row["phase"],
        created_at=parse_timestamp(row["created_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
    )


def _lost_race(error: DBAPIError) -> bool:
    """True when another writer got there first: a duplicate key, or a PostgreSQL rollback."""
    if isinstance(error, IntegrityError):
        return _is_unique_violation(error)
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return sqlstate.startswith(_RETRYABLE_SQLSTATE_CLASS)


def _is_unique_violation(error: IntegrityError) -> bool:
    orig = error.orig
    if getattr(orig, "sqlstate", None) == _UNIQUE_VIOLATION:
        return True
    if getattr(orig, "sqlite_errorname", None) in _SQLITE_UNIQUE_ERRORS:
        return True
    return str(orig).startswith("UNIQUE constraint failed")


class _Pending(NamedTuple):
    """One append of a batch, serialised before the transaction (``sealing.prepare``)."""

    request: AppendRequest
    texts: list[EventText]
    meta: str
    now: str  # recorded_at, as stored


def _prepared(batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[_Pending]:
    """The batch serialised, and checked (``check_batch``), before any transaction starts."""
    items = [_Pending(request, *prepare(request, events)) for request, events in batch]
    check_batch([item.request for item in items])
    return items


def _sealed(item: _Pending, first_position: int, prev_hash: str) -> list[StoredEvent]:
    """The rows of ``item``, right after its expected version and from ``first_position`` on."""
    return seal(
        item.request,
        item.texts,
        item.meta,
        item.now,
        first_version=item.request.expected_version + 1,
        first_position=first_position,
        prev_hash=prev_hash,
    )
