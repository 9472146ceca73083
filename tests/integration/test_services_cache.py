"""The services' instance cache never lets a stale state decide.

Two ``Services`` on one SQLite file stand for two long-running processes: each
caches folded instances; when one appends, the other's cache is behind.
"""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from governance.errors import GateNotOpen, NotApplicable
from governance.quorum import DecisionInput
from governance.state import fold
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.services import Services
from workflows.store.sql import SqlEventStore


def _services(url: str, clock: FixedClock) -> Services:
    return Services(store=SqlEventStore(make_engine(url), clock=clock.now), clock=clock)


@pytest.fixture
def two_processes(tmp_path: Path) -> tuple[Services, Services]:
    url = f"sqlite:///{tmp_path / 'govflow.db'}"
    migrate(url)
    clock = FixedClock(datetime(2019, 6, 3, 9, tzinfo=UTC))
    first, second = _services(url, clock), _services(url, clock)
    first.start("selep-lis-2019", "selep-lis", actor="officer")
    clock.set(datetime(2019, 7, 26, 15, tzinfo=UTC))
    return first, second


APPROACH = DecisionInput(
    gate="approach-agreed",
    body="secretariat",
    outcome="approved",
    day=date(2019, 7, 26),
    mode="delegated",
    authority="SB/2019/06/3",
)


def test_a_command_on_a_stale_cached_instance_is_decided_again_on_the_log(
    two_processes: tuple[Services, Services],
) -> None:
    first, second = two_processes
    first.complete_task("selep-lis", "evidence-review", actor="a")  # first now caches version N
    second.complete_task("selep-lis", "engagement-plan", actor="b")  # the log moves on behind first's back
    outcome = first.complete_task("selep-lis", "stakeholder-consultation", actor="a")
    assert outcome.state is not None
    assert set(outcome.state.tasks_done) == {"evidence-review", "engagement-plan", "stakeholder-consultation"}
    replayed = fold("selep-lis", first.store.read_stream("selep-lis"), first.definition)
    assert replayed == outcome.state == first.load("selep-lis")


def test_a_stale_cache_cannot_record_a_decision_the_log_already_holds(
    two_processes: tuple[Services, Services],
) -> None:
    first, second = two_processes
    first.load("selep-lis")
    second.decide("selep-lis", APPROACH, actor="b")
    with pytest.raises(GateNotOpen, match="passed on 2019-07-26"):
        first.decide("selep-lis", APPROACH, actor="a")
    events = first.store.read_stream("selep-lis")
    assert sum(1 for e in events if e.type == "DecisionRecorded") == 1


def test_a_refused_command_leaves_the_cache_as_the_log_is(two_processes: tuple[Services, Services]) -> None:
    first, _ = two_processes
    first.complete_task("selep-lis", "evidence-review", actor="a")
    with pytest.raises(NotApplicable):
        first.complete_task("selep-lis", "evidence-review", actor="a")
    replayed = fold("selep-lis", first.store.read_stream("selep-lis"), first.definition)
    assert first.load("selep-lis") == replayed


def test_loading_many_gives_what_loading_each_gives_and_leaves_the_collector_as_it_was(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'govflow.db'}"
    migrate(url)
    clock = FixedClock(datetime(2019, 6, 3, 9, tzinfo=UTC))
    writer = _services(url, clock)
    for n in range(5):
        writer.start("selep-lis-2019", f"lis-{n}", actor="officer")
    clock.set(datetime(2019, 7, 26, 15, tzinfo=UTC))
    writer.decide("lis-1", APPROACH, actor="secretary")
    writer.complete_task("lis-3", "evidence-review", actor="officer")
    reader = _services(url, clock)
    reader.load("lis-1")  # one of them cached already
    collecting = gc.isenabled()

    loaded = reader.load_many(["lis-0", "lis-1", "lis-3", "lis-9", "lis-4"])

    assert gc.isenabled() is collecting
    assert sorted(loaded) == ["lis-0", "lis-1", "lis-3", "lis-4"]  # an unknown id is left out
    for ident, instance in loaded.items():
        assert instance == fold(ident, writer.store.read_stream(ident), writer.definition) == writer.load(ident)
