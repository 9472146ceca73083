"""Events keyed by their global position; ``(stream_id, version)`` stays unique.

On SQLite an ``INTEGER`` primary key is the table's rowid: the table itself is ordered
by position, and the separate unique index on position goes. An append then writes one
b-tree page fewer (each page is a WAL frame flushed at commit, the dominant cost of a
durable append), and reading the log in position order walks the table instead of an
index. SQLite cannot change a primary key in place, so the table is rebuilt (same
columns, same order) and its append-only triggers made again. PostgreSQL swaps the
constraints; its tables have no such clustering, so nothing else changes there.

Revision ID: 0004
Revises: 0003
Create Date: 2024-04-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "stream_id, version, position, type, schema_version, data, meta, occurred_at, recorded_at, actor, "
    "definition_hash, prev_hash, hash"
)
_DEFINITIONS = """
    stream_id VARCHAR(200) NOT NULL,
    version INTEGER NOT NULL,
    position {position_type} NOT NULL,
    type VARCHAR(200) NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    meta TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    definition_hash VARCHAR(64) NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    {keys}
"""
_BY_POSITION = "CONSTRAINT pk_events PRIMARY KEY (position), CONSTRAINT uq_events_stream_id UNIQUE (stream_id, version)"
_BY_STREAM = "CONSTRAINT pk_events PRIMARY KEY (stream_id, version), CONSTRAINT uq_events_position UNIQUE (position)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE events DROP CONSTRAINT pk_events, DROP CONSTRAINT uq_events_position, "
            "ADD CONSTRAINT pk_events PRIMARY KEY (position), "
            "ADD CONSTRAINT uq_events_stream_id UNIQUE (stream_id, version)"
        )
    else:
        # Exactly ``INTEGER``: only that type makes the primary key the rowid.
        _rebuild_sqlite_events(position_type="INTEGER", keys=_BY_POSITION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE events DROP CONSTRAINT pk_events, DROP CONSTRAINT uq_events_stream_id, "
            "ADD CONSTRAINT pk_events PRIMARY KEY (stream_id, version), "
            "ADD CONSTRAINT uq_events_position UNIQUE (position)"
        )
    else:
        _rebuild_sqlite_events(position_type="BIGINT", keys=_BY_STREAM)


def _rebuild_sqlite_events(*, position_type: str, keys: str) -> None:
    """Copy the events into a table with other keys, in position order, under the same guards."""
    for operation in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS events_no_{operation}")
    op.execute(f"CREATE TABLE events_rebuilt ({_DEFINITIONS.format(position_type=position_type, keys=keys)})")
    op.execute(f"INSERT INTO events_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM events ORDER BY position")
    op.execute("DROP TABLE events")  # the implicit delete of a DROP fires no trigger
    op.execute("ALTER TABLE events_rebuilt RENAME TO events")
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER events_no_{operation.lower()} BEFORE {operation} ON events "
            f"BEGIN SELECT RAISE(ABORT, 'events are append-only: {operation} refused'); END"
        )
