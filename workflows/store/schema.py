"""The tables of the SQL event store, as SQLAlchemy Core metadata.

JSON and timestamps are stored as text written by ``governance.chain`` (canonical
JSON, fixed-width UTC), so the bytes an auditor re-hashes are the bytes stored, on
SQLite and PostgreSQL alike. The migrations in ``workflows/migrations`` create these
tables; this module is what the adapter queries (and what Alembic compares against).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, CheckConstraint, Column, Integer, MetaData, String, Table, Text

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
    Column("stream_id", String(ID_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    # The global order auditors read in; allocated from log_head, so gapless.
    Column("position", BigInteger, nullable=False, unique=True),
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
