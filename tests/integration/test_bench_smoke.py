"""The benchmark runs end to end in quick mode and writes valid JSON (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_bench_run_quick_prints_one_json_object_per_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", "--repeats", "1"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures, "no figure"
    for figure in figures:
        assert {"figure", "unit", "govflow", "peer", "limit", "ratio_to_peer", "ratio_to_limit"} <= set(figure)
        assert figure["govflow"]["value"] > 0
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text(encoding="utf-8"))
    assert [f["figure"] for f in latest["figures"]] == [f["figure"] for f in figures]
