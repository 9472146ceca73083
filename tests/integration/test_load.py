"""Load: 8 processes recording on 200 instances at once lose nothing, double nothing and agree with replay.

Each worker process (spawned: a fresh interpreter, as separate secretaries' commands
would be) loops until its time is up: it picks an instance — 30% of the time one of
two hot instances, the same for every worker at that moment, so that workers collide
— chooses a step the rules allow (``tests.walker``), and runs it through the services
API under its own idempotency key. Now and then it sends an accepted command again
under the same key, as a client retrying after a lost answer would.

Every attempt ends in exactly one of: accepted, a typed conflict (``ConcurrencyConflict``,
CLI exit 3), or a governance rule refusal (the other secretary's decision got there
first). Anything else fails the test. Afterwards the log is checked as an auditor
would: gapless versions and positions, an intact hash chain, each accepted key's
events present exactly once, and every instance's live state equal to a fresh fold
and to the ``streams`` projection.

Durations: ``GOVFLOW_TEST_LOAD_SECONDS`` (PostgreSQL, default 30) and
``GOVFLOW_TEST_LOAD_SECONDS_SQLITE`` (default 10).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from governance.errors import RuleViolation
from governance.events import RecordedEvent
from governance.state import Instance
from governance.status import status_of
from tests.log_checks import check_log, commands_in
from tests.walker import choose
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.errors import ConcurrencyConflict
from workflows.services import Services
from workflows.store.sql import SqlEventStore

pytestmark = pytest.mark.slow

PROCESSES = 8
INSTANCES = 200
HOT_INSTANCES = 2
HOT_SHARE = 0.3
# The hot instances change every second, so that the collisions never stop: a hot
# instance that reached its final phase would take no more commands.
HOT_SECONDS = 1.0
RESEND_SHARE = 0.05
# How long the workers run, per database: (environment variable, default seconds).
DURATION = {"sqlite": ("GOVFLOW_TEST_LOAD_SECONDS_SQLITE", 10.0), "postgres": ("GOVFLOW_TEST_LOAD_SECONDS", 30.0)}
# After every decision date of the LIS, so that every step is dated in the past.
NOW = datetime(2020, 3, 31, 12, tzinfo=UTC)
STARTED = date(2019, 6, 3)
START_TIMEOUT = 120.0


@dataclass
class Report:
    """What one worker saw; sent back to the test through a queue."""

    worker: int
    accepted: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(key, instance, first version, number of events) of each accepted command."""
    latest: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """Per instance: the highest version this worker's commands left it at, and the live state then."""
    conflicts: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    resent: int = 0
    idle: int = 0
    errors: list[str] = field(default_factory=list)


def _instance_id(number: int) -> str:
    return f"lis-{number:03d}"


def portrait(instance: Instance, services: Services) -> dict[str, Any]:
    """The state as users see it (status) plus what status leaves out: version, decisions, documents."""
    return {
        "version": instance.version,
        "status": status_of(instance, services.today(instance)),
        "decisions": [(d.id, d.outcome, d.void) for d in instance.decisions],
        "documents": [d.sha256 for d in instance.documents],
        "meetings": sorted(instance.meetings),
    }


def _services(engine: Engine) -> Services:
    return Services(SqlEventStore(engine), FixedClock(NOW), source="load-test")


def _work(url: str, worker: int, seconds: float, folder: str, barrier: Any, results: Any) -> None:
    """Record steps on random instances until ``seconds`` have passed; report everything."""
    engine = make_engine(url)
    services = _services(engine)
    rng = random.Random(worker)
    report = Report(worker)
    everyone = [_instance_id(n) for n in range(INSTANCES)]
    count = 0
    try:
        barrier.wait(START_TIMEOUT)
        began = time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds:
            if rng.random() < HOT_SHARE:
                window = int(elapsed / HOT_SECONDS)
                instance_id = _instance_id((window * HOT_INSTANCES + rng.randrange(HOT_INSTANCES)) % INSTANCES)
            else:
                instance_id = rng.choice(everyone)
            step = choose(services.load(instance_id), rng)
            if step is None:
                report.idle += 1
                continue
            count += 1
            key = f"w{worker}-{count}"
            run = {"actor": f"secretary {worker}", "key": key, "folder": Path(folder)}
            try:
                outcome = step.run(services, instance_id, **run)
            except ConcurrencyConflict:
                report.conflicts += 1
                continue
            except RuleViolation as refusal:
                report.refusals[type(refusal).__name__] += 1
                continue
            assert outcome.state is not None and not outcome.replayed, key
            first = outcome.events[0]["version"]
            report.accepted.append((key, instance_id, first, len(outcome.events)))
            if outcome.state.version > report.latest.get(instance_id, (0, {}))[0]:
                report.latest[instance_id] = (outcome.state.version, portrait(outcome.state, services))
            if rng.random() < RESEND_SHARE:
                again = step.run(services, instance_id, **run)
                assert again.replayed and again.events == outcome.events, key
                report.resent += 1
    except Exception as error:  # reported to the test, which fails on it
        report.errors.append(f"{type(error).__name__}: {error}")
    finally:
        engine.dispose()
        results.put(report)


