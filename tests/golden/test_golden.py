"""Replay the recorded LIS histories on every run: the answers must not change.

If one does, the fold changed meaning for events already in someone's log: write an
upcaster for the old events instead of recording the history again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden.make_golden import HERE, expected_states
from workflows.audit.offline import verify_bundle

GOLDEN = sorted(HERE.glob("*.jsonl"))


def holds(actual: Any, expected: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected``; keys added to the status since are allowed."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for key, value in expected.items() for d in holds(actual.get(key, KeyError), value, f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (a, e) in enumerate(zip(actual, expected, strict=True)) for d in holds(a, e, f"{where}[{i}]")]
    return [] if actual == expected else [f"{where}: {actual!r} != {expected!r}"]


def test_there_are_golden_histories() -> None:
    assert {p.stem for p in GOLDEN} == {"normal", "rejection-loop", "paused-superseded"}


@pytest.mark.parametrize("bundle", GOLDEN, ids=lambda p: p.stem)
def test_a_recorded_history_still_verifies_and_replays_to_the_same_states(bundle: Path) -> None:
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.covered == report.events, "every event is proven in the signed checkpoint"
    expected = json.loads(bundle.with_suffix(".expected.json").read_text(encoding="utf-8"))
    actual = expected_states(bundle)
    assert holds(actual["final"], expected["final"]) == []
    for moment, state in expected["as_of"].items():
        assert holds(actual["as_of"][moment], state, moment) == []
