"""PostgreSQL faults: the server restarted mid-command, a refused password, no server at all.

Each command ends one of two ways: it succeeds, or it fails with one line (exit 5)
that names the database without its password and leaves nothing half-recorded. A
command sent again under the same key is then recorded exactly once, whether or not
the first attempt's commit had reached the server.

The tests stop and restart a cluster of their own (``tests.throwaway_cluster``),
never the suite's shared server.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text

from governance.errors import GovernanceError
from governance.quorum import DecisionInput
from governance.state import Instance
from tests.e2e.conftest import DECIDE_APPROACH, Cli, assert_one_clear_line
from tests.log_checks import check_store
from tests.throwaway_cluster import Cluster, discard_cluster, start_cluster
from tests.walker import Step, choose
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.errors import StoreError, WorkflowError
from workflows.services import Services
from workflows.store.sql import SqlEventStore

PASSWORD = "s3cret-Pw-8841"
NOW = datetime(2019, 7, 26, 15, tzinfo=UTC)
# After every decision date of the LIS, for the walker's steps.
LATER = datetime(2020, 3, 31, 12, tzinfo=UTC)
APPROACH = DecisionInput(
    gate="approach-agreed",
    body="secretariat",
    outcome="approved",
    day=date(2019, 7, 26),
    mode="delegated",
    authority="SB/2019/06/3",
)
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster these tests may stop and restart."""
    started = start_cluster()
    try:
        yield started
    finally:
        discard_cluster(started)


@pytest.fixture
def engines() -> Iterator[Callable[..., Engine]]:
    """``make_engine``, with every engine disposed of when the test ends, however it ends."""
    made: list[Engine] = []

    def make(url: str, **settings: Any) -> Engine:
        made.append(make_engine(url, **settings))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def _services(engine: Engine, now: datetime = NOW) -> Services:
    return Services(SqlEventStore(engine), FixedClock(now), source="fault-test")


# -- PostgreSQL: the server goes away ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_a_restart_in_the_middle_of_a_decision_records_it_whole_or_not_at_all(
    cluster: Cluster,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    engines: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = cluster.new_database(password=PASSWORD)
    cli = Cli(workdir, url, capsys)
    assert cli("init").code == 0
    assert cli("start", "selep-lis-2019", "--instance", "selep-lis", "--key", "start", now="2019-06-03T09:00").code == 0
    engine = engines(url, connect_timeout_seconds=5)
    services = _services(engine)
    inside, carry_on = threading.Event(), threading.Event()
    commit = psycopg.Connection.commit

    def _pause_before_the_commit(connection: psycopg.Connection[Any]) -> None:
        # The append runs on the driver's connection, and only it commits (reads roll back).
        # Everything is written by now: the stream has moved, positions are allocated,
        # events and command key inserted.
        if not inside.is_set():
            inside.set()
            carry_on.wait(TIMEOUT)
        commit(connection)

    monkeypatch.setattr(psycopg.Connection, "commit", _pause_before_the_commit)

    failure: list[BaseException] = []

    def decide() -> None:
        try:
            services.decide("selep-lis", APPROACH, actor="chief executive", key="approach")
        except BaseException as error:  # handed to the test, which checks it
            failure.append(error)

    thread = threading.Thread(target=decide)
    thread.start()
    try:
        _wait_for(inside.is_set, "the decision to reach its commit", thread)
        cluster.stop()
        # Another secretary's command while the server is down: a real process, exit 5.
        process = cli.spawn(*DECIDE_APPROACH, "--key", "other", now="2019-07-26T15:00")
        _, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 5, err
        assert_one_clear_line(err, PASSWORD)
        assert "is the server running" in err
    finally:
        carry_on.set()
        thread.join(TIMEOUT)
        cluster.start()  # a no-op if it was never stopped

    assert len(failure) == 1 and isinstance(failure[0], StoreError), failure
    assert failure[0].exit_code == 5
    assert_one_clear_line(str(failure[0]), PASSWORD)
    assert "connection was lost" in str(failure[0]) and "retry with the same --key" in str(failure[0])
    # The same engine, whose connections all died: the lost one was dropped, pool_pre_ping replaces the rest.
    again = services.decide("selep-lis", APPROACH, actor="chief executive", key="approach")
    assert not again.replayed, "the cut-off attempt must not have been recorded"
    assert services.decide("selep-lis", APPROACH, actor="chief executive", key="approach").replayed
    streams, commands = check_store(engine)
    decisions = [e for e in streams["selep-lis"] if e.type == "DecisionRecorded"]
    assert len(decisions) == 1 and decisions[0].meta["command_key"] == "approach"
    assert set(commands) == {"start", "approach"}


