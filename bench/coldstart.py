"""Start-up cost: ``govflow status`` as a fresh process beside ``python -c pass``.

Both are run alternately, so that a burst of load on the machine hits both alike;
the figure is the median wall time of each, and the difference is what govflow
adds to a bare interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.common import scratch


def _seconds(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def measure(runs: int) -> tuple[list[float], list[float]]:
    """(govflow status seconds, python -c pass seconds), ``runs`` of each."""
    with scratch("coldstart") as folder:
        database = f"sqlite:///{folder / 'govflow.db'}"
        script = Path(sys.executable).with_name("govflow")  # the console script users run
        launcher = [str(script)] if script.exists() else [sys.executable, "-m", "workflows.cli"]
        base = [*launcher, "--db", database]
        # Run in the scratch folder: `init` writes the signing key beside the configuration.
        subprocess.run([*base, "init"], check=True, stdout=subprocess.DEVNULL, cwd=folder)
        subprocess.run(
            [*base, "--now", "2019-06-03T09:00", "start", "selep-lis-2019", "--instance", "selep-lis"],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=folder,
        )
        status = [*base, "--now", "2019-10-01", "status", "selep-lis"]
        bare = [sys.executable, "-c", "pass"]
        _seconds(status, folder)  # warm the file cache once
        govflow, python = [], []
        for _ in range(runs):
            govflow.append(_seconds(status, folder))
            python.append(_seconds(bare, folder))
    return govflow, python
