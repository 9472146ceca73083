"""The phase machine's compiled firing table answers exactly as the transitions library does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions import MachineError

from governance.definition import PAUSED, SUPERSEDED
from governance.machine import machine_for
from tests.unit.lis import lis


@dataclass
class Model:
    state: str
    complete: bool

    def phase_complete(self) -> bool:
        return self.complete


MACHINE = machine_for(lis())
STATES = [*lis().phase_ids, PAUSED, SUPERSEDED]
TRIGGERS = sorted({trigger for trigger, _, _ in MACHINE.transitions} | {"no-such-trigger"})


@given(state=st.sampled_from(STATES), trigger=st.sampled_from(TRIGGERS), complete=st.booleans())
def test_the_compiled_table_fires_as_the_library_does(state: str, trigger: str, complete: bool) -> None:
    fast, library = Model(state, complete), Model(state, complete)
    outcomes = []
    for model, fire in ((fast, MACHINE.trigger), (library, MACHINE.trigger_with_library)):
        try:
            outcomes.append(fire(model, trigger))
        except MachineError:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]
    assert fast.state == library.state


def test_advance_needs_the_phase_complete_and_no_back_door_exists() -> None:
    model = Model("scoping", complete=False)
    assert MACHINE.trigger(model, "advance") is False
    assert model.state == "scoping"
    model.complete = True
    assert MACHINE.trigger(model, "advance") is True
    assert model.state == "evidence"
    with pytest.raises(MachineError):
        MACHINE.trigger(model, "to_agreed")  # auto_transitions=False: no to_<state> triggers
