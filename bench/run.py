"""Run the benchmark: every figure for govflow beside its peers and the raw limit, in one run.

    python bench/run.py [--quick] [--json] [--repeats N] [--only NAME ...] [--postgres URL]

Each figure is measured ``--repeats`` times (5 by default, 3 with ``--quick``,
which also uses smaller sizes); the table shows medians, min–max and the ratios
to the peer and to the limit measured in the same run. Results are written as
JSON to ``bench/results/``. ``--json`` prints the JSON list instead of the table.
The PostgreSQL figures run only with ``--postgres URL`` (or ``GOVFLOW_TEST_POSTGRES_URL``);
``--only postgres`` names all three of their groups.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(ROOT))

from bench import registry  # noqa: E402
from bench.common import Figure, Series  # noqa: E402
from bench.registry import FIGURES, GROUPS  # noqa: E402


def machine() -> dict[str, object]:
    import os
    import sqlite3

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def _cell(series: Series | None) -> str:
    if series is None or not series.values:
        return "—"
    return f"{_fmt(series.median)} ({_fmt(min(series.values))}–{_fmt(max(series.values))})"


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | unit | govflow | peer | limit | vs peer | vs limit | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        data = figure.as_json()
        peer = figure.best_peer
        peer_cell = f"{peer.name}: {_cell(peer)}" if peer else "—"
        limit_cell = f"{figure.limit.name}: {_cell(figure.limit)}" if figure.limit else "—"
        lines.append(
            f"| {figure.figure} | {figure.unit} | {_cell(figure.govflow)} | {peer_cell} | {limit_cell} | "
            f"{_fmt(data['ratio_to_peer'])} | {_fmt(data['ratio_to_limit'])} | {figure.target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and 3 repeats")
    parser.add_argument("--json", action="store_true", help="print the JSON list, not the table")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help=f"figures to run: {', '.join([*FIGURES, *GROUPS])}")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server for the PostgreSQL figures")
    args = parser.parse_args(argv)
    registry.postgres_server = args.postgres
    repeats = args.repeats or (3 if args.quick else 5)
    only = None if args.only is None else {name for given in args.only for name in GROUPS.get(given, (given,))}
    chosen: dict[str, Callable[[bool, int], Figure | list[Figure]]] = {
        name: run for name, run in FIGURES.items() if only is None or name in only
    }
    unknown = (only or set()) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    figures = []
    for name, run in chosen.items():
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        made = run(args.quick, repeats)
        figures.extend(made if isinstance(made, list) else [made])
    results = [f.as_json() for f in figures]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"machine": machine(), "quick": args.quick, "repeats": repeats, "figures": results}
    (out / f"bench-{stamp}.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / "latest.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(figures))
        print(f"\nmachine: {json.dumps(machine())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
