"""Commands that move a workflow instance on, chosen from its state: the load and fault tests' driver.

:func:`next_steps` lists what the rules allow now: the current phase's open tasks, a
decision by each body still to decide at each open gate (dated on the gate's due
date, in the body's usual mode, with a quorate vote), the document a gate needs,
open conditions to discharge, and a meeting to schedule. :class:`Step` runs one
through the services API. A few rejections send an instance back to drafting, so
that a long run never runs out of work.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from governance.definition import Gate
from governance.quorum import DecisionInput
from governance.state import Instance
from workflows.services import Outcome, Services

# Shares of the decisions that are not a plain approval, to exercise more of the rules.
REJECT_SHARE = 0.3  # only at gates with a rejection route and a single deciding body
DEFER_SHARE = 0.05
CONDITIONS_SHARE = 0.1
MEETING_SHARE = 0.1
FIRST_MEETING_DAY = date(2019, 6, 3)
MEETING_DAYS = 300


@dataclass(frozen=True)
class Step:
    """One command: ``kind`` is task, decide, document, discharge or meeting."""

    kind: str
    args: tuple[Any, ...]

    def run(self, services: Services, instance_id: str, *, actor: str, key: str, folder: Path) -> Outcome:
        """Run the command under idempotency ``key``; documents are written into ``folder``."""
        who: dict[str, Any] = {"actor": actor, "key": key}
        if self.kind == "task":
            return services.complete_task(instance_id, self.args[0], **who)
        if self.kind == "decide":
            return services.decide(instance_id, self.args[0], **who)
        if self.kind == "discharge":
            return services.discharge_condition(instance_id, self.args[0], evidence="done", **who)
        if self.kind == "meeting":
            body, day = self.args
            return services.schedule_meeting(instance_id, body, day, **who)
        if self.kind == "document":
            # The same content for the same version number: two writers adding "the next
            # version" at once collide on the rule (the file is already that version).
            # Written whole under another name and moved into place: another process may be
            # writing the same file, and must never read it half-written (a shorter file has
            # another hash, and its resend would then differ from the command first sent).
            path = folder / f"{instance_id}-v{self.args[0]}.pdf"
            scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            scratch.write_text(f"{instance_id} draft version {self.args[0]}", encoding="utf-8")
            os.replace(scratch, path)
            return services.add_document(instance_id, path, **who)
        raise ValueError(f"unknown step kind '{self.kind}'")


def decision(instance: Instance, gate: Gate, body_id: str, outcome: str) -> DecisionInput:
    """A decision the rules accept: dated on the gate's due date, in the body's usual mode."""
    body = instance.definition.body_by_id[body_id]
    day = gate.due or instance.started_on
    extra: dict[str, Any] = {}
    mode = body.modes[0]
    if mode == "meeting":
        present = body.membership[-1].members // 2 + 1
        negative = outcome in ("rejected", "not-endorsed")
        extra = {"present": present, "votes_for": 0 if negative else present, "against": present if negative else 0}
    elif mode in ("delegated", "chairs-action"):
        extra = {"authority": "SB/2019/06/3"}
    if outcome == "approved-with-conditions":
        extra |= {"conditions": ("annex added",), "condition_owner": "lead officer"}
    if outcome == "deferred":
        extra["deferred_to"] = day + timedelta(days=7)
    return DecisionInput(gate=gate.id, body=body_id, outcome=outcome, day=day, mode=mode, **extra)


def _outcome(gate: Gate, body_id: str, rng: random.Random) -> str:
    draw = rng.random()
    if gate.on_reject is not None and len(gate.boards) == 1 and draw < REJECT_SHARE:
        return "rejected"
    if draw > 1 - DEFER_SHARE:
        return "deferred"
    if body_id == "strategic-board" and draw > 1 - DEFER_SHARE - CONDITIONS_SHARE:
        return "approved-with-conditions"
    return "endorsed" if not gate.strict and len(gate.boards) > 1 else "approved"


def next_steps(instance: Instance, rng: random.Random) -> list[Step]:
    """Every step that moves ``instance`` on now (empty when it is over)."""
    if not instance.active:
        return []
    definition = instance.definition
    phase = definition.phase_by_id[instance.state]
    steps = [Step("task", (task.id,)) for task in phase.tasks if task.id not in instance.tasks_done]
    for gate in phase.gates:
        if not instance.gate_is_open(gate):
            continue
        if gate.document and instance.current_document is None:
            steps.append(Step("document", (len(instance.documents) + 1,)))
            continue
        steps += [Step("discharge", (condition,)) for condition in instance.gate_condition_ids(gate)]
        concluded = instance.concluded(gate)
        for body_id in gate.boards:
            if body_id not in concluded:
                steps.append(Step("decide", (decision(instance, gate, body_id, _outcome(gate, body_id, rng)),)))
    return steps


def choose(instance: Instance, rng: random.Random) -> Step | None:
    """One step for ``instance``: usually progress, sometimes a meeting; None when it is over."""
    if not instance.active:
        return None
    if rng.random() < MEETING_SHARE:
        body = rng.choice(sorted(instance.definition.body_by_id))
        return Step("meeting", (body, FIRST_MEETING_DAY + timedelta(days=rng.randrange(MEETING_DAYS))))
    steps = next_steps(instance, rng)
    return rng.choice(steps) if steps else None
