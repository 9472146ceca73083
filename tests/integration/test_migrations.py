"""Alembic migrations: idempotent, at head, reversible on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from governance.events import INSTANCE_STARTED, NewEvent
from workflows.database import current_revision, downgrade, head_revision, make_engine, migrate
from workflows.errors import StoreError
from workflows.store.base import AppendRequest
from workflows.store.schema import metadata
from workflows.store.sql import SqlEventStore

NOW = datetime(2019, 6, 3, tzinfo=UTC)
TABLES = {"events", "streams", "log_head", "definitions", "command_keys", "notifications", "notification_plans"}


def start(store: SqlEventStore, stream_id: str) -> int:
    request = AppendRequest(stream_id, 0, "officer", "d" * 64, NOW, "drafting", "lis")
    (recorded,) = store.append(request, [NewEvent(INSTANCE_STARTED, {}, occurred_at=NOW)])
    return recorded.position


def test_an_unmigrated_database_has_no_revision(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_a_migrated_database_is_at_the_head_revision(database_url: str) -> None:
    migrate(database_url)

    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision() == "0004"
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        store = SqlEventStore(engine)
        start(store, "lis-1")

        migrate(engine)

        assert current_revision(engine) == head_revision()
        assert [recorded.position for recorded in store.read_stream("lis-1")] == [1]
        assert start(store, "lis-2") == 2
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_sqlite_downgrade_and_upgrade_round_trip(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        start(SqlEventStore(engine), "lis-1")

        downgrade(engine)
        assert current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())

        migrate(engine)
        store = SqlEventStore(engine)
        assert store.read_stream("lis-1") == []
        assert start(store, "lis-1") == 1
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("DELETE FROM events"))
    finally:
        engine.dispose()


def test_keying_events_by_position_keeps_every_event_and_the_guards_both_ways(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        store = SqlEventStore(engine)
        for stream in ("lis-1", "lis-2", "lis-3"):
            start(store, stream)
        before = list(store.iter_all())

        downgrade(engine, "0003")
        with engine.connect() as connection:
            positions = connection.execute(text("SELECT position FROM events ORDER BY position")).scalars().all()
        assert positions == [1, 2, 3]
        migrate(engine)

        store = SqlEventStore(engine)
        assert list(store.iter_all()) == before
        assert start(store, "lis-4") == 4
        copy = (
            "INSERT INTO events SELECT stream_id, version, 99, type, schema_version, data, meta, occurred_at, "
            "recorded_at, actor, definition_hash, prev_hash, hash FROM events WHERE position = 1"
        )
        with pytest.raises(DBAPIError, match=r"(?i)unique|duplicate"), engine.begin() as connection:
            connection.execute(text(copy))  # (stream_id, version) is still unique
        for statement in ("DELETE FROM events", "UPDATE events SET actor = 'mallory'"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                plan = connection.execute(text("EXPLAIN QUERY PLAN SELECT * FROM events ORDER BY position")).all()
            assert "SCAN events" in plan[0][-1] and "INDEX" not in plan[0][-1]  # the table is in position order
    finally:
        engine.dispose()


def test_migrate_creates_the_folder_of_a_new_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "govflow.db"

    migrate(f"sqlite:///{path}")

    assert path.is_file()


def test_a_database_from_a_newer_version_is_a_store_error(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

        with pytest.raises(StoreError, match="9999"):
            migrate(engine)
    finally:
        engine.dispose()


def test_using_an_unmigrated_database_is_a_store_error_that_says_so(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(StoreError, match="is the database migrated"):
            SqlEventStore(engine).read_stream("lis-1")
    finally:
        engine.dispose()
