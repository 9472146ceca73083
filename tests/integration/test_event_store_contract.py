"""The event store contract (``workflows.store.base``), run against every adapter."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from governance.chain import GENESIS_HASH
from governance.events import DECISION_RECORDED, INSTANCE_STARTED, TASK_COMPLETED, NewEvent
from tests.log_checks import recomputed_hash
from workflows.database import make_engine, migrate
from workflows.errors import CommandKeyReused, ConcurrencyConflict, StoreError
from workflows.store.base import AppendRequest, CommandRecord, EventStore
from workflows.store.sql import SqlEventStore

START = datetime(2019, 6, 3, 9, 30, tzinfo=UTC)
DEFINITION = "d" * 64


def request(
    stream_id: str,
    expected_version: int,
    *,
    command: CommandRecord | None = None,
    phase: str = "drafting",
    at: datetime = START,
    meta: dict[str, Any] | None = None,
) -> AppendRequest:
    return AppendRequest(
        stream_id=stream_id,
        expected_version=expected_version,
        actor="secretary@example.org",
        definition_hash=DEFINITION,
        recorded_at=at,
        phase=phase,
        definition_id="lis",
        meta=meta,
        command=command,
    )


def event(type: str = TASK_COMPLETED, **data: Any) -> NewEvent:
    return NewEvent(type=type, data=data, occurred_at=START - timedelta(days=1))


def command(key: str, request_hash: str = "r1", stream_id: str = "lis-1") -> CommandRecord:
    return CommandRecord(key=key, stream_id=stream_id, request_hash=request_hash, response={"versions": [1]})


def positions(store: EventStore) -> list[int]:
    return [recorded.position for recorded in store.iter_all()]


def test_appended_events_read_back_with_gapless_versions_and_positions(store: EventStore) -> None:
    first = store.append(request("lis-1", 0), [event(INSTANCE_STARTED, title="LIS"), event(step=1)])
    other = store.append(request("lis-2", 0), [event(INSTANCE_STARTED, title="Budget")])
    later = START + timedelta(hours=2)
    second = store.append(request("lis-1", 2, phase="consultation", at=later), [event(step=2), event(step=3)])

    stream = store.read_stream("lis-1")
    assert stream == first + second
    assert [recorded.version for recorded in stream] == [1, 2, 3, 4]
    assert [recorded.position for recorded in stream] == [1, 2, 4, 5]
    assert store.read_stream("lis-2") == other
    assert positions(store) == [1, 2, 3, 4, 5]
    assert stream[0].data == {"title": "LIS"}
    assert stream[0].actor == "secretary@example.org"
    assert stream[0].definition_hash == DEFINITION
    assert stream[0].recorded_at == START
    assert stream[3].recorded_at == later
    assert stream[0].occurred_at == START - timedelta(days=1)

    summary = store.stream("lis-1")
    assert summary is not None
    assert (summary.version, summary.phase, summary.definition_id) == (4, "consultation", "lis")
    assert (summary.created_at, summary.updated_at) == (START, later)
    assert [s.stream_id for s in store.streams()] == ["lis-1", "lis-2"]


def test_timestamps_come_back_in_utc_at_the_same_instant(store: EventStore) -> None:
    london = datetime(2019, 10, 4, 14, 0, 0, 123456, tzinfo=ZoneInfo("Europe/London"))  # BST
    store.append(request("lis-1", 0, at=london), [NewEvent(DECISION_RECORDED, {}, occurred_at=london)])

    (recorded,) = store.read_stream("lis-1")
    assert recorded.occurred_at == london
    assert recorded.recorded_at == london
    assert recorded.occurred_at.utcoffset() == timedelta(0)
    assert recorded.occurred_at.hour == 13


def test_meta_is_recorded_on_every_event_of_the_append(store: EventStore) -> None:
    store.append(request("lis-1", 0, meta={"clock": "fake", "key": "k1"}), [event(), event()])

    assert [recorded.meta for recorded in store.read_stream("lis-1")] == [{"clock": "fake", "key": "k1"}] * 2


def test_an_unknown_stream_has_no_events_and_no_summary(store: EventStore) -> None:
    assert store.read_stream("nope") == []
    assert store.stream("nope") is None
    assert store.streams() == []
    assert list(store.iter_all()) == []


def test_creating_a_stream_that_exists_is_a_conflict(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])

    with pytest.raises(ConcurrencyConflict) as raised:
        store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])

    assert raised.value.stream_id == "lis-1"
    assert raised.value.expected_version == 0
    assert len(store.read_stream("lis-1")) == 1


def test_appending_at_a_stale_version_is_a_conflict_and_writes_nothing(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    store.append(request("lis-1", 1), [event(step=1)])

    with pytest.raises(ConcurrencyConflict):
        store.append(request("lis-1", 1, phase="stale"), [event(step="stale")])

    assert [recorded.version for recorded in store.read_stream("lis-1")] == [1, 2]
    summary = store.stream("lis-1")
    assert summary is not None
    assert (summary.version, summary.phase) == (2, "drafting")
    assert store.append(request("lis-1", 2), [event()])[0].position == 3


def test_appending_to_a_missing_stream_after_version_zero_is_a_conflict(store: EventStore) -> None:
    with pytest.raises(ConcurrencyConflict):
        store.append(request("lis-1", 3), [event()])

    assert store.stream("lis-1") is None
    assert positions(store) == []


def test_an_append_that_fails_writes_nothing(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    not_json = NewEvent(TASK_COMPLETED, {"file": object()}, occurred_at=START)

    with pytest.raises(TypeError):
        store.append(request("lis-1", 1, command=command("k1")), [event(step=1), not_json])

    assert len(store.read_stream("lis-1")) == 1
    assert store.find_command("k1") is None
    assert store.append(request("lis-1", 1), [event(step=1)])[0].position == 2


def test_an_empty_append_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="at least one event"):
        store.append(request("lis-1", 0), [])


def test_a_repeated_command_key_with_the_same_request_writes_nothing_twice(store: EventStore) -> None:
    first = store.append(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED)])

    again = store.append(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED)])

    assert again == []
    assert store.read_stream("lis-1") == first
    assert store.find_command("k1") == command("k1")


def test_a_command_key_reused_for_another_request_is_refused(store: EventStore) -> None:
    store.append(request("lis-1", 0, command=command("k1", "r1")), [event(INSTANCE_STARTED)])

    with pytest.raises(CommandKeyReused) as raised:
        store.append(request("lis-1", 1, command=command("k1", "r2")), [event(step=1)])

    assert raised.value.key == "k1"
    assert len(store.read_stream("lis-1")) == 1
    stored = store.find_command("k1")
    assert stored is not None
    assert stored.request_hash == "r1"


def test_an_unknown_command_key_is_not_found(store: EventStore) -> None:
    assert store.find_command("never-sent") is None


def test_each_event_is_chained_to_the_previous_event_of_its_stream(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED), event(step=1)])
    store.append(request("lis-2", 0), [event(INSTANCE_STARTED)])
    store.append(request("lis-1", 2, meta={"key": "k"}), [event(step=2, text="café £5")])
    store.append(request("lis-2", 1), [event(step=1, nested={"b": [1, 2.5, None], "a": True})])

    for stream_id in ("lis-1", "lis-2"):
        previous = GENESIS_HASH
        for recorded in store.read_stream(stream_id):
            assert recorded.prev_hash == previous
            assert recorded.hash == recomputed_hash(recorded)
            previous = recorded.hash
    assert len({recorded.hash for recorded in store.iter_all()}) == 5


def test_an_append_of_more_events_than_one_insert_holds_is_recorded_whole_and_chained(store: EventStore) -> None:
    # The SQL store writes a hundred events per INSERT: 250 take three statements, the last part-full.
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    store.append(request("lis-2", 0), [event(INSTANCE_STARTED)])
    recorded = store.append(request("lis-1", 1), [event(step=step) for step in range(250)])

    stream = store.read_stream("lis-1")
    assert stream[1:] == recorded
    assert [e.version for e in stream] == list(range(1, 252))
    assert [e.position for e in stream] == [1, *range(3, 253)]
    assert [e.data["step"] for e in stream[1:]] == list(range(250))
    assert [e.prev_hash for e in stream] == [GENESIS_HASH, *(e.hash for e in stream[:-1])]
    assert all(recomputed_hash(e) == e.hash for e in stream)
    assert positions(store) == list(range(1, 253))


def test_iter_all_yields_every_event_in_position_order_in_batches(store: EventStore) -> None:
    versions = {"a": 0, "b": 0, "c": 0}
    for number in range(25):
        stream_id = "abc"[number % 3]
        store.append(request(stream_id, versions[stream_id]), [event(n=number)])
        versions[stream_id] += 1

    for batch_size in (1, 4, 5, 25, 1000):
        everything = list(store.iter_all(batch_size=batch_size))
        assert [recorded.position for recorded in everything] == list(range(1, 26))
        assert [recorded.data["n"] for recorded in everything] == list(range(25))
    assert [r.position for r in store.iter_all(after_position=10, batch_size=4)] == list(range(11, 26))
    assert list(store.iter_all(after_position=25)) == []


def test_iter_all_is_lazy(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(n=n) for n in range(3)])
    events = store.iter_all(batch_size=2)

    assert next(events).position == 1
    store.append(request("lis-1", 3), [event(n=3)])
    assert [recorded.position for recorded in events] == [2, 3, 4]


def test_concurrent_writers_on_one_stream_lose_nothing_and_double_nothing(store: EventStore) -> None:
    store.append(request("shared", 0), [event(INSTANCE_STARTED)])
    writers, count = 4, 15

    def write(writer: int) -> None:
        for number in range(count):
            while True:
                summary = store.stream("shared")
                assert summary is not None
                key = f"w{writer}-{number}"
                try:
                    store.append(request("shared", summary.version, command=command(key)), [event(w=writer)])
                except ConcurrencyConflict:
                    continue
                break

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))

    stream = store.read_stream("shared")
    assert [recorded.version for recorded in stream] == list(range(1, writers * count + 2))
    assert [recorded.position for recorded in store.iter_all()] == list(range(1, writers * count + 2))
    assert sorted(recorded.data["w"] for recorded in stream[1:]) == sorted(list(range(writers)) * count)


def test_definitions_are_stored_once_by_content_hash(store: EventStore) -> None:
    assert store.load_definition("h1") is None

    store.save_definition("h1", "lis", "1", "[workflow]\nid = 'lis'\n")
    store.save_definition("h1", "lis", "1", "[workflow]\nid = 'lis'\n")
    store.save_definition("h1", "lis", "1", "something else")
    store.save_definition("h2", "lis", "2", "version two")

    assert store.load_definition("h1") == "[workflow]\nid = 'lis'\n"
    assert store.load_definition("h2") == "version two"


_POISON_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.type = 'Poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'poisoned event'; END $$",
        "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.type = 'Poison') "
        "EXECUTE FUNCTION poison()",
    ],
}


def test_an_append_the_database_rejects_midway_writes_nothing(sql_store: SqlEventStore) -> None:
    sql_store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    with sql_store.engine.begin() as connection:
        for statement in _POISON_TRIGGER[sql_store.engine.dialect.name]:
            connection.exec_driver_sql(statement)

    # The stream has moved, positions are allocated and the first event is in when the second fails.
    with pytest.raises(StoreError, match=r"cannot append to 'lis-1'.*poisoned event"):
        sql_store.append(request("lis-1", 1, command=command("k1")), [event(step=1), event("Poison")])

    summary = sql_store.stream("lis-1")
    assert summary is not None
    assert summary.version == 1
    assert [e.version for e in sql_store.read_stream("lis-1")] == [1]
    assert sql_store.find_command("k1") is None
    # The position allocated inside the failed transaction was rolled back too: no gap.
    assert sql_store.append(request("lis-1", 1), [event(step=1)])[0].position == 2


def test_an_event_without_a_type_is_refused_before_the_database(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    untyped = NewEvent(cast(str, None), {}, occurred_at=START)

    with pytest.raises(TypeError, match="event type"):
        store.append(request("lis-1", 1), [event(step=1), untyped])

    assert [e.version for e in store.read_stream("lis-1")] == [1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET actor = 'mallory'",
        "UPDATE events SET data = '{}' WHERE version = 1",
        "DELETE FROM events",
        "DELETE FROM events WHERE version = 2",
        "UPDATE definitions SET content = 'forged'",
        "DELETE FROM definitions",
        "DELETE FROM command_keys",
    ],
)
def test_the_database_refuses_to_change_the_log(sql_store: SqlEventStore, statement: str) -> None:
    sql_store.append(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED), event(step=1)])
    sql_store.save_definition("h1", "lis", "1", "original")
    before = sql_store.read_stream("lis-1")

    with pytest.raises(DBAPIError, match="append-only"), sql_store.engine.begin() as connection:
        connection.execute(text(statement))

    assert sql_store.read_stream("lis-1") == before
    assert sql_store.load_definition("h1") == "original"
    assert sql_store.find_command("k1") is not None


@pytest.mark.postgres
def test_postgresql_refuses_to_truncate_the_log(postgres_url: str) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    try:
        store = SqlEventStore(engine)
        store.append(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED)])
        store.save_definition("h1", "lis", "1", "original")

        for table in ("events", "definitions", "command_keys"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {table}"))

        assert len(store.read_stream("lis-1")) == 1
        assert store.load_definition("h1") == "original"
        assert store.find_command("k1") is not None
    finally:
        engine.dispose()


def test_the_sqlite_reader_reads_what_the_sql_store_wrote(sqlite_url: str) -> None:
    """The query commands' standard-library reader answers as the SQL store does."""
    from datetime import UTC, datetime

    from governance.events import NewEvent
    from workflows.database import make_engine, migrate
    from workflows.store.base import AppendRequest, CommandRecord
    from workflows.store.sql import SqlEventStore
    from workflows.store.sqlite_reader import SqliteReader, sqlite_path

    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    store = SqlEventStore(engine)
    moment = datetime(2019, 10, 4, 9, tzinfo=UTC)
    for stream in ("a", "b"):
        store.append(
            AppendRequest(
                stream_id=stream,
                expected_version=0,
                actor="x",
                definition_hash="d" * 64,
                recorded_at=moment,
                phase="scoping",
                definition_id="def",
                command=CommandRecord(f"key-{stream}", stream, "h" * 64, {"ok": stream}),
            ),
            [NewEvent("TaskCompleted", {"task": f"t{i}", "ü": "ß"}, moment) for i in range(3)],
        )
    store.save_definition("d" * 64, "def", "1", "[workflow]\n")
    path = sqlite_path(sqlite_url)
    assert path is not None
    reader = SqliteReader(path)
    assert reader.read_stream("a") == store.read_stream("a")
    assert reader.read_stream("b", after_version=1) == store.read_stream("b", after_version=1)
    assert list(reader.iter_all(batch_size=2)) == list(store.iter_all(batch_size=2))
    assert list(reader.iter_payloads(["b", "a"])) == list(store.iter_payloads(["a", "b"]))
    assert reader.streams() == store.streams() and reader.stream("a") == store.stream("a")
    assert reader.find_command("key-b") == store.find_command("key-b")
    assert reader.load_definition("d" * 64) == store.load_definition("d" * 64) == "[workflow]\n"
    assert reader.read_stream("nowhere") == [] and reader.stream("nowhere") is None
    reader.close()
    engine.dispose()


