"""Reading the event log as stored, for the auditor: rows as texts, streamed in batches.

``SqlAuditLog`` reads the tables directly (the exact stored texts, which verification
re-hashes), with keyset pagination so that memory stays constant and no read
transaction stays open between batches. ``StoreAuditLog`` serves any
:class:`~workflows.store.base.EventStore` (such as the in-memory one of the unit tests)
by re-encoding its events as the SQL store writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, Final, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from governance.chain import canonical_json, format_timestamp
from governance.events import RecordedEvent
from workflows.audit.records import COLUMNS, FOLD_COLUMNS, FoldRow, Row, StoredEvent
from workflows.database import read_connection, safe_url, store_error
from workflows.errors import StoreError
from workflows.store.base import EventStore
from workflows.store.schema import log_head, streams

BATCH: Final = 1_000
"""Rows per page. Small enough that a page stays in the processor's cache while it is
checked: pages of 10,000 made the whole verify pass about a tenth slower on SQLite."""


class AuditLog(Protocol):
    """Read access to the stored log. Every iterator streams; none loads the whole log."""

    def iter_log(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[StoredEvent]:
        """Events in global position order, after ``after_position`` and up to ``up_to`` (inclusive)."""
        ...

    def iter_rows(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[Row]:
        """The same events as :meth:`iter_log`, as unnamed rows (for the verifier's pass)."""
        ...

    def iter_fold_rows(self) -> Iterator[FoldRow]:
        """What the fold reads of every event, in global position order (cheap: six columns)."""
        ...

    def iter_stream(self, stream_id: str) -> Iterator[StoredEvent]:
        """One stream's events in version order."""
        ...

    def iter_hashes(self, *, up_to: int) -> Iterator[tuple[int, str]]:
        """``(position, hash)`` of every event up to ``up_to``, in position order (cheap: no payloads)."""
        ...

    def head_position(self) -> int | None:
        """The last position the store allocated (``log_head``), or None when it keeps none."""
        ...

    def stream_versions(self) -> Iterator[tuple[str, int]]:
        """``(stream_id, version)`` from the streams projection."""
        ...


_COLUMNS: Final = ", ".join(COLUMNS)
# Plain SQL on the driver's cursor: the audit reads every row of the log, and building
# SQLAlchemy rows for each costs more than the driver's own fetch (see bench/audit_bench.py).
_LOG_PAGE: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE position > {{p}} AND position <= {{p}} ORDER BY position LIMIT {{p}}"
)
_FOLD_PAGE: Final = f"SELECT {', '.join(FOLD_COLUMNS)} FROM events WHERE position > {{p}} ORDER BY position LIMIT {{p}}"
_STREAM_PAGE: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_id = {{p}} AND version > {{p}} ORDER BY version LIMIT {{p}}"
)
_HASH_PAGE: Final = (
    "SELECT position, hash FROM events WHERE position > {p} AND position <= {p} ORDER BY position LIMIT {p}"
)
_NO_LIMIT: Final = 2**62


class SqlAuditLog:
    """The :class:`AuditLog` of a migrated SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, batch_size: int = BATCH) -> None:
        self._engine = engine
        self._batch = batch_size
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = {
            name: sql.format(p=marker)
            for name, sql in (("log", _LOG_PAGE), ("fold", _FOLD_PAGE), ("stream", _STREAM_PAGE), ("hash", _HASH_PAGE))
        }

    def _rows(self, name: str, fixed: tuple[Any, ...], after: Any, key: int) -> Iterator[Any]:
        """Rows of one query (see :meth:`_pages`), handed on by ``chain`` without a Python step per row."""
        return chain.from_iterable(self._pages(name, fixed, after, key))

    def _pages(self, name: str, fixed: tuple[Any, ...], after: Any, key: int) -> Iterator[Sequence[Any]]:
        """Pages of one query's rows (keyset on column ``key``); each page is its own short read."""
        sql = self._sql[name]
        while True:
            connection = self._engine.raw_connection()
            try:
                cursor = connection.cursor()
                if name == "stream":
                    cursor.execute(sql, (*fixed, after, self._batch))
                else:
                    cursor.execute(sql, (after, *fixed, self._batch))
                rows = cursor.fetchall()
                cursor.close()
                connection.rollback()  # end the read transaction PostgreSQL opened (a no-op on SQLite)
            except Exception as error:
                if not isinstance(error, self._engine.dialect.loaded_dbapi.Error):
                    raise
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise StoreError(f"cannot read the event log in database {safe_url(self._engine)}: {reason}") from None
            finally:
                connection.close()
            yield rows
            if len(rows) < self._batch:
                return
            after = rows[-1][key]

    def iter_log(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[StoredEvent]:
        return map(StoredEvent._make, self.iter_rows(after_position=after_position, up_to=up_to))

    def iter_rows(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[Row]:
        return self._rows("log", (_NO_LIMIT if up_to is None else up_to,), after_position, 2)

    def iter_fold_rows(self) -> Iterator[FoldRow]:
        return self._rows("fold", (), 0, 2)

    def iter_stream(self, stream_id: str) -> Iterator[StoredEvent]:
        return map(StoredEvent._make, self._rows("stream", (stream_id,), -1, 1))

    def iter_hashes(self, *, up_to: int) -> Iterator[tuple[int, str]]:
        for position, digest in self._rows("hash", (up_to,), 0, 0):
            yield int(position), str(digest)

    def head_position(self) -> int | None:
        try:
            with read_connection(self._engine) as connection:
                value = connection.execute(select(log_head.c.position)).scalar_one_or_none()
        except DBAPIError as error:
            raise store_error(self._engine, error, "read the log head") from error
        return None if value is None else int(value)

    def stream_versions(self) -> Iterator[tuple[str, int]]:
        try:
            with read_connection(self._engine) as connection:
                rows = connection.execute(select(streams.c.stream_id, streams.c.version)).all()
        except DBAPIError as error:
            raise store_error(self._engine, error, "read the streams") from error
        for row in rows:
            yield str(row[0]), int(row[1])


def stored(event: RecordedEvent) -> StoredEvent:
    """A recorded event as the SQL store would hold it."""
    return StoredEvent(
        event.stream_id,
        event.version,
        event.position,
        event.type,
        event.schema_version,
        canonical_json(event.data),
        canonical_json(event.meta),
        format_timestamp(event.occurred_at),
        format_timestamp(event.recorded_at),
        event.actor,
        event.definition_hash,
        event.prev_hash,
        event.hash,
    )


class StoreAuditLog:
    """An :class:`AuditLog` over any event store, through its port."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def iter_log(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[StoredEvent]:
        for event in self._store.iter_all(after_position=after_position):
            if up_to is not None and event.position > up_to:
                return
            yield stored(event)

    def iter_rows(self, *, after_position: int = 0, up_to: int | None = None) -> Iterator[Row]:
        return self.iter_log(after_position=after_position, up_to=up_to)

    def iter_fold_rows(self) -> Iterator[FoldRow]:
        for event in self._store.iter_all():
            data = canonical_json(event.data)
            yield event.stream_id, event.version, event.position, event.type, data, event.definition_hash

    def iter_stream(self, stream_id: str) -> Iterator[StoredEvent]:
        for event in self._store.read_stream(stream_id):
            yield stored(event)

    def iter_hashes(self, *, up_to: int) -> Iterator[tuple[int, str]]:
        for event in self._store.iter_all():
            if event.position > up_to:
                return
            yield event.position, event.hash

    def head_position(self) -> int | None:
        return None

    def stream_versions(self) -> Iterator[tuple[str, int]]:
        for summary in self._store.streams():
            yield summary.stream_id, summary.version
