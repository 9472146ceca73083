"""A Hypothesis state machine sends random valid and invalid commands to the services.

After every step: replaying the log from the SQLite file equals the live state,
versions have no gaps, a refused command recorded nothing, and nothing follows a
terminal state.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from governance.errors import GovernanceError
from governance.quorum import DecisionInput
from governance.state import OUTCOMES, Instance, fold
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.definition_file import find_definition, load_definition
from workflows.errors import BadInput
from workflows.services import Services
from workflows.store.sql import SqlEventStore

LIS = load_definition(find_definition("selep-lis-2019", []))
GATES = sorted(LIS.gate_by_id)
BODIES = sorted(LIS.body_by_id)
TASKS = sorted(LIS.task_by_id)
MODES = ["meeting", "written", "chairs-action", "delegated", "external", None]
ID = "selep-lis"
TERMINAL = {"agreed", "superseded"}


class CommandsAgainstTheLog(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.folder.name) / 'govflow.db'}"
        migrate(url)
        self.engine = make_engine(url)
        self.clock = FixedClock(datetime(2019, 6, 3, 9, tzinfo=UTC))
        self.services = Services(store=SqlEventStore(self.engine), clock=self.clock)
        outcome = self.services.start("selep-lis-2019", ID, actor="test")
        assert outcome.state is not None
        self.live: Instance = outcome.state
        self.documents = 0

    def teardown(self) -> None:
        self.engine.dispose()
        self.folder.cleanup()

    def _attempt(self, command: object) -> None:
        before = self.services.store.stream(ID)
        assert before is not None
        try:
            outcome = command()  # type: ignore[operator]
        except (GovernanceError, BadInput):
            after = self.services.store.stream(ID)
            assert after is not None and after.version == before.version, "a refused command recorded something"
            return
        assert outcome.state is not None
        self.live = outcome.state

    @property
    def today(self) -> date:
        return self.clock.now().date()

    @rule(days=st.integers(min_value=0, max_value=25))
    def time_passes(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))

    @rule(task=st.sampled_from([*TASKS, "no-such-task"]))
    def complete_a_task(self, task: str) -> None:
        self._attempt(lambda: self.services.complete_task(ID, task, actor="secretary"))

    @rule(
        gate=st.sampled_from(GATES),
        body=st.sampled_from(BODIES),
        outcome=st.sampled_from(OUTCOMES),
        mode=st.sampled_from(MODES),
        present=st.one_of(st.none(), st.integers(min_value=-1, max_value=30)),
        votes_for=st.integers(min_value=0, max_value=30),
        against=st.integers(min_value=0, max_value=5),
        conflicted=st.integers(min_value=0, max_value=2),
        days_ago=st.integers(min_value=-1, max_value=5),
        with_authority=st.booleans(),
    )
    def record_a_decision(
        self,
        gate: str,
        body: str,
        outcome: str,
        mode: str | None,
        present: int | None,
        votes_for: int,
        against: int,
        conflicted: int,
        days_ago: int,
        with_authority: bool,
    ) -> None:
        decision = DecisionInput(
            gate=gate,
            body=body,
            outcome=outcome,
            day=self.today - timedelta(days=days_ago),
            mode=mode,
            present=present,
            votes_for=votes_for if present is not None or mode == "written" else None,
            against=against if present is not None or mode == "written" else None,
            conflicted=conflicted,
            authority="SB/2019/06/3" if with_authority else None,
            conditions=("a condition",) if outcome == "approved-with-conditions" else (),
        )
        self._attempt(lambda: self.services.decide(ID, decision, actor="secretary"))

    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
    def record_a_plausible_decision(self, data: st.DataObject, outcome: str) -> None:
        """A decision most rules accept, so that runs get through the phases."""
        open_gates = [g for g in LIS.gate_by_id.values() if self.live.gate_is_open(g)]
        if not open_gates:
            return
        gate = data.draw(st.sampled_from(open_gates))
        body = LIS.body_by_id[data.draw(st.sampled_from(gate.boards))]
        members = body.membership[-1].members
        majority = members // 2 + 1
        negative = outcome in ("rejected", "not-endorsed")
        votes: dict[str, int | None] = {}
        if body.default_mode in ("meeting", "written"):
            votes = {"votes_for": 0 if negative else majority, "against": majority if negative else 0}
        if body.default_mode == "meeting":
            votes["present"] = majority
        decision = DecisionInput(
            gate=gate.id,
            body=body.id,
            outcome=outcome,
            day=self.today,
            authority="SB/2019/06/3",
            conditions=("a condition",) if outcome == "approved-with-conditions" else (),
            **votes,  # type: ignore[arg-type]
        )
        self._attempt(lambda: self.services.decide(ID, decision, actor="secretary"))

    @rule(data=st.data())
    def complete_a_task_of_this_phase(self, data: st.DataObject) -> None:
        phase = LIS.phase_by_id.get(self.live.working_phase)
        if phase is None or not phase.tasks:
            return
        task = data.draw(st.sampled_from([t.id for t in phase.tasks]))
        self._attempt(lambda: self.services.complete_task(ID, task, actor="secretary"))
        for task_id in [t.id for t in phase.tasks]:
            self._attempt(lambda: self.services.complete_task(ID, task_id, actor="secretary"))  # noqa: B023

    @rule()
    def add_a_document_version(self) -> None:
        self.documents += 1
        path = Path(self.folder.name) / f"draft-{self.documents}.pdf"
        path.write_bytes(f"draft {self.documents}".encode())
        self._attempt(lambda: self.services.add_document(ID, path, actor="officer"))

    @precondition(lambda self: any(c.discharged_on is None for c in self.live.conditions.values()))
    @rule(data=st.data())
    def discharge_a_condition(self, data: st.DataObject) -> None:
        open_ids = sorted(c.id for c in self.live.conditions.values() if c.discharged_on is None)
        condition = data.draw(st.sampled_from(open_ids))
        self._attempt(lambda: self.services.discharge_condition(ID, condition, actor="officer"))

    @rule(action=st.sampled_from(["pause", "resume", "supersede"]), now=st.integers(min_value=0, max_value=9))
    def pause_resume_or_supersede(self, action: str, now: int) -> None:
        if now < 9 and action != "resume":
            return  # pause and supersede rarely, so that most runs get far through the phases
        self._attempt(lambda: getattr(self.services, action)(ID, f"reason to {action}", actor="chair"))

    @rule(body=st.sampled_from(BODIES), ahead=st.integers(min_value=0, max_value=60))
    def schedule_a_meeting(self, body: str, ahead: int) -> None:
        day = self.today + timedelta(days=ahead)
        self._attempt(lambda: self.services.schedule_meeting(ID, body, day, actor="secretary"))

    @invariant()
    def replay_equals_the_live_state(self) -> None:
        note_event(f"phase: {self.live.phase}")
        note_event(f"decisions: {min(len(self.live.decisions), 3)}+")
        replayed = fold(ID, self.services.store.read_stream(ID), self.services.definition)
        assert replayed == self.live
        assert self.services.load(ID) == replayed

    @invariant()
    def versions_have_no_gaps_and_nothing_follows_a_terminal_state(self) -> None:
        events = self.services.store.read_stream(ID)
        assert [e.version for e in events] == list(range(1, len(events) + 1))
        for index, event in enumerate(events):
            ends = event.type == "InstanceSuperseded" or (
                event.type == "PhaseEntered" and event.data["to"] == LIS.final_phase
            )
            if ends:
                assert index == len(events) - 1, f"{events[index + 1].type} follows a terminal state"
        summary = self.services.store.stream(ID)
        assert summary is not None and (summary.version, summary.phase) == (len(events), self.live.phase)


CommandsAgainstTheLog.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_replay_equals_live_state = CommandsAgainstTheLog.TestCase