# -- the append's connection ------------------------------------------------------------------


def test_appends_from_more_threads_than_the_pool_holds_all_complete_and_keep_one_connection(
    database_url: str,
) -> None:
    migrate(database_url)
    engine = make_engine(database_url, pool_size=2)
    try:
        sql_store = SqlEventStore(engine)
        # Threads that come and go (a worker's ticks), then threads appending at once.
        for wave in range(12):
            with ThreadPoolExecutor(1) as pool:
                pool.submit(sql_store.append, request(f"seq-{wave}", 0), [event(INSTANCE_STARTED)]).result()
        with ThreadPoolExecutor(16) as pool:
            futures = [
                pool.submit(sql_store.append, request(f"par-{n}", 0), [event(INSTANCE_STARTED)]) for n in range(64)
            ]
            assert all(len(future.result(timeout=60)) == 1 for future in futures)

        assert sorted(positions(sql_store)) == list(range(1, 12 + 64 + 1))
        # The one connection kept for appends is all that stays checked out of the pool.
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_an_append_on_a_connection_the_server_dropped_is_made_on_a_fresh_one(postgres_url: str) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    try:
        sql_store = SqlEventStore(engine)
        sql_store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
        with engine.connect() as admin:
            killed = admin.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'govflow'"
            ).scalar_one()
        assert killed >= 1

        recorded = sql_store.append(request("lis-1", 1), [event(step=1)])

        assert [e.version for e in recorded] == [2]
        assert [e.version for e in sql_store.read_stream("lis-1")] == [1, 2]
    finally:
        engine.dispose()


