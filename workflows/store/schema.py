"""The tables of the SQL event store, as SQLAlchemy Core metadata.

JSON and timestamps are stored as text written by ``governance.chain`` (canonical
JSON, fixed-width UTC), so the bytes an auditor re-hashes are the bytes stored, on
SQLite and PostgreSQL alike. The migrations in ``workflows/migrations`` create these
tables; this module is what the adapter queries (and what Alembic compares against).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Stable constraint names, so that migrations can refer to them on both databases.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

HASH_LENGTH: Final = 64
ID_LENGTH: Final = 200

metadata = MetaData(naming_convention=NAMING_CONVENTION)

events = Table(
    "events",
    metadata,
    Column("stream_id", String(ID_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    # The global order auditors read in; allocated from log_head, so gapless. The primary
    # key: on SQLite (as INTEGER) the rowid, so the table is stored in position order.
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("type", String(ID_LENGTH), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("occurred_at", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("definition_hash", String(HASH_LENGTH), nullable=False),
    Column("prev_hash", String(HASH_LENGTH), nullable=False),
    Column("hash", String(HASH_LENGTH), nullable=False),
    UniqueConstraint("stream_id", "version"),
)

# A cache of each stream's head, kept in step by append; rebuildable from events.
streams = Table(
    "streams",
    metadata,
    Column("stream_id", String(ID_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("definition_id", String(ID_LENGTH), nullable=False),
    Column("definition_hash", String(HASH_LENGTH), nullable=False),
    Column("phase", String(ID_LENGTH), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# One row (id = 1): the last allocated global position. Updating it inside the append
# transaction serialises allocation, so positions are gapless and in commit order.
log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

definitions = Table(
    "definitions",
    metadata,
    Column("hash", String(HASH_LENGTH), primary_key=True),
    Column("definition_id", String(ID_LENGTH), nullable=False),
    Column("version", String(ID_LENGTH), nullable=False),
    Column("content", Text, nullable=False),
    # Nullable: the port's save_definition carries no time; the store fills it when it has a clock.
    Column("registered_at", Text, nullable=True),
)

command_keys = Table(
    "command_keys",
    metadata,
    Column("key", String(ID_LENGTH), primary_key=True),
    Column("stream_id", String(ID_LENGTH), nullable=False),
    Column("request_hash", String(ID_LENGTH), nullable=False),
    Column("response", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
)

# -- the notification outbox (migration 0002) -----------------------------------------------
# Mutable bookkeeping beside the log, rebuildable from it: what was sent is proven by the
# NotificationSent events of the ``notifications:<instance>`` streams, not by these rows.

KEY_LENGTH: Final = 600
NOTIFICATION_STATES: Final = ("planned", "claimed", "sent", "failed", "missed", "cancelled")

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(KEY_LENGTH), nullable=False, unique=True),
    Column("instance", String(ID_LENGTH), nullable=False, index=True),
    Column("rule", String(ID_LENGTH), nullable=False),
    Column("kind", String(ID_LENGTH), nullable=False),
    Column("subject", String(ID_LENGTH), nullable=False),
    Column("target", String(10), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("recipient_name", Text, nullable=False),
    Column("recipient_role", String(ID_LENGTH), nullable=False),
    # Fixed-width UTC text (governance.chain.format_timestamp): sorts as it orders.
    Column("due_at", Text, nullable=False),
    Column("stale_after", Text, nullable=True),
    Column("stale_reason", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(ID_LENGTH), nullable=True),
    Column("claimed_until", Text, nullable=True),
    Column("message_id", Text, nullable=True),
    Column("sha256", String(HASH_LENGTH), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("outcome", Text, nullable=True),
    Column("context", Text, nullable=False),
    Column("invite", Text, nullable=True),
    Column("plan_version", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    # Set at the first claim and kept: the Date header, so a resend is the same message.
    Column("first_attempt_at", Text, nullable=True),
    Column("sent_at", Text, nullable=True),
    CheckConstraint("state IN ('planned', 'claimed', 'sent', 'failed', 'missed', 'cancelled')", name="state"),
    # "What is due now" reads a range of this index: its cost follows what is due, not the table.
    Index("ix_notifications_state_due_at", "state", "due_at"),
    # When the next lease expires (``min(claimed_until)`` of the claimed rows), without a scan.
    Index("ix_notifications_state_claimed_until", "state", "claimed_until"),
)

# The instance version each plan was made from, and when the plan must be made again without a
# new event (the at-risk forecast moves with the days).
notification_plans = Table(
    "notification_plans",
    metadata,
    Column("instance", String(ID_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("planned_at", Text, nullable=False),
    Column("replan_after", Text, nullable=True, index=True),
    Column("silenced", Text, nullable=True),
    Column("problems", Text, nullable=False),
)

# One row (id = 1): the global position of the last event whose stream was planned, so a tick
# reads only the events appended since (the unique index on events.position makes it a range).
notification_cursor = Table(
    "notification_cursor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)
