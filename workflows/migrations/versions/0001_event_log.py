"""The event log: events, streams, log_head, definitions, command_keys, append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, operations refused). command_keys may not be deleted (that would re-open a
# key) but is otherwise left alone; events and definitions are immutable.
_GUARDED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("events", ("UPDATE", "DELETE")),
    ("definitions", ("UPDATE", "DELETE")),
    ("command_keys", ("DELETE",)),
)
_PG_FUNCTION = "govflow_refuse_change"


def _hash() -> sa.String:
    return sa.String(64)


def _id() -> sa.String:
    return sa.String(200)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("stream_id", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("type", _id(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("definition_hash", _hash(), nullable=False),
        sa.Column("prev_hash", _hash(), nullable=False),
        sa.Column("hash", _hash(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", "version", name="pk_events"),
        sa.UniqueConstraint("position", name="uq_events_position"),
    )
    op.create_table(
        "streams",
        sa.Column("stream_id", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition_id", _id(), nullable=False),
        sa.Column("definition_hash", _hash(), nullable=False),
        sa.Column("phase", _id(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name="pk_streams"),
    )
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_head"),
        sa.CheckConstraint("id = 1", name="ck_log_head_single_row"),
    )
    op.bulk_insert(log_head, [{"id": 1, "position": 0}])
    op.create_table(
        "definitions",
        sa.Column("hash", _hash(), nullable=False),
        sa.Column("definition_id", _id(), nullable=False),
        sa.Column("version", _id(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("hash", name="pk_definitions"),
    )
    op.create_table(
        "command_keys",
        sa.Column("key", _id(), nullable=False),
        sa.Column("stream_id", _id(), nullable=False),
        sa.Column("request_hash", _id(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_command_keys"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_guards()
    else:
        _create_sqlite_guards()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Dropping the tables drops their triggers; the function goes last.
        for table in ("command_keys", "definitions", "log_head", "streams", "events"):
            op.drop_table(table)
        op.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
        return
    for table, operations in _GUARDED:
        for operation in operations:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation.lower()}")
    for table in ("command_keys", "definitions", "log_head", "streams", "events"):
        op.drop_table(table)


def _create_sqlite_guards() -> None:
    for table, operations in _GUARDED:
        for operation in operations:
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: {operation} refused'); END"
            )


def _create_postgresql_guards() -> None:
    op.execute(
        f"""
        CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% are append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    for table, operations in _GUARDED:
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE {' OR '.join(operations)} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()"
        )
        # Row triggers do not fire on TRUNCATE, which would otherwise empty the table.
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
        )