# -- several streams in one transaction -------------------------------------------------------


def test_a_batch_appends_to_several_streams_in_order_with_gapless_positions_and_chains(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])

    recorded = store.append_many(
        [
            (request("lis-2", 0), [event(INSTANCE_STARTED), event(step=1)]),
            (request("lis-1", 1, command=command("k1")), [event(step=1)]),
            (request("lis-3", 0), [event(INSTANCE_STARTED)]),
        ]
    )

    assert [[(e.stream_id, e.version, e.position) for e in done] for done in recorded] == [
        [("lis-2", 1, 2), ("lis-2", 2, 3)],
        [("lis-1", 2, 4)],
        [("lis-3", 1, 5)],
    ]
    assert positions(store) == [1, 2, 3, 4, 5]
    for stream in ("lis-1", "lis-2", "lis-3"):
        events = store.read_stream(stream)
        assert [e.prev_hash for e in events] == [GENESIS_HASH, *(e.hash for e in events[:-1])]
        assert all(recomputed_hash(e) == e.hash for e in events)
        summary = store.stream(stream)
        assert summary is not None and summary.version == events[-1].version
    assert store.find_command("k1") is not None


def test_a_batch_with_one_stale_version_writes_nothing(store: EventStore) -> None:
    store.append(request("lis-1", 0), [event(INSTANCE_STARTED)])
    store.append(request("lis-2", 0), [event(INSTANCE_STARTED)])

    with pytest.raises(ConcurrencyConflict) as conflict:
        store.append_many(
            [
                (request("lis-3", 0, command=command("k3", stream_id="lis-3")), [event(INSTANCE_STARTED)]),
                (request("lis-1", 1), [event(step=1)]),
                (request("lis-2", 0), [event(INSTANCE_STARTED)]),  # lis-2 is at version 1
            ]
        )
    assert conflict.value.stream_id == "lis-2"  # the stream that moved, so that a caller can catch up on it

    assert positions(store) == [1, 2]
    assert store.stream("lis-3") is None
    assert store.find_command("k3") is None
    summary = store.stream("lis-1")
    assert summary is not None and summary.version == 1


def test_a_batch_skips_an_append_whose_command_key_was_recorded(store: EventStore) -> None:
    store.append(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED)])

    recorded = store.append_many(
        [(request("lis-1", 0, command=command("k1")), [event(INSTANCE_STARTED)]), (request("lis-2", 0), [event()])]
    )

    assert [len(done) for done in recorded] == [0, 1]
    assert positions(store) == [1, 2]


def test_a_batch_naming_a_stream_twice_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="'lis-1' comes twice"):
        store.append_many([(request("lis-1", 0), [event(INSTANCE_STARTED)]), (request("lis-1", 1), [event()])])
    assert positions(store) == []


def test_an_empty_batch_writes_nothing(store: EventStore) -> None:
    assert store.append_many([]) == []
    assert positions(store) == []
