"""Hypothesis: for any sequence of commands, the exported bundle replays to the live state, and any
single changed byte of any event line is caught by ``verify-bundle``."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import GovernanceError
from governance.quorum import DecisionInput
from governance.state import OUTCOMES, Instance
from workflows.audit import ledger, signing
from workflows.audit.bundle import export_bundle
from workflows.audit.log import SqlAuditLog
from workflows.audit.offline import verify_bundle
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.errors import BadInput
from workflows.services import Services
from workflows.store.sql import SqlEventStore

ID = "selep-lis"
ACTIONS = ["task", "task", "decide", "decide", "decide", "document", "correct", "pause", "resume", "wait"]


def _act(services: Services, clock: FixedClock, live: Instance, action: str, pick: int, folder: Path) -> Instance:
    """Run one plausible command chosen by ``action`` and ``pick``; a refusal records nothing."""
    definition = live.definition
    try:
        if action == "wait":
            clock.advance(timedelta(days=pick % 20))
            return live
        if action == "task":
            phase = definition.phase_by_id.get(live.working_phase)
            open_tasks = [t.id for t in phase.tasks if t.id not in live.tasks_done] if phase else []
            if not open_tasks:
                return live
            outcome = services.complete_task(ID, open_tasks[pick % len(open_tasks)], actor="officer")
        elif action == "decide":
            gates = [g for g in definition.gate_by_id.values() if live.gate_is_open(g)]
            if not gates:
                return live
            gate = gates[pick % len(gates)]
            body = definition.body_by_id[gate.boards[pick % len(gate.boards)]]
            result = OUTCOMES[pick % len(OUTCOMES)]
            negative = result in ("rejected", "not-endorsed")
            majority = body.membership[-1].members // 2 + 1
            votes: dict[str, int] = {}
            if body.default_mode in ("meeting", "written"):
                votes = {"votes_for": 0 if negative else majority, "against": majority if negative else 0}
            if body.default_mode == "meeting":
                votes["present"] = majority
            decision = DecisionInput(
                gate=gate.id,
                body=body.id,
                outcome=result,
                day=clock.now().date(),
                authority="SB/2019/06/3",
                conditions=("a condition",) if result == "approved-with-conditions" else (),
                **votes,  # type: ignore[arg-type]
            )
            outcome = services.decide(ID, decision, actor="secretary")
        elif action == "document":
            path = folder / f"draft-{pick}.pdf"
            path.write_bytes(f"draft {pick} ✓".encode())
            outcome = services.add_document(ID, path, actor="officer")
        elif action == "correct":
            outcome = services.correct(ID, 1 + pick % live.version, f"correction {pick}", actor="auditor")
        else:
            outcome = getattr(services, action)(ID, f"reason {pick}", actor="chair")
    except (GovernanceError, BadInput):
        return live
    assert outcome.state is not None
    return outcome.state


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(min_value=0, max_value=1000)), max_size=40),
    flip=st.tuples(st.integers(min_value=0), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
)
def test_the_bundle_replays_to_the_live_state_and_any_changed_byte_is_caught(
    steps: list[tuple[str, int]], flip: tuple[int, int, int]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url = f"sqlite:///{folder / 'govflow.db'}"
        migrate(url)
        engine = make_engine(url)
        try:
            clock = FixedClock(datetime(2019, 6, 3, 9, tzinfo=UTC))
            services = Services(store=SqlEventStore(engine), clock=clock)
            started = services.start("selep-lis-2019", ID, actor="lead")
            assert started.state is not None
            live = started.state
            for action, pick in steps:
                live = _act(services, clock, live, action, pick, folder)
            signing.ensure_key(folder / "key")
            signer = signing.load_signer(folder / "key")
            log = SqlAuditLog(engine)
            ledger.create_checkpoint(
                services.store, log, public_key=signer.public_key, sign=signer.sign, now=clock.now(), actor="a", meta={}
            )
            bundle = folder / "bundle.jsonl"
            export_bundle(services.store, log, ID, bundle, exported_at="2030-01-01T00:00:00.000000Z")
        finally:
            engine.dispose()

        report = verify_bundle(bundle)
        assert report.ok, report.problems
        assert report.state == live

        lines = bundle.read_bytes().splitlines(keepends=True)
        events = [i for i, line in enumerate(lines) if b'"kind":"event"' in line]
        line_index = events[flip[0] % len(events)]
        line = bytearray(lines[line_index])
        offset = flip[1] % (len(line) - 1)  # any byte but the line's newline
        line[offset] = (line[offset] + flip[2]) % 256
        lines[line_index] = bytes(line)
        bundle.write_bytes(b"".join(lines))
        assert not verify_bundle(bundle).ok, f"byte {offset} of line {line_index + 1} changed unnoticed"
