"""Load and fold many LIS instances; memory per loaded instance.

- govflow: a fresh ``Services`` folds every instance from the SQLite log (each walked
  to the drafting phase: about 40 events), keeping all of them in memory;
- SpiffWorkflow: deserialise as many saved workflows of the LIS process.

The log is built with the store's own append (one transaction per instance, with
``synchronous=OFF`` for the set-up only), so it is hash-chained like any other.
"""

from __future__ import annotations

import gc
import sqlite3
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.common import rate, scratch, timed


def _walked_events() -> tuple[Any, list[Any]]:
    """One LIS instance walked to drafting, as new events (the domain's own output)."""
    from governance import commands
    from governance.quorum import DecisionInput
    from workflows.bank_holidays import england_and_wales_bank_holidays
    from workflows.definition_file import find_definition, load_definition

    definition = load_definition(find_definition("selep-lis-2019", []))
    start = datetime(2019, 6, 3, 9, tzinfo=UTC)
    instance, events = commands.start("template", definition, start, england_and_wales_bank_holidays(2019, 2021))
    now = datetime(2019, 9, 30, 12, tzinfo=UTC)
    for task in ("evidence-review", "stakeholder-consultation", "engagement-plan"):
        events += commands.complete_task(instance, task, now)
    events += commands.record_decision(
        instance,
        DecisionInput("approach-agreed", "secretariat", "approved", date(2019, 7, 26), "delegated", authority="x"),
        now,
    )
    for task in ("evidence-base", "emerging-propositions"):
        events += commands.complete_task(instance, task, now)
    for body in ("success-essex", "kmep", "ose", "team-east-sussex"):
        decision = DecisionInput("evidence-agreed", body, "endorsed", date(2019, 9, 24), present=10, votes_for=10)
        events += commands.record_decision(instance, decision, now)
    return definition, events


def build_log(path: Path, instances: int) -> list[str]:
    """A SQLite log of ``instances`` LIS instances; returns their ids."""
    from sqlalchemy import event

    from workflows.database import make_engine, migrate
    from workflows.store.base import AppendRequest
    from workflows.store.sql import SqlEventStore

    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    event.listen(engine, "connect", lambda connection, _record: connection.execute("PRAGMA synchronous=OFF"))
    store = SqlEventStore(engine)
    definition, events = _walked_events()
    source = definition  # the definition's text is stored once, by hash
    from workflows.definition_file import find_definition

    text = find_definition("selep-lis-2019", []).read_bytes().decode("utf-8")
    store.save_definition(source.content_hash, source.id, source.version, text)
    ids = [f"lis-{index:05d}" for index in range(instances)]
    recorded_at = datetime(2019, 9, 30, 12, tzinfo=UTC)
    for ident in ids:
        first = events[0]
        renamed = [type(first)(first.type, first.data | {"instance": ident}, first.occurred_at), *events[1:]]
        request = AppendRequest(
            stream_id=ident,
            expected_version=0,
            actor="bench",
            definition_hash=definition.content_hash,
            definition_id=definition.id,
            recorded_at=recorded_at,
            phase="drafting",
        )
        store.append(request, renamed)
    engine.dispose()
    return ids


def _services(path: Path, size: int) -> Any:
    from workflows.clock import FixedClock
    from workflows.database import make_engine
    from workflows.services import Services
    from workflows.store.sql import SqlEventStore

    engine = make_engine(f"sqlite:///{path}")
    clock = FixedClock(datetime(2019, 10, 1, tzinfo=UTC))
    return Services(store=SqlEventStore(engine), clock=clock, cache_size=size + 1)


def govflow(path: Path, ids: list[str]) -> float:
    """Instances loaded and folded per second, each kept in memory."""
    services = _services(path, len(ids))
    services.load(ids[0])  # parse the definition once, outside the measurement
    seconds = timed(lambda: services.load_many(ids))
    services.store.engine.dispose()
    return rate(len(ids), seconds)


def retained_bytes(path: Path, ids: list[str]) -> float:
    """Bytes of memory each loaded instance keeps (tracemalloc; a separate pass, as it slows allocation)."""
    services = _services(path, len(ids))
    services.load(ids[0])
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    services.load_many(ids[1:])
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    services.store.engine.dispose()
    return retained / max(1, len(ids) - 1)


def spiffworkflow(folder: Path, count: int) -> float:
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_file(str(Path(__file__).with_name("lis_process.bpmn")))
    serializer = BpmnWorkflowSerializer()
    workflow = BpmnWorkflow(parser.get_spec("lis_signoff"))
    workflow.do_engine_steps()
    for _ in range(3):  # to the drafting gate, as the govflow instances are
        workflow.get_tasks(state=TaskState.READY)[0].run()
        workflow.do_engine_steps()
    state = serializer.serialize_json(workflow)
    database = folder / "spiff.db"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE workflows (id TEXT PRIMARY KEY, state TEXT)")
    connection.executemany("INSERT INTO workflows VALUES (?, ?)", ((f"lis-{i}", state) for i in range(count)))
    connection.commit()

    def run() -> None:
        loaded = [serializer.deserialize_json(row[0]) for row in connection.execute("SELECT state FROM workflows")]
        assert len(loaded) == count

    seconds = timed(run)
    connection.close()
    return rate(count, seconds)


def measure(instances: int) -> tuple[float, float, float]:
    """(govflow instances/s, govflow bytes per instance, SpiffWorkflow instances/s)."""
    with scratch("fold") as folder:
        ids = build_log(folder / "govflow.db", instances)
        folded = govflow(folder / "govflow.db", ids)
        per_instance = retained_bytes(folder / "govflow.db", ids)
        peer = spiffworkflow(folder, instances)
    return folded, per_instance, peer
