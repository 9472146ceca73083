"""Event store fixtures: one contract, run against every adapter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workflows.database import make_engine, migrate
from workflows.store.base import EventStore
from workflows.store.memory import InMemoryEventStore
from workflows.store.sql import SqlEventStore

SQL_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _sql_store(request: pytest.FixtureRequest, database: str) -> Iterator[SqlEventStore]:
    url = request.getfixturevalue(f"{database}_url")
    migrate(url)
    engine = make_engine(url)
    try:
        yield SqlEventStore(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=SQL_DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind the SQL store supports (not migrated)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=SQL_DATABASES)
def sql_store(request: pytest.FixtureRequest) -> Iterator[SqlEventStore]:
    """A SqlEventStore on a freshly migrated database of each kind."""
    yield from _sql_store(request, request.param)


@pytest.fixture(params=[*SQL_DATABASES, "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[EventStore]:
    """Every EventStore adapter, each empty."""
    if request.param == "memory":
        yield InMemoryEventStore()
    else:
        yield from _sql_store(request, request.param)
