"""Several processes on one SQLite file: nothing lost, nothing duplicated.

Each test starts real ``govflow`` processes at the same moment. Exit codes are
0 (recorded), 1 (refused: the other secretary's decision is already there) or 3
(conflict: the other won the race; retry-able); the log stays gapless.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Cli

pytestmark = pytest.mark.slow


def _history(cli: Cli) -> list[dict[str, object]]:
    result = cli("history", "selep-lis", "--json")
    assert result.code == 0, result.err
    return list(result.json())


def _gapless(events: list[dict[str, object]]) -> None:
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))


def test_the_same_keyed_command_from_four_processes_records_once(lis_started: Cli) -> None:
    cli = lis_started
    args = ("task", "complete", "selep-lis", "evidence-review", "--key", "same-task", "--json")
    processes = [cli.spawn(*args, now="2019-07-01T10:00") for _ in range(4)]
    results = [(p.returncode, out, err) for p in processes for out, err in [p.communicate(timeout=60)]]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    answers = [json.loads(out) for _, out, _ in results]
    assert all(answer["events"] == answers[0]["events"] for answer in answers)
    assert sorted(answer["replayed"] for answer in answers) == [False, True, True, True]
    events = _history(cli)
    assert sum(1 for e in events if e["type"] == "TaskCompleted") == 1
    _gapless(events)


def test_two_secretaries_deciding_at_once_one_wins_and_nothing_is_duplicated(lis_started: Cli) -> None:
    cli = lis_started
    decide = [
        "decide",
        "selep-lis",
        "--gate",
        "approach-agreed",
        "--board",
        "secretariat",
        "--outcome",
        "approved",
        "--date",
        "2019-07-26",
        "--mode",
        "delegated",
        "--authority",
        "SB/2019/06/3",
    ]
    for round_ in range(3):
        processes = [cli.spawn(*decide, "--actor", f"secretary {n}", now="2019-07-26T12:00") for n in range(2)]
        errors = [p.communicate(timeout=60)[1] for p in processes]
        codes = sorted(p.returncode for p in processes)
        if round_ == 0:
            assert codes[0] == 0, errors
            assert codes[1] in (1, 3), errors
        else:
            assert codes == [1, 1], errors  # the gate has passed: every later attempt is refused
        assert not any("Traceback" in err for err in errors)
    events = _history(cli)
    assert sum(1 for e in events if e["type"] == "DecisionRecorded") == 1
    _gapless(events)


def test_many_processes_recording_at_once_lose_nothing(lis_started: Cli) -> None:
    cli = lis_started
    meetings = [f"2019-1{m}-{d:02d}" for m in (0, 1) for d in range(1, 7)]
    processes = [
        cli.spawn("meeting", "schedule", "selep-lis", "accountability-board", day, now="2019-09-01") for day in meetings
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    codes = [p.returncode for p in processes]
    assert not any("Traceback" in err for _, err in outputs)
    assert set(codes) <= {0, 3}
    events = _history(cli)
    _gapless(events)
    scheduled = {e["data"]["date"] for e in events if e["type"] == "MeetingScheduled"}  # type: ignore[index]
    recorded = {day for day, code in zip(meetings, codes, strict=True) if code == 0}
    assert recorded <= scheduled
    assert len(recorded) == sum(1 for e in events if e["data"].get("body") == "accountability-board")  # type: ignore[attr-defined]
