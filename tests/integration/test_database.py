"""Engines: SQLite set up for several writer processes; errors that name the database, not its password."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from workflows.database import make_engine, migrate, read_connection, write_transaction
from workflows.errors import StoreError
from workflows.store.sql import SqlEventStore


def test_sqlite_connections_use_wal_full_sync_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with read_connection(engine) as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 10_000, "foreign_keys": 1}


def test_a_new_sqlite_database_has_2_kib_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    with sqlite3.connect(old) as made_elsewhere:  # default pages (4 KiB), already in WAL mode
        made_elsewhere.execute("PRAGMA journal_mode=WAL")
        made_elsewhere.execute("CREATE TABLE earlier (x INTEGER)")
    for path in (new, old):
        migrate(f"sqlite:///{path}")
    sizes = {}
    for path in (new, old):
        engine = make_engine(f"sqlite:///{path}")
        try:
            SqlEventStore(engine).save_definition("d" * 64, "lis", "1", "content")
            with read_connection(engine) as connection:
                sizes[path.name] = connection.exec_driver_sql("PRAGMA page_size").scalar()
        finally:
            engine.dispose()
    assert sizes == {"new.db": 2048, "old.db": 4096}


def test_sqlite_write_transactions_take_the_write_lock_at_begin(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    other = make_engine(sqlite_url)
    try:
        with write_transaction(engine):
            # Nothing written yet, yet another writer is already kept out.
            with other.connect() as connection:
                connection.exec_driver_sql("PRAGMA busy_timeout=0")
                with pytest.raises(Exception, match="locked"):
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            # Readers are not blocked (WAL).
            with read_connection(other) as connection:
                assert connection.execute(text("SELECT position FROM log_head")).scalar() == 0
    finally:
        engine.dispose()
        other.dispose()


def test_sqlite_read_transactions_do_not_block_writers(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with read_connection(engine) as reading:
            reading.execute(text("SELECT position FROM log_head")).scalar()
            with write_transaction(engine) as writing:
                writing.execute(text("UPDATE log_head SET position = position WHERE id = 1"))
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the connection attempt
    url = f"postgresql+psycopg://govflow:s3cret-pw@127.0.0.1:{port}/nowhere"

    with pytest.raises(StoreError) as raised:
        migrate(url)

    message = str(raised.value)
    assert "s3cret-pw" not in message
    assert f"127.0.0.1:{port}/nowhere" in message
    assert "\n" not in message


def test_a_sqlite_file_that_cannot_be_created_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot create the folder /proc/govflow"):
        migrate("sqlite:////proc/govflow/no.db")


def test_a_sqlite_file_in_a_missing_folder_is_a_store_error_when_used(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'govflow.db'}")
    try:
        with pytest.raises(StoreError, match="unable to open database file"):
            SqlEventStore(engine).read_stream("lis-1")
    finally:
        engine.dispose()


def test_an_unsupported_url_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="unsupported database") as raised:
        make_engine("mysql://root:hunter2@localhost/govflow")

    assert "hunter2" not in str(raised.value)


@pytest.mark.postgres
def test_a_postgres_statement_timeout_cancels_slow_statements(postgres_url: str) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url, pool_size=2, statement_timeout_ms=50)
    try:
        with read_connection(engine) as connection:
            # The URL's own options (the test schema's search_path) survive the timeout option.
            assert connection.execute(text("SELECT position FROM log_head")).scalar() == 0
            with pytest.raises(OperationalError, match="statement timeout"):
                connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        engine.dispose()
