"""Decisions recorded per second, one durable commit each (SQLite, WAL, synchronous=FULL).

- govflow: ``Services.decide`` (the service call, no CLI), one decision per instance;
- eventsourcing: an aggregate recording the same two events a govflow decision records
  here (the decision, and the gate it concludes passing), ``app.save`` per decision;
- SpiffWorkflow: complete a user task, serialise the workflow, save it, per decision;
- raw limit: ``sqlite3`` insert of the same bytes as govflow's decision event, one commit each.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from bench.common import interleaved, rate, scratch

DECISION = {
    "gate": "approach-agreed",
    "body": "secretariat",
    "outcome": "approved",
    "mode": "delegated",
    "date": "2019-07-26",
    "authority": "SB/2019/06/3",
}


@contextmanager
def govflow_decider(count: int, url: str | None = None) -> Iterator[Callable[[int], None]]:
    """``decide(index)``: ``Services.decide`` on instance ``index`` of ``count`` started ones.

    The instances are started and loaded beforehand, in a fresh SQLite file or in the
    empty database at ``url``.
    """
    from governance.quorum import DecisionInput
    from workflows.clock import FixedClock
    from workflows.database import make_engine, migrate
    from workflows.services import Services
    from workflows.store.sql import SqlEventStore

    with scratch("decisions") as folder:
        url = url or f"sqlite:///{folder / 'govflow.db'}"
        migrate(url)
        engine = make_engine(url)
        try:
            clock = FixedClock(datetime(2019, 6, 3, 9, tzinfo=UTC))
            services = Services(store=SqlEventStore(engine, clock=clock.now), clock=clock, cache_size=count + 1)
            for index in range(count):
                services.start("selep-lis-2019", f"lis-{index}", actor="bench")
                services.load(f"lis-{index}")
            clock.set(datetime(2019, 7, 26, 15, tzinfo=UTC))
            # The decision every contender records.
            fields = {name: value for name, value in DECISION.items() if name != "date"}
            decision = DecisionInput(**fields, day=date.fromisoformat(DECISION["date"]))

            def decide(index: int) -> None:
                services.decide(f"lis-{index}", decision, actor="secretary")

            yield decide
        finally:
            engine.dispose()


@contextmanager
def raw_inserter() -> Iterator[Callable[[int], None]]:
    """``insert(index)``: ``sqlite3`` inserting the bytes of govflow's decision event, one commit each."""
    payload = json.dumps(DECISION | {"quorum": {"members": 1}, "votes": {}}, sort_keys=True)
    with scratch("raw") as folder:
        connection = sqlite3.connect(folder / "raw.db", isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(
                "CREATE TABLE events (stream_id TEXT, version INTEGER, data TEXT, PRIMARY KEY (stream_id, version))"
            )

            def insert(index: int) -> None:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("INSERT INTO events VALUES (?, ?, ?)", (f"lis-{index}", 1, payload))
                connection.execute("COMMIT")

            yield insert
        finally:
            connection.close()


@cache
def _gate_class() -> Any:
    """The eventsourcing aggregate, defined once (the library registers each class by topic)."""
    from eventsourcing.domain import Aggregate, event

    class Gate(Aggregate):  # type: ignore[misc]
        @event("Opened")  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.name = name
            self.decisions: list[dict[str, Any]] = []

        @event("DecisionRecorded")  # type: ignore[misc]
        def record(self, decision: dict[str, Any]) -> None:
            self.decisions.append(decision)

        @event("GatePassed")  # type: ignore[misc]
        def pass_gate(self, date: str, decisions: list[str]) -> None:
            self.passed = date

    return Gate


@contextmanager
def eventsourcing_decider(count: int) -> Iterator[Callable[[int], None]]:
    """``decide(index)``: the same two facts govflow records (the decision, and the gate it
    concludes) on aggregate ``index`` of ``count`` saved ones, ``app.save`` each time."""
    from eventsourcing.application import Application

    Gate = _gate_class()
    with scratch("eventsourcing") as folder:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "es.db")}
        app = Application(env=env)
        try:
            gates = []
            for index in range(count):
                gate = Gate(name=f"lis-{index}")
                app.save(gate)
                gates.append(gate)

            def decide(index: int) -> None:
                gate = gates[index]
                gate.record(DECISION)
                gate.pass_gate(DECISION["date"], [f"{DECISION['gate']}/{DECISION['body']}/2"])
                app.save(gate)

            yield decide
        finally:
            app.close()


@contextmanager
def spiffworkflow_decider(count: int) -> Iterator[Callable[[int], None]]:
    """``decide(index)``: complete workflow ``index``'s user task, serialise it and save it, one commit each."""
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_file(str(Path(__file__).with_name("lis_process.bpmn")))
    spec = parser.get_spec("lis_signoff")
    serializer = BpmnWorkflowSerializer()
    with scratch("spiff") as folder:
        connection = sqlite3.connect(folder / "spiff.db", isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("CREATE TABLE workflows (id TEXT PRIMARY KEY, state TEXT)")
            workflows = []
            for index in range(count):
                workflow = BpmnWorkflow(spec)
                workflow.do_engine_steps()
                workflows.append(workflow)
                connection.execute(
                    "INSERT INTO workflows VALUES (?, ?)", (f"lis-{index}", serializer.serialize_json(workflow))
                )

            def decide(index: int) -> None:
                workflow = workflows[index]
                task = workflow.get_tasks(state=TaskState.READY)[0]
                task.data.update(DECISION)
                task.run()
                workflow.do_engine_steps()
                state = serializer.serialize_json(workflow)
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("UPDATE workflows SET state = ? WHERE id = ?", (state, f"lis-{index}"))
                connection.execute("COMMIT")

            yield decide
        finally:
            connection.close()


def measure(count: int, blocks: int) -> tuple[float, float, float, float]:
    """Decisions per second of govflow, eventsourcing, SpiffWorkflow and the raw limit, in that order.

    Each has its own fresh database, set up before any is timed; then they take turns,
    ``blocks`` blocks of decisions each (``bench.common.interleaved``), so that a
    neighbour's burst of work on a shared machine slows them alike.
    """
    with (
        govflow_decider(count) as ours,
        eventsourcing_decider(count) as theirs,
        spiffworkflow_decider(count) as spiff,
        raw_inserter() as raw,
    ):
        seconds = interleaved([ours, theirs, spiff, raw], count, blocks)
    ours_rate, theirs_rate, spiff_rate, raw_rate = (rate(count, taken) for taken in seconds)
    return ours_rate, theirs_rate, spiff_rate, raw_rate


def environment_note() -> str:
    return f"SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL, {os.cpu_count()} cores"
