"""Fixtures shared by every test folder: database URLs. Keep this file generic and small."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

POSTGRES_ENV = "GOVFLOW_TEST_POSTGRES_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database in a real file (not yet created or migrated)."""
    return f"sqlite:///{tmp_path / 'govflow.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for this test, dropped afterwards.

    The server comes from ``GOVFLOW_TEST_POSTGRES_URL`` (``scripts/pg-cluster start DIR``
    prints one). Without it the test is skipped, except in CI, where it fails. The URL
    puts the schema first on the ``search_path`` (a schema is ~100x cheaper than a database).
    """
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        message = f"no PostgreSQL: set {POSTGRES_ENV} (scripts/pg-cluster start DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"govflow_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            # A connection a test left inside a transaction must not hang the run.
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
