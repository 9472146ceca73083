"""PostgreSQL appends in one statement: sealed on what the store last wrote, checked by the server.

When a store wrote a stream's head itself, its next append to that stream is sent as one
statement in a transaction of its own (one round trip instead of four). Every way the
guess can be wrong must end as the transaction would have ended: the right chain and
gapless positions, or the conflict the transaction reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from governance.events import INSTANCE_STARTED, TASK_COMPLETED, NewEvent
from tests.log_checks import check_store
from workflows.database import make_engine, migrate
from workflows.errors import ConcurrencyConflict, StoreError
from workflows.store.base import AppendRequest, CommandRecord
from workflows.store.sql import SqlEventStore

pytestmark = pytest.mark.postgres

NOW = datetime(2019, 6, 3, 9, 30, tzinfo=UTC)


def request_after(stream: str, after: int, key: str | None = None) -> AppendRequest:
    command = None if key is None else CommandRecord(key, stream, "r", {"ok": True})
    return AppendRequest(stream, after, "secretary", "d" * 64, NOW, "drafting", "lis", command=command)


def append(store: SqlEventStore, stream: str, after: int, count: int = 1, key: str | None = None) -> list[int]:
    request = request_after(stream, after, key)
    kind = INSTANCE_STARTED if after == 0 else TASK_COMPLETED
    events = [NewEvent(kind, {"n": after + n}, NOW) for n in range(count)]
    return [recorded.position for recorded in store.append(request, events)]


class Spy:
    """Counts the transactions and the single statements a store's writer runs."""

    def __init__(self, store: SqlEventStore) -> None:
        self.transactions = 0
        self.alone = 0
        writer = store._writer
        run, run_alone = writer.run, writer.run_alone

        def counted_run(work: Callable[[Any], Any]) -> Any:
            self.transactions += 1
            return run(work)

        def counted_run_alone(sql: str, parameters: Any) -> bool:
            self.alone += 1
            return run_alone(sql, parameters)

        writer.run = counted_run  # type: ignore[method-assign]
        writer.run_alone = counted_run_alone  # type: ignore[method-assign]


@pytest.fixture
def engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    migrate(postgres_url)
    ours, theirs = make_engine(postgres_url), make_engine(postgres_url)
    try:
        yield ours, theirs
    finally:
        ours.dispose()
        theirs.dispose()


def test_the_next_append_to_a_stream_this_store_wrote_is_one_statement(engines: tuple[Engine, Engine]) -> None:
    engine, _ = engines
    store = SqlEventStore(engine)
    spy = Spy(store)

    assert append(store, "lis-1", 0) == [1]
    assert append(store, "lis-1", 1, count=2) == [2, 3]
    assert append(store, "lis-1", 3) == [4]

    assert (spy.transactions, spy.alone) == (1, 2)
    streams, _ = check_store(engine)  # hash chain, gapless versions and positions, log_head
    assert [event.version for event in streams["lis-1"]] == [1, 2, 3, 4]
    assert store.stream("lis-1").version == 4  # type: ignore[union-attr]


def test_when_another_writer_moved_the_log_the_append_takes_the_transaction(engines: tuple[Engine, Engine]) -> None:
    engine, other_engine = engines
    store, other = SqlEventStore(engine), SqlEventStore(other_engine)
    append(store, "lis-1", 0)
    append(other, "lis-2", 0)  # the log now ends at 2, not at 1 as our store last saw it
    spy = Spy(store)

    assert append(store, "lis-1", 1) == [3]  # tried alone, then the transaction
    assert append(store, "lis-1", 2) == [4]  # after a wrong guess, one append does not try
    assert append(store, "lis-1", 3) == [5]  # and the guess is good again

    assert (spy.alone, spy.transactions) == (2, 2)
    streams, _ = check_store(engine)
    assert [event.position for event in streams["lis-1"]] == [1, 3, 4, 5]


def test_guesses_that_keep_failing_are_tried_ever_less_often(engines: tuple[Engine, Engine]) -> None:
    engine, other_engine = engines
    store, other = SqlEventStore(engine), SqlEventStore(other_engine)
    append(store, "lis-1", 0)
    append(other, "other", 0)
    spy = Spy(store)

    for version in range(1, 41):  # the other writer moves the log before each of ours
        append(other, "other", version)
        append(store, "lis-1", version)

    # Tried at the 1st, 3rd, 7th, 15th and 31st: after the n-th wrong guess in a row, 2**n - 1 do not try.
    assert (spy.alone, spy.transactions) == (5, 40)
    streams, _ = check_store(engine)
    assert len(streams["lis-1"]) == 41


def test_when_another_writer_moved_the_stream_the_conflict_is_reported(engines: tuple[Engine, Engine]) -> None:
    engine, other_engine = engines
    store, other = SqlEventStore(engine), SqlEventStore(other_engine)
    append(store, "lis-1", 0)
    append(other, "lis-1", 1)

    with pytest.raises(ConcurrencyConflict):
        append(store, "lis-1", 1)

    streams, _ = check_store(engine)
    assert len(streams["lis-1"]) == 2