@pytest.mark.postgres
@pytest.mark.slow
def test_commands_running_through_a_restart_succeed_or_fail_with_one_line_and_keyed_retries_record_once(
    cluster: Cluster, tmp_path: Path, engines: Callable[..., Engine]
) -> None:
    url = cluster.new_database(password=PASSWORD)
    migrate(url)
    engine = engines(url, connect_timeout_seconds=5)
    services = _services(engine, LATER)
    instances = [f"lis-{n}" for n in range(10)]
    states: dict[str, Instance] = {}
    for instance_id in instances:
        key = f"start-{instance_id}"
        outcome = services.start("selep-lis-2019", instance_id, actor="officer", key=key, day=date(2019, 6, 3))
        assert outcome.state is not None
        states[instance_id] = outcome.state
    accepted: list[str] = []
    failures: list[str] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def run_until_recorded(step: Step, instance_id: str, key: str) -> None:
        """What a careful client does: on a database error, send the same command under the same key."""
        while True:
            try:
                outcome = step.run(services, instance_id, actor="secretary", key=key, folder=tmp_path)
            except StoreError as error:
                failures.append(str(error))
                time.sleep(0.05)
                continue
            accepted.append(key)
            states[instance_id] = outcome.state or services.load(instance_id)
            return

    def loop() -> None:
        rng = random.Random(6)
        count = 0
        try:
            while not stop.is_set():
                instance_id = rng.choice(instances)
                # The state this client last saw: it is the only writer, so it is current.
                step = choose(states[instance_id], rng)
                if step is not None:
                    count += 1
                    run_until_recorded(step, instance_id, f"loop-{count}")
        except (WorkflowError, GovernanceError) as error:
            unexpected.append(f"{type(error).__name__}: {error}")

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        _wait_for(lambda: len(accepted) >= 20, "20 commands before the restart", thread)
        cluster.restart()
        after = len(accepted)
        _wait_for(lambda: len(accepted) >= after + 20, "20 commands after the restart", thread)
    finally:
        stop.set()
        thread.join(TIMEOUT)

    assert unexpected == []
    assert failures, "the restart should have failed at least one attempt"
    for message in failures:
        assert_one_clear_line(message, PASSWORD)
        assert message.startswith("cannot ") and "***@127.0.0.1" in message
    _, commands = check_store(engine)
    for instance_id, live in states.items():
        replayed = services.load(instance_id)
        assert (live.version, live.phase) == (replayed.version, replayed.phase), instance_id
    assert set(commands) == {f"start-{i}" for i in instances} | set(accepted)
    assert len(accepted) == len(set(accepted))


def _wait_for(condition: Callable[[], bool], what: str, worker: threading.Thread) -> None:
    deadline = time.perf_counter() + TIMEOUT
    while not condition():
        if not worker.is_alive():
            pytest.fail(f"the command loop ended before {what}")
        if time.perf_counter() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- PostgreSQL: who may connect ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_a_refused_password_ends_with_one_line_that_does_not_show_it(
    cluster: Cluster, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.add_login("secretary", "right-Pw-1207")
    url = cluster.new_database(user="secretary", password=PASSWORD)

    result = Cli(workdir, url, capsys)("init")

    assert result.code == 5
    assert_one_clear_line(result.err, PASSWORD)
    assert "password authentication failed" in result.err and "secretary:***@" in result.err
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", url)
    from workflows.cli import main

    assert main(["list"]) == 5
    assert_one_clear_line(capsys.readouterr().err, PASSWORD)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_password_in_the_url_appears_in_no_output_log_or_event(
    cluster: Cluster, workdir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for logger in ("", "sqlalchemy", "psycopg", "alembic"):
        # SQLAlchemy sets its own loggers to WARNING unless told otherwise.
        caplog.set_level(logging.DEBUG, logger=logger)
    url = cluster.new_database(password=PASSWORD)
    cli = Cli(workdir, url, capsys)

    results = [
        cli("init"),
        cli("start", "selep-lis-2019", "--instance", "selep-lis", "--key", "start", now="2019-06-03T09:00"),
        cli(*DECIDE_APPROACH, "--key", "approach", "--json", now="2019-07-26T15:00"),
        cli("history", "selep-lis", "--json"),
        cli("status", "selep-lis"),
    ]

    assert [r.code for r in results] == [0] * len(results), [r.err for r in results]
    assert all(PASSWORD not in r.out + r.err for r in results)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL should have been logged"
    assert PASSWORD not in caplog.text
    stored = create_engine(url)
    try:
        with stored.connect() as connection:
            for table in ("events", "streams", "command_keys", "definitions"):
                rows = connection.execute(text(f"SELECT * FROM {table}")).all()
                assert rows and PASSWORD not in repr(rows), table
    finally:
        stored.dispose()


def test_an_unreachable_server_ends_with_one_line_that_does_not_show_the_password(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before govflow tries it
    cli = Cli(workdir, f"postgresql+psycopg://secretary:{PASSWORD}@127.0.0.1:{port}/govflow", capsys)

    for result in (cli("init"), cli("list"), cli(*DECIDE_APPROACH, now="2019-07-26T15:00")):
        assert result.code == 5
        assert_one_clear_line(result.err, PASSWORD)
        assert f"secretary:***@127.0.0.1:{port}/govflow" in result.err and "is the server running" in result.err
