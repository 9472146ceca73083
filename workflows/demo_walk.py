"""A short scripted walk through the LIS with the secretary's commands (``make demo``).

It runs the real CLI, command by command, on a fresh SQLite file in
``demo-output/`` under a simulated clock, and prints each command and its answer:
scoping to the Strategic Board's agreement of 4 October 2019 and the final draft
going to the Federated Boards, then the status and the history.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from workflows.cli import main

OUT = Path("demo-output")

STEPS: list[tuple[str, str]] = [
    ("2019-06-03T09:00", "start selep-lis-2019 --instance selep-lis --actor 'programme lead'"),
    ("2019-07-24T10:00", "task complete selep-lis evidence-review --actor 'programme lead'"),
    ("2019-07-24T10:05", "task complete selep-lis stakeholder-consultation --actor 'programme lead'"),
    ("2019-07-25T16:00", "task complete selep-lis engagement-plan --actor 'programme lead'"),
    (
        "2019-07-26T15:00",
        "decide selep-lis --gate approach-agreed --board secretariat --outcome approved --date 2019-07-26 "
        "--mode delegated --authority SB/2019/06/3 --actor 'lep chief executive'",
    ),
    ("2019-09-13T09:00", "task complete selep-lis evidence-base --actor 'programme lead'"),
    ("2019-09-13T09:05", "task complete selep-lis emerging-propositions --actor 'programme lead'"),
    (
        "2019-09-17T10:00",
        "decide selep-lis --gate evidence-agreed --board team-east-sussex --outcome endorsed --date 2019-09-16 "
        "--present 12 --for 11 --against 0 --abstain 1 --present-private 7 --present-public 5 "
        "--minute-ref TES/2019/09/4 --actor 'team east sussex secretary'",
    ),
    (
        "2019-09-18T10:00",
        "decide selep-lis --gate evidence-agreed --board success-essex --outcome endorsed-with-comments "
        "--date 2019-09-17 --present 9 --for 9 --comments 'strengthen the skills evidence' "
        "--actor 'success essex secretary'",
    ),
    (
        "2019-09-19T10:00",
        "decide selep-lis --gate evidence-agreed --board ose --outcome endorsed --date 2019-09-18 "
        "--present 10 --for 10 --actor 'ose secretary'",
    ),
    (
        "2019-09-25T11:00",
        "decide selep-lis --gate evidence-agreed --board kmep --outcome endorsed --date 2019-09-24 "
        "--present 21 --for 20 --abstain 1 --minute-ref KMEP/2019/09/7 --actor 'kmep secretary'",
    ),
    ("2019-09-30T09:00", "meeting schedule selep-lis strategic-board 2019-10-04 --actor 'strategic board secretary'"),
    (
        "2019-10-07T09:30",
        "decide selep-lis --gate structure-agreed --board strategic-board --outcome approved --date 2019-10-04 "
        "--present 20 --for 18 --against 0 --abstain 1 --conflicted 1 --minute-ref SB/2019/10/5 "
        "--declaration 'member 14: interest in a named proposition' --actor 'strategic board secretary'",
    ),
    ("2019-10-31T12:00", "task complete selep-lis draft-written --actor 'programme lead'"),
    ("2019-11-01T12:00", "task complete selep-lis wider-consultation --actor 'programme lead'"),
    ("2019-11-04T09:00", "document add selep-lis {draft} --actor 'programme lead'"),
    ("2019-11-04T09:10", "task complete selep-lis draft-shared --actor 'programme lead'"),
    (
        "2019-11-27T09:00",
        "decide selep-lis --gate federated-endorsement --board kmep --outcome endorsed --date 2019-11-26 "
        "--present 19 --for 19 --actor 'kmep secretary'",
    ),
    ("2019-11-27T09:30", "status selep-lis"),
    ("2019-11-27T09:30", "history selep-lis"),
]


def run(out: Path = OUT) -> int:
    """Run the walk into ``out`` (its database is replaced); returns the first failing exit code."""
    out.mkdir(parents=True, exist_ok=True)
    database = out / "govflow.db"
    for stale in out.glob("govflow.db*"):
        stale.unlink()
    draft = out / "drafts" / "lis-final-draft.pdf"
    draft.parent.mkdir(exist_ok=True)
    draft.write_bytes(b"%PDF-1.4\n% SELEP Local Industrial Strategy: final draft (demo file)\n")
    base = ["--db", f"sqlite:///{database}"]
    if main([*base, "init"]) != 0:
        return 1
    for moment, command in STEPS:
        argv = shlex.split(command.format(draft=draft))
        print(f"\n$ govflow --now {moment} {command.format(draft=draft)}", flush=True)
        code = main([*base, "--now", moment, *argv])
        if code != 0:
            return code
    print(f"\nThe database is {database}; try: govflow --db sqlite:///{database} status selep-lis --json")
    return 0


if __name__ == "__main__":
    sys.exit(run())
