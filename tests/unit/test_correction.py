"""Corrections: an amendment event references the corrected one, which stays in the log."""

from __future__ import annotations

from datetime import date

import pytest

from governance import commands
from governance import events as ev
from governance.errors import CorruptHistory, NotApplicable, UnknownName
from governance.events import NewEvent
from governance.state import CORRECTION_ANNOTATES, CORRECTION_VOIDS
from governance.status import status_of
from tests.unit.lis import FEDERATED, Walk, at


def _version_of(walk: Walk, event_type: str, **match: object) -> int:
    """The stream version of the first event of a type whose payload matches."""
    for version, event in enumerate(walk.events, start=1):
        if event.type == event_type and all(event.data.get(k) == v for k, v in match.items()):
            return version
    raise AssertionError(f"no {event_type} {match}")


def _correct(walk: Walk, version: int, reason: str = "entered against the wrong board") -> list[NewEvent]:
    corrected = walk.events[version - 1]
    return walk.record(commands.correct_event(walk.instance, version, corrected.type, reason, walk.now))


def test_correcting_a_decision_of_an_open_gate_voids_it_and_the_body_must_decide_again() -> None:
    walk = Walk().through_scoping().on(date(2019, 9, 27))
    walk.meeting_vote("evidence-agreed", "kmep", day=date(2019, 9, 24))
    version = _version_of(walk, ev.DECISION_RECORDED, body="kmep")

    (correction,) = _correct(walk, version)

    assert correction.type == ev.EVENT_CORRECTED
    assert correction.data["effect"] == CORRECTION_VOIDS and correction.data["corrects"] == version
    decision = next(d for d in walk.instance.decisions if d.version == version)
    assert decision.void == "corrected: entered against the wrong board"
    board = next(
        b
        for g in status_of(walk.instance, date(2019, 9, 27))["gates"]
        if g["id"] == "evidence-agreed"
        for b in g["boards"]
        if b["id"] == "kmep"
    )
    assert board["must_decide_again"] and not board["decided"]
    walk.meeting_vote("evidence-agreed", "kmep", day=date(2019, 9, 24))  # no longer "already decided"
    assert walk.replayed() == walk.instance


def test_correcting_a_decision_of_a_passed_gate_only_annotates_it() -> None:
    walk = Walk().through_scoping().on(date(2019, 9, 27))
    walk.phase_tasks("evidence")
    for body in FEDERATED:
        walk.meeting_vote("evidence-agreed", body, day=date(2019, 9, 24))
    version = _version_of(walk, ev.DECISION_RECORDED, body="kmep")

    (correction,) = _correct(walk, version, "minute reference mistyped")

    assert correction.data["effect"] == CORRECTION_ANNOTATES
    assert "evidence-agreed" in walk.instance.passed
    assert all(d.void is None for d in walk.instance.decisions if d.gate == "evidence-agreed")
    status = status_of(walk.instance, date(2019, 9, 27))
    assert status["corrections"] == [
        {
            "version": len(walk.events),
            "corrects": version,
            "type": ev.DECISION_RECORDED,
            "effect": CORRECTION_ANNOTATES,
            "decision": correction.data["decision"],
            "reason": "minute reference mistyped",
        }
    ]
    assert walk.replayed() == walk.instance


def test_any_other_event_can_be_annotated_even_after_the_instance_is_superseded() -> None:
    walk = Walk().through_scoping()
    walk.record(commands.supersede(walk.instance, "replaced", walk.now))
    task = _version_of(walk, ev.TASK_COMPLETED)

    (correction,) = _correct(walk, task, "completed on the 24th, not the 26th")

    assert correction.data == {
        "corrects": task,
        "type": ev.TASK_COMPLETED,
        "reason": "completed on the 24th, not the 26th",
        "effect": CORRECTION_ANNOTATES,
    }
    assert walk.instance.phase == "superseded"
    assert walk.replayed() == walk.instance


def test_a_correction_names_an_existing_event_and_gives_a_reason() -> None:
    walk = Walk()
    with pytest.raises(UnknownName):
        commands.correct_event(walk.instance, walk.instance.version + 1, ev.TASK_COMPLETED, "why", walk.now)
    with pytest.raises(NotApplicable):
        commands.correct_event(walk.instance, 1, ev.INSTANCE_STARTED, "  ", walk.now)


def test_the_fold_refuses_a_correction_that_voids_a_decision_of_a_passed_gate() -> None:
    walk = Walk().through_scoping()
    version = _version_of(walk, ev.DECISION_RECORDED, gate="approach-agreed")
    decision = walk.instance.decisions[0]
    forged = NewEvent(
        ev.EVENT_CORRECTED,
        {
            "corrects": version,
            "type": ev.DECISION_RECORDED,
            "reason": "x",
            "effect": CORRECTION_VOIDS,
            "decision": decision.id,
        },
        at(date(2019, 8, 1)),
    )
    with pytest.raises(CorruptHistory, match="cannot void"):
        walk.instance.apply(forged)
