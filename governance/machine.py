"""The phase state machine, built once per definition version from its data.

States are the definition's phases plus ``paused`` and ``superseded``. Triggers:

- ``advance``: phase *i* → phase *i+1*, only when every gate of phase *i* has
  passed and its required tasks are done (a pure condition);
- ``back_to_<phase>``: a rejection route, from a later phase back to ``<phase>``;
- ``pause`` / ``resume_to_<phase>``: to ``paused`` and back where it was;
- ``supersede``: any active state → ``superseded`` (terminal).

The machine holds no model (``model=None``): one machine serves every instance of
the definition, triggered for an unbound object, which is cheap. Callbacks are
conditions only, so replay can run every event through the same machine safely.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from transitions import EventData, Machine, MachineError

from governance.definition import PAUSED, SUPERSEDED, Definition


class PhaseModel(Protocol):
    """What the machine drives: an object with a ``state`` and a completeness test."""

    state: str

    def phase_complete(self) -> bool: ...


class PhaseMachine:
    """The transitions machine of one definition, with a typed trigger method."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        phases = list(definition.phase_ids)
        active = phases[:-1]
        transitions: list[dict[str, Any]] = [
            {
                "trigger": "advance",
                "source": phase,
                "dest": phases[index + 1],
                "conditions": [_phase_complete],
            }
            for index, phase in enumerate(active)
        ]
        for target in sorted(_rejection_targets(definition)):
            start = phases.index(target)
            transitions.append({"trigger": f"back_to_{target}", "source": phases[start:-1], "dest": target})
        transitions.append({"trigger": "pause", "source": active, "dest": PAUSED})
        transitions.extend({"trigger": f"resume_to_{phase}", "source": PAUSED, "dest": phase} for phase in active)
        transitions.append({"trigger": "supersede", "source": [*active, PAUSED], "dest": SUPERSEDED})
        self._machine = Machine(
            model=None,
            states=[*phases, PAUSED, SUPERSEDED],
            transitions=transitions,
            initial=phases[0],
            auto_transitions=False,
            send_event=True,
        )
        self._table = _compile(self._machine)

    @property
    def transitions(self) -> list[tuple[str, str, str]]:
        """Every (trigger, source, dest), for diagrams and tests."""
        found: list[tuple[str, str, str]] = []
        for name, event in self._machine.events.items():
            for source, group in event.transitions.items():
                found.extend((name, source, str(transition.dest)) for transition in group)
        return found

    def trigger(self, model: PhaseModel, trigger: str) -> bool:
        """Fire ``trigger`` for ``model``; False if a condition refused, MachineError if invalid.

        Fired from the table compiled out of the transitions machine: the same
        transitions, checked in the same order with the same conditions, without the
        library's per-event dispatch (logging, callback lists), which cost a sixth of a
        whole replay. ``trigger_with_library`` fires through transitions itself; a test
        holds the two to the same answers for every state and trigger.
        """
        candidates = self._table.get((trigger, model.state))
        if candidates is None:
            if trigger not in self._machine.events:
                raise MachineError(f"no trigger '{trigger}'")
            raise MachineError(f"\"{trigger}\" is not allowed from state '{model.state}'")
        fired = _Fired(model)
        for dest, checks in candidates:
            if all(bool(check.func(fired)) == check.target for check in checks):
                model.state = dest
                return True
        return False

    def trigger_with_library(self, model: PhaseModel, trigger: str) -> bool:
        """Fire ``trigger`` through the transitions library's own event dispatch."""
        event = self._machine.events.get(trigger)
        if event is None:
            raise MachineError(f"no trigger '{trigger}'")
        result: bool = event.trigger(model)
        return result

    def allowed(self, state: str) -> list[str]:
        """Triggers that leave ``state`` (conditions aside)."""
        return [name for name, event in self._machine.events.items() if state in event.transitions]


class _Fired(NamedTuple):
    """What a condition reads of an event when fired from the compiled table."""

    model: Any


def _compile(machine: Machine) -> dict[tuple[str, str], list[tuple[str, list[Any]]]]:
    """(trigger, source) -> the candidate transitions in the library's order, with their conditions."""
    table: dict[tuple[str, str], list[tuple[str, list[Any]]]] = {}
    for name, event in machine.events.items():
        for source, group in event.transitions.items():
            table[(name, source)] = [(str(t.dest), list(t.conditions)) for t in group]
    return table


def _phase_complete(event: EventData | _Fired) -> bool:
    model: PhaseModel = event.model  # type: ignore[assignment]  # transitions types the model as object
    return model.phase_complete()


def _rejection_targets(definition: Definition) -> set[str]:
    return {
        gate.on_reject.to_phase for phase in definition.phases for gate in phase.gates if gate.on_reject is not None
    }


_machines: dict[int, tuple[Definition, PhaseMachine]] = {}


def machine_for(definition: Definition) -> PhaseMachine:
    """The one machine of a definition object, built on first use.

    Keyed by identity (the entry keeps the definition alive, so the id is not
    reused): hashing a whole definition at every call would cost more than it saves.
    """
    entry = _machines.get(id(definition))
    if entry is None:
        entry = _machines[id(definition)] = (definition, PhaseMachine(definition))
    return entry[1]
