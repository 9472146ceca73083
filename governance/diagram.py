"""A Mermaid state diagram of a definition's phases, gates and routes.

Built from the same machine the fold uses, so the picture cannot drift from the
rules. Mermaid is plain text: it renders in Markdown viewers and needs no binary.
"""

from __future__ import annotations

from governance.definition import PAUSED, SUPERSEDED, Definition
from governance.machine import machine_for


def _state_id(name: str) -> str:
    return name.replace("-", "_")


def mermaid(definition: Definition) -> str:
    """``stateDiagram-v2`` text: phases in order, their gates as notes, rejection routes, pause."""
    lines = ["stateDiagram-v2", f"    %% {definition.id} {definition.version}: {definition.title}"]
    for phase in definition.phases:
        lines.append(f'    state "{phase.name}" as {_state_id(phase.id)}')
    lines.append(f'    state "paused" as {PAUSED}')
    lines.append(f'    state "superseded" as {SUPERSEDED}')
    lines.append(f"    [*] --> {_state_id(definition.initial_phase)}")
    machine = machine_for(definition)
    for trigger, source, dest in machine.transitions:
        if trigger == "advance":
            gates = definition.phase_by_id[source].gates
            label = ", ".join(g.id for g in gates) or "tasks done"
            lines.append(f"    {_state_id(source)} --> {_state_id(dest)}: {label}")
        elif trigger.startswith("back_to_"):
            rejecting = [
                g.id
                for g in definition.phase_by_id[source].gates
                if g.on_reject is not None and g.on_reject.to_phase == dest
            ]
            if rejecting:
                lines.append(f"    {_state_id(source)} --> {_state_id(dest)}: rejected at {', '.join(rejecting)}")
    lines.append(f"    {_state_id(definition.final_phase)} --> [*]")
    lines.append(f"    {SUPERSEDED} --> [*]")
    lines.append(f"    note right of {PAUSED}: any active phase can pause and resume where it was")
    for phase in definition.phases:
        for gate in phase.gates:
            rule = "all of" if gate.rule == "all" else f"{gate.needed} of"
            after = f" after {', '.join(gate.after)}" if gate.after else ""
            due = f" by {gate.due.isoformat()}" if gate.due else ""
            lines.append(
                f"    note left of {_state_id(phase.id)}: {gate.id}: {rule} {', '.join(gate.boards)}{after}{due}"
            )
    return "\n".join(lines) + "\n"
