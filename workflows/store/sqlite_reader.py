"""A read-only view of a SQLite event store through the standard library's ``sqlite3``.

The query commands (``status``, ``history``, ``list``) only read. On SQLite they
use this reader instead of :class:`~workflows.store.sql.SqlEventStore`, so that a
``govflow status`` does not import SQLAlchemy, which would be most of its start-up
time. It reads the same tables with the same row decoding (``sealing.to_recorded``);
the contract tests hold its answers equal to the SQL store's. Writing through it is
refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from governance.chain import parse_timestamp
from governance.events import EventPayload, NewEvent, RecordedEvent
from workflows.errors import StoreError
from workflows.store.base import AppendRequest, CommandRecord, StreamSummary
from workflows.store.sealing import to_recorded

_PREFIX = "sqlite:///"
_BUSY_TIMEOUT_MS = 10_000
_PAYLOAD_CHUNK = 500


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL, or None for anything else (in memory, options)."""
    if not url.startswith(_PREFIX) or "?" in url:
        return None
    path = url[len(_PREFIX) :]
    return Path(path) if path and path != ":memory:" else None


class SqliteReader:
    """The reading half of the :class:`~workflows.store.base.EventStore` port, on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            if not self._path.is_file():
                raise StoreError(f"database sqlite:///{self._path} does not exist: run `govflow init`")
            try:
                connection = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, isolation_level=None)
                connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            except sqlite3.Error as error:
                raise self._error(error, "open the database") from None
            connection.row_factory = sqlite3.Row
            self._connection = connection
        return self._connection

    def _rows(self, doing: str, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db().execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise self._error(error, doing) from None

    def _error(self, error: sqlite3.Error, doing: str) -> StoreError:
        reason = str(error).strip() or type(error).__name__
        if "no such table" in reason:
            return StoreError(f"cannot {doing}: database sqlite:///{self._path} is not initialised: run `govflow init`")
        return StoreError(f"cannot {doing} in database sqlite:///{self._path}: {reason}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- reads ----------------------------------------------------------------------------

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        rows = self._rows(
            f"read stream '{stream_id}'",
            "SELECT * FROM events WHERE stream_id = ? AND version > ? ORDER BY version",
            (stream_id, after_version),
        )
        return [to_recorded(_mapping(row)) for row in rows]

    def iter_payloads(self, stream_ids: Sequence[str]) -> Iterator[EventPayload]:
        wanted = sorted(set(stream_ids))
        for start in range(0, len(wanted), _PAYLOAD_CHUNK):
            chunk = wanted[start : start + _PAYLOAD_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(
                "read streams",
                "SELECT stream_id, version, type, data, definition_hash FROM events "
                f"WHERE stream_id IN ({marks}) ORDER BY stream_id, version",
                chunk,
            )
            for stream_id, version, type_, data, definition_hash in rows:
                yield EventPayload(stream_id, version, type_, json.loads(data), definition_hash)

    def iter_all(self, *, after_position: int = 0, batch_size: int = 1000) -> Iterator[RecordedEvent]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        after = after_position
        while True:
            rows = self._rows(
                "read the event log",
                "SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after, batch_size),
            )
            yield from (to_recorded(_mapping(row)) for row in rows)
            if len(rows) < batch_size:
                return
            after = rows[-1]["position"]

    def stream(self, stream_id: str) -> StreamSummary | None:
        rows = self._rows(f"read stream '{stream_id}'", "SELECT * FROM streams WHERE stream_id = ?", (stream_id,))
        return _summary(rows[0]) if rows else None

    def streams(self) -> list[StreamSummary]:
        return [_summary(row) for row in self._rows("list the streams", "SELECT * FROM streams ORDER BY stream_id")]

    def find_command(self, key: str) -> CommandRecord | None:
        rows = self._rows("find a command", "SELECT * FROM command_keys WHERE key = ?", (key,))
        if not rows:
            return None
        row = rows[0]
        return CommandRecord(row["key"], row["stream_id"], row["request_hash"], json.loads(row["response"]))

    def load_definition(self, definition_hash: str) -> str | None:
        rows = self._rows("load a definition", "SELECT content FROM definitions WHERE hash = ?", (definition_hash,))
        return str(rows[0][0]) if rows else None

    # -- writes are refused ---------------------------------------------------------------

    def append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        raise StoreError("this view of the database is read-only")

    def write(self, request: AppendRequest, events: Sequence[NewEvent]) -> int:
        raise StoreError("this view of the database is read-only")

    def append_many(self, batch: Sequence[tuple[AppendRequest, Sequence[NewEvent]]]) -> list[list[RecordedEvent]]:
        raise StoreError("this view of the database is read-only")

    def save_definition(self, definition_hash: str, definition_id: str, version: str, content: str) -> None:
        raise StoreError("this view of the database is read-only")


def _mapping(row: sqlite3.Row) -> Mapping[str, Any]:
    """A row as the mapping ``to_recorded`` reads (sqlite3.Row reads by key but is no Mapping)."""
    return dict(zip(row.keys(), row, strict=True))


def _summary(row: sqlite3.Row) -> StreamSummary:
    return StreamSummary(
        stream_id=row["stream_id"],
        version=row["version"],
        definition_id=row["definition_id"],
        definition_hash=row["definition_hash"],
        phase=row["phase"],
        created_at=parse_timestamp(row["created_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
    )
