"""APScheduler 3.11 as the worker's alarm clock, and nothing more (LIBRARIES.md).

One job with a fixed id, ``replace_existing=True``, in the in-memory job store: it runs
``worker.tick(now)`` and then schedules itself again for the earliest of the next due
time the database reports and the safety interval (which also picks up news recorded
by other processes). Nothing is remembered here: a job lost to a crash, a restart or a
misfire costs at most one safety interval, because what is due always comes from the
database. ``misfire_grace_time=None`` and ``coalesce`` make a late wake-up run once.

Re-adding the job from inside itself is safe: the scheduler removes a finished date job
while holding its job-store lock, which ``add_job`` waits for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from workflows.clock import Clock
from workflows.worker import TickReport

__all__ = ["JOB_ID", "run_until_stopped"]

log = logging.getLogger(__name__)

JOB_ID: Final = "govflow-worker-tick"


class _Ticking(Protocol):
    def tick(self, now: datetime) -> TickReport: ...


def run_until_stopped(
    worker: _Ticking,
    clock: Clock,
    stop: threading.Event,
    *,
    safety_interval: timedelta,
    on_tick: Callable[[TickReport], None] = lambda report: None,
) -> None:
    """Tick now, then at each next due time (at least every ``safety_interval``) until ``stop`` is set."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )

    def schedule(when: datetime) -> None:
        if not stop.is_set():
            scheduler.add_job(wake, DateTrigger(run_date=when), id=JOB_ID, replace_existing=True)

    def wake() -> None:
        next_wake: datetime | None = None
        try:
            report = worker.tick(clock.now())
            next_wake = report.next_wake
            on_tick(report)
        except Exception:
            # The database is the memory: log, and try again at the safety interval.
            log.exception("the worker's tick failed; trying again in %s", safety_interval)
        now = clock.now()
        latest = now + safety_interval
        schedule(latest if next_wake is None else max(min(next_wake, latest), now))

    schedule(clock.now())
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
