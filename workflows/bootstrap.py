"""The composition root: the one place that builds concrete adapters.

From settings and the global options it makes the clock, the engine and the
event store, and hands back the :class:`~workflows.services.Services`. Nothing
here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.clock import Clock, FixedClock, SystemClock, parse_moment
from workflows.config import Settings, load_settings
from workflows.services import Services


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


def build_services(options: Options, *, source: str = "cli") -> Services:
    """Wire the application for one command."""
    from workflows.database import make_engine
    from workflows.store.sql import SqlEventStore

    settings = settings_for(options)
    engine = make_engine(
        database_url(options, settings),
        pool_size=settings.get("database", "pool_size"),
        statement_timeout_ms=settings.get("database", "statement_timeout_ms") or None,
    )
    clock = clock_for(options, settings)
    return Services(
        store=SqlEventStore(engine, clock=clock.now),
        clock=clock,
        definition_dirs=settings.definition_dirs,
        source=source,
    )
