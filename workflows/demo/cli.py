"""The ``govflow demo`` command: the whole LIS sign-off on the embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    writer: argparse.ArgumentParser,
) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the LIS sign-off, June 2019 to March 2020, on a simulated clock",
        description=(
            "Walk a simulated clock day by day through a scenario: secretaries' steps, the worker's reminders "
            "to the embedded SMTP server, then audit verify, an audit bundle and report.html."
        ),
        parents=[common],
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    demo.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    demo.add_argument("--scenario", default="selep-lis-2019", help="scenario id or file (default: selep-lis-2019)")
    demo.add_argument("--fast", action="store_true", help="no day-by-day progress display")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from workflows.demo.app import run_demo, summary
    from workflows.demo.scenario import find_scenario, load_scenario

    scenario = load_scenario(find_scenario(args.scenario))
    console = Console(highlight=False)
    console.print(f"[bold]{scenario.title}[/]: {scenario.start} to {scenario.end} → {args.out}/")
    result = run_demo(scenario, args.out, force=args.force, fast=args.fast, console=console)
    summary(console, result)
    return 0 if result.verified else 4