def test_a_stream_whose_head_hash_changed_underneath_is_chained_to_what_the_log_holds(
    engines: tuple[Engine, Engine],
) -> None:
    engine, _ = engines
    store = SqlEventStore(engine)
    append(store, "lis-1", 0)
    with engine.begin() as connection:  # the store's memory of the head no longer matches the log
        connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        connection.execute(text("UPDATE events SET hash = repeat('e', 64) WHERE stream_id = 'lis-1'"))
        connection.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))

    append(store, "lis-1", 1)

    second = store.read_stream("lis-1")[1]
    assert second.prev_hash == "e" * 64


def test_keyed_commands_and_batches_keep_to_the_transaction(engines: tuple[Engine, Engine]) -> None:
    engine, _ = engines
    store = SqlEventStore(engine)
    append(store, "lis-1", 0)
    append(store, "lis-2", 0)
    spy = Spy(store)

    append(store, "lis-1", 1, key="k-1")
    store.append_many(
        [
            (request_after(stream, after), [NewEvent(TASK_COMPLETED, {"n": after}, NOW)])
            for stream, after in (("lis-1", 2), ("lis-2", 1))
        ]
    )

    assert (spy.alone, spy.transactions) == (0, 2)
    streams, _ = check_store(engine)
    assert (len(streams["lis-1"]), len(streams["lis-2"])) == (3, 2)


def test_a_keyed_append_on_a_connection_that_died_while_idle_is_run_again_on_a_fresh_one(
    engines: tuple[Engine, Engine],
) -> None:
    # The one-statement path on a dead connection is the event store contract's test; a keyed
    # command takes the transaction, which finds the connection dead and runs once more.
    engine, other_engine = engines
    store = SqlEventStore(engine)
    append(store, "lis-1", 0)
    pid = store._writer._kept.driver.info.backend_pid  # the connection the store keeps for appends
    with other_engine.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    spy = Spy(store)

    assert append(store, "lis-1", 1, key="k-1") == [2]

    assert (spy.alone, spy.transactions) == (0, 2)
    streams, _ = check_store(engine)
    assert len(streams["lis-1"]) == 2


def test_a_connection_lost_after_the_server_committed_counts_the_append_once(engines: tuple[Engine, Engine]) -> None:
    engine, _ = engines
    store = SqlEventStore(engine)
    append(store, "lis-1", 0)
    run_alone = store._writer.run_alone

    def committed_then_lost(sql: str, parameters: Any) -> bool:
        # The reply never arrives: which cannot be staged on loopback at the right instant.
        run_alone(sql, parameters)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    store._writer.run_alone = committed_then_lost  # type: ignore[method-assign]

    assert append(store, "lis-1", 1) == [2]

    streams, _ = check_store(engine)
    assert len(streams["lis-1"]) == 2


def test_writers_racing_lose_nothing_and_break_no_chain(postgres_url: str) -> None:
    """Each writer appends to a stream of its own (its guess of the stream's head holds, its
    guess of the log's end often not) and now and then to one they share."""
    migrate(postgres_url)
    engines = [make_engine(postgres_url) for _ in range(4)]
    try:
        seed = SqlEventStore(engines[0])
        for stream in ("shared", *(f"own-{number}" for number in range(len(engines)))):
            append(seed, stream, 0)

        def write(number: int) -> int:
            store = SqlEventStore(engines[number])  # each writer remembers the heads it wrote
            accepted = 0
            for turn in range(80):
                stream = "shared" if turn % 5 == 4 else f"own-{number}"
                while True:
                    summary = store.stream(stream)
                    assert summary is not None
                    try:
                        append(store, stream, summary.version, count=1 + turn % 2)
                    except ConcurrencyConflict:
                        continue
                    accepted += 1 + turn % 2
                    break
            return accepted

        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            accepted = sum(pool.map(write, range(len(engines))))

        found, _ = check_store(engines[0])  # chains, gapless versions and positions, log_head at the end
        assert sum(len(events) for events in found.values()) == 1 + len(engines) + accepted
    finally:
        for engine in engines:
            engine.dispose()


def test_a_lost_connection_with_the_server_out_of_reach_says_the_outcome_is_unknown(
    engines: tuple[Engine, Engine],
) -> None:
    engine, _ = engines
    store = SqlEventStore(engine)
    append(store, "lis-1", 0)

    def lost(sql: str, parameters: Any) -> bool:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    def unreachable(first: dict[str, Any]) -> bool:
        raise StoreError("cannot check the append to 'lis-1': connection refused; is the server running and reachable?")

    store._writer.run_alone = lost  # type: ignore[method-assign]
    store._landed = unreachable  # type: ignore[method-assign]

    with pytest.raises(
        StoreError, match=r"whether the append was recorded cannot be checked now: .*connection refused"
    ):
        append(store, "lis-1", 1)
