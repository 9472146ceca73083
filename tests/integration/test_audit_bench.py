"""The audit benchmark runs end to end on a small log (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import audit_bench


def test_the_audit_benchmark_runs_on_a_small_log(tmp_path: Path) -> None:
    assert audit_bench.main(["--events", "2000", "--repeats", "1", "--out", str(tmp_path)]) == 0
    (result,) = tmp_path.glob("audit-2000.json")
    figures = json.loads(result.read_text(encoding="utf-8"))
    assert [f["unit"] for f in figures] == ["events/s", "events/s"]
    assert all(f["govflow"]["value"] > 0 and f["limit"]["value"] > 0 for f in figures)
