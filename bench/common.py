"""What every benchmark figure shares: the result record, repeats and medians.

A figure is measured ``repeats`` times in the same run for govflow, its peer and
the machine's raw limit; only the ratios between them are meaningful on a shared,
noisy machine, so every figure reports them.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Series:
    """Repeated measurements of one thing, in the figure's unit."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.median,
            "min": min(self.values, default=None),
            "max": max(self.values, default=None),
            "runs": self.values,
        }


@dataclass
class Figure:
    """One row of the table: govflow beside its peer and the raw limit of the machine."""

    figure: str
    unit: str
    higher_is_better: bool
    govflow: Series
    peers: list[Series] = field(default_factory=list)
    limit: Series | None = None
    target: str = ""
    notes: str = ""

    def _ratio(self, other: Series | None) -> float | None:
        if other is None or not other.values or not self.govflow.values:
            return None
        if self.higher_is_better:
            return self.govflow.median / other.median if other.median else None
        return other.median / self.govflow.median if self.govflow.median else None

    @property
    def best_peer(self) -> Series | None:
        measured = [p for p in self.peers if p.values]
        if not measured:
            return None
        pick = max if self.higher_is_better else min
        return pick(measured, key=lambda p: p.median)

    def as_json(self) -> dict[str, Any]:
        peer = self.best_peer
        return {
            "figure": self.figure,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "govflow": self.govflow.as_json(),
            "peer": peer.as_json() if peer else None,
            "peers": [p.as_json() for p in self.peers],
            "limit": self.limit.as_json() if self.limit else None,
            "ratio_to_peer": self._ratio(peer),
            "ratio_to_peers": {p.name: self._ratio(p) for p in self.peers},
            "ratio_to_limit": self._ratio(self.limit),
            "target": self.target,
            "notes": self.notes,
        }


def paired(ours: Sequence[float], theirs: Sequence[float], label: str) -> str:
    """``label`` in each repeat and its median, for a figure's notes.

    Contenders taking turns met the same conditions within a repeat: their ratio there is
    steadier than the ratio of their medians.
    """
    ratios = [mine / other for mine, other in zip(ours, theirs, strict=True)]
    return f"{label} in each repeat: {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(action: Callable[[], Any]) -> float:
    """Seconds taken by ``action``, from a clean slate.

    The cyclic collector runs first, off the clock: a contender's set-up (loading
    thousands of instances, aggregates or workflows) otherwise leaves its objects to the
    first full collection, which then falls inside the measured loop. ``timeit`` goes
    further and turns the collector off while timing; here it stays on, so what the
    measured work itself allocates is still collected as it would be.
    """
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def interleaved(actions: Sequence[Callable[[int], object]], count: int, blocks: int = 20) -> list[float]:
    """Seconds each action took for ``action(index)`` over ``range(count)``, the actions taking turns.

    The indices are cut into ``blocks`` blocks and every action runs a block before any
    runs the next, so a neighbour's burst of work on a shared machine slows each
    contender alike instead of whichever was running alone at that moment.
    """
    seconds = [0.0] * len(actions)
    size = max(1, -(-count // blocks))
    gc.collect()  # as in ``timed``
    for first in range(0, count, size):
        block = range(first, min(first + size, count))
        for number, action in enumerate(actions):
            start = time.perf_counter()
            for index in block:
                action(index)
            seconds[number] += time.perf_counter() - start
    return seconds


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder for one measurement's files."""
    with tempfile.TemporaryDirectory(prefix=f"govflow-bench-{prefix}-") as folder:
        yield Path(folder)


def asdict_shallow(value: Any) -> dict[str, Any]:
    return asdict(value)
