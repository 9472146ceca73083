"""Record the golden LIS histories once: ``python -m tests.golden.make_golden [--force]``.

Each story of ``tests/audit_stories.py`` is played through the services on a fresh
SQLite file under a simulated clock, signed with a throwaway key, and exported as an
audit bundle (``<story>.jsonl``) beside its expected replayed states
(``<story>.expected.json``: the final state and the state as of a few dates, by
occurred and by recorded time). ``tests/golden/test_golden.py`` replays them on every
run. The histories are records: if a change of the code changes an answer, write an
upcaster for the old events; do not record them again (hence ``--force``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.chain import format_timestamp
from tests.audit_stories import STORIES, at, play
from workflows.audit import ledger, signing
from workflows.audit.bundle import export_bundle
from workflows.audit.diff import state_view
from workflows.audit.log import SqlAuditLog
from workflows.audit.offline import load_bundle, verify_bundle
from workflows.audit.replay import BY_OCCURRED, BY_RECORDED, replay_as_of
from workflows.clock import FixedClock
from workflows.database import make_engine, migrate
from workflows.definition_file import parse_definition
from workflows.services import Services
from workflows.store.sql import SqlEventStore

HERE = Path(__file__).resolve().parent
INSTANCE = "selep-lis"
AS_OF = ("2019-09-25T12:00", "2019-10-04T23:59", "2019-12-13T23:59", "2020-01-21T23:59", "2020-03-31T23:59")


def expected_states(bundle: Path) -> dict[str, Any]:
    """The answers the golden test checks: the final state, and as of each date of :data:`AS_OF`."""
    texts, rows = load_bundle(bundle)
    definitions = {digest: parse_definition(text, digest[:12]) for digest, text in texts.items()}
    answers: dict[str, Any] = {"final": verify_bundle(bundle).status, "as_of": {}}
    for when in AS_OF:
        for by in (BY_OCCURRED, BY_RECORDED):
            replayed = replay_as_of(INSTANCE, rows, definitions.__getitem__, at(when), by)
            answers["as_of"][f"{when}/{by}"] = state_view(replayed)
    return answers


def record(name: str, folder: Path) -> Path:
    """Play one story and export it as a bundle into this folder."""
    url = f"sqlite:///{folder / 'golden.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        clock = FixedClock(datetime(2019, 6, 3, tzinfo=UTC))
        services = Services(store=SqlEventStore(engine), clock=clock, source="golden")
        play(services, clock, INSTANCE, STORIES[name](folder))
        key = folder / "throwaway.key"
        signing.ensure_key(key)
        signer = signing.load_signer(key)
        log = SqlAuditLog(engine)
        clock.set(at("2021-03-01T09:00"))
        ledger.create_checkpoint(
            services.store,
            log,
            public_key=signer.public_key,
            sign=signer.sign,
            now=clock.now(),
            actor="golden",
            meta={},
        )
        out = HERE / f"{name}.jsonl"
        export_bundle(services.store, log, INSTANCE, out, exported_at=format_timestamp(clock.now()))
        return out
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    force = "--force" in argv
    for name in STORIES:
        if (HERE / f"{name}.jsonl").exists() and not force:
            print(f"{name}: kept (recorded histories are not re-recorded; --force to overwrite)")
            continue
        with tempfile.TemporaryDirectory() as scratch:
            bundle = record(name, Path(scratch))
        answers = expected_states(bundle)
        (HERE / f"{name}.expected.json").write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: recorded {bundle.name} and {name}.expected.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
