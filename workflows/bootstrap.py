"""The composition root: the one place that builds concrete adapters.

From settings and the global options it makes the clock, the engine and the
event store, and hands back the :class:`~workflows.services.Services`. Nothing
here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workflows.clock import Clock, FixedClock, SystemClock, parse_moment
from workflows.config import Settings, load_settings
from workflows.services import Services

if TYPE_CHECKING:
    from sqlalchemy import Engine

# How to close what this process opened (engines, SQLite readers), until close_engines() does.
_CLOSERS: list[Callable[[], object]] = []


@dataclass(frozen=True)
class Options:
    """The global command-line options."""

    db: str | None = None
    config: str | None = None
    now: str | None = None


def settings_for(options: Options) -> Settings:
    return load_settings(options.config)


def clock_for(options: Options, settings: Settings) -> Clock:
    if options.now:
        return FixedClock(parse_moment(options.now, settings.timezone))
    return SystemClock()


def database_url(options: Options, settings: Settings) -> str:
    return options.db or settings.database_url


def build_engine(options: Options, settings: Settings) -> Engine:
    """An engine for the chosen database with every ``[database]`` connection setting.

    Kept until :func:`close_engines`; connects lazily, so a wrong URL fails at first use.
    """
    from workflows.database import make_engine

    database = settings.values["database"]
    rootcert = database["sslrootcert"]
    engine = make_engine(
        database_url(options, settings),
        pool_size=database["pool_size"],
        statement_timeout_ms=database["statement_timeout_ms"] or None,
        connect_timeout_seconds=database["connect_timeout_seconds"] or None,
        sslmode=database["sslmode"],
        # Relative to the configuration file's folder, like the other paths in it.
        sslrootcert=str(settings.base_dir / Path(rootcert).expanduser()) if rootcert else None,
    )
    _CLOSERS.append(engine.dispose)
    return engine


def close_engines() -> None:
    """Dispose of every engine and close every reader built so far (the CLI calls this after each command).

    A command run in-process (the tests, an embedding program) then leaves no
    connection open behind it: psycopg warns about connections left to the garbage
    collector, and an open SQLite file keeps its file system busy.
    """
    while _CLOSERS:
        _CLOSERS.pop()()


def build_query_services(options: Options) -> Services:
    """Services for a command that only reads.

    On a SQLite file they read through the standard library (``SqliteReader``) and
    never import SQLAlchemy: a ``govflow status`` starts in a fraction of the time.
    Any other database gets the full services.
    """
    from workflows.store.sqlite_reader import SqliteReader, sqlite_path

    settings = settings_for(options)
    path = sqlite_path(database_url(options, settings))
    if path is None:
        return build_services(options)
    reader = SqliteReader(path)
    _CLOSERS.append(reader.close)
    return Services(store=reader, clock=clock_for(options, settings), definition_dirs=settings.definition_dirs)


def build_services(options: Options, *, source: str = "cli") -> Services:
    """Wire the application for one command."""
    from workflows.store.sql import SqlEventStore

    settings = settings_for(options)
    engine = build_engine(options, settings)
    clock = clock_for(options, settings)
    return Services(
        store=SqlEventStore(engine, clock=clock.now),
        clock=clock,
        definition_dirs=settings.definition_dirs,
        source=source,
    )
