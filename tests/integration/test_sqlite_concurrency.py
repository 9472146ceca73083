"""Several OS processes writing one SQLite file: nothing lost, nothing doubled, no lock errors.

The workers run in spawned processes (a fresh interpreter each, as separate ``govflow``
commands would), so they share nothing but the database file.
"""

from __future__ import annotations

import multiprocessing
import queue
from datetime import UTC, datetime
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

import pytest

from governance.chain import GENESIS_HASH
from governance.events import INSTANCE_STARTED, TASK_COMPLETED, NewEvent
from workflows.database import current_revision, head_revision, make_engine, migrate
from workflows.errors import ConcurrencyConflict
from workflows.store.base import AppendRequest, CommandRecord
from workflows.store.sql import SqlEventStore

pytestmark = pytest.mark.slow

NOW = datetime(2019, 6, 3, 9, 30, tzinfo=UTC)
TIMEOUT = 120.0


def _request(stream_id: str, expected_version: int, key: str | None = None) -> AppendRequest:
    command = None if key is None else CommandRecord(key, stream_id, f"request-{key}", {"key": key})
    return AppendRequest(
        stream_id=stream_id,
        expected_version=expected_version,
        actor="worker",
        definition_hash="d" * 64,
        recorded_at=NOW,
        phase="drafting",
        definition_id="lis",
        command=command,
    )


def _event(**data: Any) -> NewEvent:
    return NewEvent(TASK_COMPLETED, data, occurred_at=NOW)


def _race(url: str, rounds: int, barrier: Any, results: Any) -> None:
    """Each round: read the version, wait for the rival, append at that version."""
    engine = make_engine(url)
    store = SqlEventStore(engine)
    try:
        for round_number in range(rounds):
            summary = store.stream("race")
            assert summary is not None
            barrier.wait(TIMEOUT)
            try:
                store.append(_request("race", summary.version), [_event(round=round_number)])
                outcome = "appended"
            except ConcurrencyConflict:
                outcome = "conflict"
            except Exception as error:  # reported to the test, which fails on it
                outcome = f"error: {error!r}"
            results.put((round_number, outcome))
            barrier.wait(TIMEOUT)  # the next round reads only after both have written
    finally:
        engine.dispose()


def _append_with_retries(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Append ``count`` events to one shared stream, retrying each on conflict.

    Each append carries a command key, so its transaction reads (the key) before it
    writes: the pattern that loses updates or fails with "database is locked" unless
    write transactions start with BEGIN IMMEDIATE.
    """
    engine = make_engine(url)
    store = SqlEventStore(engine)
    accepted: list[int] = []
    conflicts = 0
    errors: list[str] = []
    try:
        barrier.wait(TIMEOUT)
        for number in range(count):
            while True:
                summary = store.stream("shared")
                assert summary is not None
                try:
                    store.append(
                        _request("shared", summary.version, key=f"w{worker}-{number}"),
                        [_event(worker=worker, n=number)],
                    )
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                accepted.append(number)
                break
    except Exception as error:  # reported to the test, which fails on it
        errors.append(repr(error))
    finally:
        engine.dispose()
        results.put((worker, accepted, conflicts, errors))


def _migrate(url: str, barrier: Any, results: Any) -> None:
    barrier.wait(TIMEOUT)
    try:
        migrate(url)
        results.put("migrated")
    except Exception as error:  # reported to the test, which fails on it
        results.put(f"error: {error!r}")


def _run(context: SpawnContext, processes: list[SpawnProcess], results: Any, expected: int) -> list[Any]:
    """Start the processes and collect ``expected`` results (before joining: the queue must drain)."""
    for process in processes:
        process.start()
    collected = []
    try:
        for _ in range(expected):
            collected.append(results.get(timeout=TIMEOUT))
    except queue.Empty:
        pytest.fail(f"workers sent {len(collected)} of {expected} results in {TIMEOUT} s")
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join()
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return collected


@pytest.fixture
def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


@pytest.fixture
def seeded_url(sqlite_url: str) -> str:
    """A migrated SQLite file holding the streams ``race`` and ``shared`` at version 1."""
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        store = SqlEventStore(engine)
        for stream_id in ("race", "shared"):
            store.append(_request(stream_id, 0), [NewEvent(INSTANCE_STARTED, {}, occurred_at=NOW)])
    finally:
        engine.dispose()
    return sqlite_url


def test_of_two_processes_appending_at_the_same_version_exactly_one_wins(spawn: SpawnContext, seeded_url: str) -> None:
    rounds = 5
    barrier = spawn.Barrier(2)
    results = spawn.Queue()
    processes = [spawn.Process(target=_race, args=(seeded_url, rounds, barrier, results)) for _ in range(2)]

    outcomes = _run(spawn, processes, results, expected=2 * rounds)

    for round_number in range(rounds):
        assert sorted(o for r, o in outcomes if r == round_number) == ["appended", "conflict"]
    engine = make_engine(seeded_url)
    try:
        stream = SqlEventStore(engine).read_stream("race")
    finally:
        engine.dispose()
    assert [recorded.data.get("round") for recorded in stream[1:]] == list(range(rounds))


def test_many_writer_processes_lose_nothing_and_double_nothing(spawn: SpawnContext, seeded_url: str) -> None:
    workers, count = 6, 50
    barrier = spawn.Barrier(workers)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_append_with_retries, args=(seeded_url, worker, count, barrier, results))
        for worker in range(workers)
    ]

    reports = _run(spawn, processes, results, expected=workers)

    assert [errors for _, _, _, errors in reports] == [[]] * workers  # no "database is locked"
    assert sorted(worker for worker, _, _, _ in reports) == list(range(workers))
    assert all(accepted == list(range(count)) for _, accepted, _, _ in reports)
    engine = make_engine(seeded_url)
    try:
        store = SqlEventStore(engine)
        stream = store.read_stream("shared")
        everything = list(store.iter_all(batch_size=64))
        summary = store.stream("shared")
        last_command = store.find_command(f"w{workers - 1}-{count - 1}")
    finally:
        engine.dispose()
    appended = [(recorded.data["worker"], recorded.data["n"]) for recorded in stream[1:]]
    assert sorted(appended) == [(w, n) for w in range(workers) for n in range(count)]
    assert [recorded.version for recorded in stream] == list(range(1, workers * count + 2))
    assert [recorded.position for recorded in everything] == list(range(1, workers * count + 3))
    assert summary is not None
    assert summary.version == workers * count + 1
    assert last_command is not None
    previous = GENESIS_HASH
    for recorded in stream:
        assert recorded.prev_hash == previous
        previous = recorded.hash


def test_processes_migrating_one_new_file_at_once_all_succeed(spawn: SpawnContext, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'govflow.db'}"
    barrier = spawn.Barrier(4)
    results = spawn.Queue()
    processes = [spawn.Process(target=_migrate, args=(url, barrier, results)) for _ in range(4)]

    assert _run(spawn, processes, results, expected=4) == ["migrated"] * 4

    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