def _seed(url: str) -> None:
    """Migrate and start the instances (keyed, like every other command)."""
    migrate(url)
    engine = make_engine(url)
    services = _services(engine)
    try:
        for number in range(INSTANCES):
            instance_id = _instance_id(number)
            key = f"start-{instance_id}"
            services.start("selep-lis-2019", instance_id, actor="programme officer", key=key, day=STARTED)
    finally:
        engine.dispose()


def _run_workers(url: str, seconds: float, folder: Path) -> list[Report]:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_work, args=(url, worker, seconds, str(folder), barrier, results))
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    reports: list[Report] = []
    try:
        for _ in processes:
            reports.append(results.get(timeout=START_TIMEOUT + seconds + 60))
    except queue.Empty:
        pytest.fail(f"{len(reports)} of {PROCESSES} workers reported")
    finally:
        for process in processes:
            process.join(60)
            if process.is_alive():
                process.terminate()
                process.join()
    return reports


def check_accepted(streams: dict[str, list[RecordedEvent]], accepted: list[tuple[str, str, int, int]]) -> None:
    """Each accepted command is in the log once, where it said; every keyed event belongs to one."""
    started = {f"start-{_instance_id(n)}": (_instance_id(n), 1) for n in range(INSTANCES)}
    in_log = commands_in(streams)
    assert {key: (stream, first) for key, (stream, first, _) in in_log.items()} == started | {
        key: (instance_id, first) for key, instance_id, first, _ in accepted
    }
    assert all(in_log[key][2] == count for key, _, _, count in accepted)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_eight_processes_recording_on_two_hundred_instances_lose_nothing_and_double_nothing(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(f"{database}_url")
    variable, default = DURATION[database]
    seconds = float(os.environ.get(variable, default))
    _seed(url)

    began = time.perf_counter()
    reports = _run_workers(url, seconds, tmp_path)
    elapsed = time.perf_counter() - began

    assert {r.worker: r.errors for r in reports} == {w: [] for w in range(PROCESSES)}
    accepted = [item for r in reports for item in r.accepted]
    conflicts = sum(r.conflicts for r in reports)
    refusals = sum((r.refusals for r in reports), Counter[str]())
    print(
        f"\n{database}: {len(accepted)} accepted in {seconds:.0f} s ({len(accepted) / seconds:.0f}/s), "
        f"{conflicts} conflicts, {sum(refusals.values())} refusals {dict(refusals)}, "
        f"{sum(r.resent for r in reports)} resent, {sum(r.idle for r in reports)} idle picks; "
        f"workers ran {elapsed:.1f} s"
    )
    assert conflicts > 0, "the hot instances should have made workers collide"
    assert len(accepted) > PROCESSES

    engine = make_engine(url)
    services = _services(engine)
    try:
        streams = check_log(list(services.store.iter_all()))
        check_accepted(streams, accepted)
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        for report in reports:
            for instance_id, (version, state) in report.latest.items():
                if version > latest.get(instance_id, (0, {}))[0]:
                    latest[instance_id] = (version, state)
        summaries = {s.stream_id: s for s in services.store.streams()}
        assert sorted(summaries) == sorted(streams) == [_instance_id(n) for n in range(INSTANCES)]
        for instance_id, stream in streams.items():
            replayed = services.load(instance_id)
            summary = summaries[instance_id]
            assert (
                (summary.version, summary.phase)
                == (replayed.version, replayed.phase)
                == (
                    len(stream),
                    replayed.state,
                )
            )
            if instance_id in latest:
                # The last command on a stream returned the live state: it must be what replay gives.
                version, live = latest[instance_id]
                assert version == replayed.version, instance_id
                assert live == portrait(replayed, services), instance_id
    finally:
        engine.dispose()
