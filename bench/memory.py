"""Peak memory of replaying a large log: every instance folded, one chunk of streams at a time.

The log is built by the audit benchmark's bulk builder; the replay runs in a fresh
process (``python bench/memory.py URL``) that folds every instance through
``Services.load_many`` in chunks, with a small instance cache, and reports its own
peak resident set size. A bare interpreter importing the same modules is measured
beside it, so the figure shows what the replay itself adds.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHUNK = 500


def _peak_mib() -> float:
    """This process's peak resident set size, in MiB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` keeps the high-water mark of the process
    before it exec'd (here, the whole benchmark that spawned it), so it would report the
    parent's peak, not the replay's.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def replay(url: str) -> dict[str, float]:
    """Fold every instance of the log at ``url``; the events folded and this process's peak."""
    from datetime import UTC, datetime

    from workflows.clock import FixedClock
    from workflows.database import make_engine
    from workflows.services import Services, is_instance_stream
    from workflows.store.sql import SqlEventStore

    engine = make_engine(url)
    services = Services(store=SqlEventStore(engine), clock=FixedClock(datetime(2020, 4, 1, tzinfo=UTC)), cache_size=64)
    ids = [s.stream_id for s in services.store.streams() if is_instance_stream(s.stream_id)]
    events = 0
    for start in range(0, len(ids), CHUNK):
        for instance in services.load_many(ids[start : start + CHUNK]).values():
            events += instance.version
    engine.dispose()
    return {"events": events, "instances": len(ids), "peak_mib": _peak_mib()}


def baseline() -> dict[str, float]:
    import workflows.services  # the same imports, no replay
    import workflows.store.sql  # noqa: F401

    return {"peak_mib": _peak_mib()}


def measure(url: str) -> tuple[dict[str, float], dict[str, float]]:
    """(replay, baseline) measured in fresh processes."""
    runs = []
    for argv in ([url], ["--baseline"]):
        done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append(json.loads(done.stdout))
    return runs[0], runs[1]


if __name__ == "__main__":
    result = baseline() if sys.argv[1:] == ["--baseline"] else replay(sys.argv[1])
    print(json.dumps(result))
