"""APScheduler wakes the worker at the next due time, at least every safety interval, until stopped."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from workflows.alarm import run_until_stopped
from workflows.clock import SystemClock
from workflows.worker import TickReport


class Ticker:
    """A stand-in worker: says the next thing is due shortly, or fails when told to."""

    def __init__(self, stop: threading.Event, *, ticks: int, due_in: timedelta | None, fail: bool = False) -> None:
        self.stop, self.ticks, self.due_in, self.fail = stop, ticks, due_in, fail
        self.moments: list[datetime] = []

    def tick(self, now: datetime) -> TickReport:
        self.moments.append(now)
        if len(self.moments) >= self.ticks:
            self.stop.set()
        if self.fail:
            raise RuntimeError("database unavailable")
        return TickReport(now, next_wake=now + self.due_in if self.due_in is not None else None)


def run(ticker: Ticker, stop: threading.Event, safety: timedelta) -> None:
    thread = threading.Thread(
        target=run_until_stopped, args=(ticker, SystemClock(), stop), kwargs={"safety_interval": safety}
    )
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_worker_is_woken_at_the_next_due_time_reported_by_the_database() -> None:
    stop = threading.Event()
    ticker = Ticker(stop, ticks=3, due_in=timedelta(milliseconds=50))

    run(ticker, stop, safety=timedelta(minutes=5))

    assert len(ticker.moments) == 3


def test_with_nothing_due_the_safety_interval_still_wakes_it() -> None:
    stop = threading.Event()
    ticker = Ticker(stop, ticks=2, due_in=None)

    run(ticker, stop, safety=timedelta(milliseconds=100))

    gap = ticker.moments[1] - ticker.moments[0]
    assert timedelta(milliseconds=80) <= gap < timedelta(seconds=5)


def test_a_failing_tick_is_tried_again_at_the_safety_interval() -> None:
    stop = threading.Event()
    ticker = Ticker(stop, ticks=2, due_in=None, fail=True)

    run(ticker, stop, safety=timedelta(milliseconds=100))

    assert len(ticker.moments) == 2
