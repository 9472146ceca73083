"""The governance rules of DOMAIN.md, enforced by the domain (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from governance import commands
from governance.errors import (
    BlackoutInForce,
    BodyNotExpected,
    CorruptHistory,
    DateOutOfRange,
    GateNotOpen,
    Inquorate,
    InstanceNotActive,
    ModeNotAllowed,
    NotApplicable,
    UnknownName,
    VotesInvalid,
)
from governance.events import NewEvent
from governance.state import begin
from governance.status import status_of
from tests.unit.lis import FEDERATED, Walk, lis, variant


def test_a_phase_is_left_only_when_its_gate_passed_and_its_tasks_are_done() -> None:
    walk = Walk().on(date(2019, 7, 26))
    walk.decide("approach-agreed", "secretariat", mode="delegated", authority="SB/2019/06/3")
    assert walk.instance.phase == "scoping"
    assert "approach-agreed" in walk.instance.passed
    walk.phase_tasks("scoping")
    assert walk.instance.phase == "evidence"
    assert walk.replayed() == walk.instance


def test_tasks_alone_do_not_leave_a_phase_whose_gate_is_open() -> None:
    walk = Walk().on(date(2019, 7, 26))
    walk.phase_tasks("scoping")
    assert walk.instance.phase == "scoping"


def test_a_body_the_gate_does_not_need_cannot_decide() -> None:
    walk = Walk().on(date(2019, 7, 26))
    with pytest.raises(BodyNotExpected, match="needs: secretariat"):
        walk.decide("approach-agreed", "strategic-board", present=20, votes_for=20)


def test_a_gate_of_a_later_phase_is_not_open() -> None:
    walk = Walk().on(date(2019, 7, 26))
    with pytest.raises(GateNotOpen, match="belongs to phase 'drafting'"):
        walk.decide("structure-agreed", "strategic-board", present=20, votes_for=18)


def test_final_agreement_waits_for_the_federated_endorsement() -> None:
    walk = Walk().through_drafting()
    assert walk.instance.phase == "sign-off"
    with pytest.raises(GateNotOpen, match="waits for 'federated-endorsement'"):
        walk.decide("final-agreement", "strategic-board", present=20, votes_for=18)


def test_an_inquorate_meeting_cannot_approve() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    with pytest.raises(Inquorate, match="8 counted towards quorum, 9 required"):
        walk.decide("structure-agreed", "strategic-board", present=9, votes_for=7, against=0, conflicted=1)
    assert walk.instance.passed.get("structure-agreed") is None


def test_conflicted_members_count_towards_quorum_where_the_board_says_so() -> None:
    definition = variant('fraction = "1/3"            # default', 'conflicted_count = true\n  fraction = "1/3"  #')
    walk = Walk(definition).through_evidence().on(date(2019, 10, 4))
    walk.decide("structure-agreed", "strategic-board", present=9, votes_for=7, against=0, conflicted=1)
    assert "structure-agreed" in walk.instance.passed


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        ({"present": 10, "votes_for": 8, "against": 2, "abstain": 1}, "more than the 10 present"),
        ({"present": 10, "votes_for": -1}, "cannot be negative"),
        ({"present": 30, "votes_for": 20}, "30 present but 'strategic-board' has 27 members"),
        ({"present": 20, "votes_for": 5, "against": 9}, "'approved' with 5 for and 9 against"),
    ],
)
def test_votes_that_do_not_add_up_are_refused(votes: dict[str, int], message: str) -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    with pytest.raises(VotesInvalid, match=message):
        walk.decide("structure-agreed", "strategic-board", **votes)  # type: ignore[arg-type]


def test_a_decision_dated_before_the_start_or_after_now_is_refused() -> None:
    walk = Walk(started=date(2019, 6, 3)).on(date(2019, 7, 26))
    with pytest.raises(DateOutOfRange, match="before the instance started"):
        walk.decide("approach-agreed", "secretariat", day=date(2019, 5, 1), mode="delegated", authority="x")
    with pytest.raises(DateOutOfRange, match="in the future"):
        walk.decide("approach-agreed", "secretariat", day=date(2019, 7, 27), mode="delegated", authority="x")


def test_delegated_and_chairs_action_decisions_must_cite_their_authority() -> None:
    walk = Walk().on(date(2019, 7, 26))
    with pytest.raises(ModeNotAllowed, match="--authority"):
        walk.decide("approach-agreed", "secretariat", mode="delegated")
    with pytest.raises(ModeNotAllowed, match="decides by delegated"):
        walk.decide("approach-agreed", "secretariat", mode="meeting", present=1, votes_for=1)


def test_approval_with_conditions_passes_the_gate_only_when_every_condition_is_discharged() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    walk.decide(
        "structure-agreed",
        "strategic-board",
        "approved-with-conditions",
        present=20,
        votes_for=18,
        conditions=("add a skills annex", "cite the evidence base"),
        condition_due=date(2019, 10, 31),
    )
    gate = walk.definition.gate_by_id["structure-agreed"]
    assert walk.instance.gate_status(gate) == "conditional"
    first, second = sorted(walk.instance.conditions)
    walk.on(date(2019, 10, 10)).record(commands.discharge_condition(walk.instance, first, walk.now))
    assert walk.instance.gate_status(gate) == "conditional"
    walk.on(date(2019, 10, 20)).record(commands.discharge_condition(walk.instance, second, walk.now))
    assert walk.instance.passed["structure-agreed"] == date(2019, 10, 20)
    assert walk.replayed() == walk.instance


def test_a_federated_board_that_does_not_endorse_records_dissent_without_a_veto() -> None:
    walk = Walk().through_scoping().on(date(2019, 9, 27))
    walk.phase_tasks("evidence")
    walk.meeting_vote("evidence-agreed", "kmep", "not-endorsed", day=date(2019, 9, 24))
    for body in FEDERATED[:1] + FEDERATED[2:]:
        walk.meeting_vote("evidence-agreed", body, day=date(2019, 9, 24))
    assert walk.instance.phase == "drafting"
    gate = status_of(walk.instance, date(2019, 9, 27))["gates"][1]
    assert gate["dissent"] == ["kmep"]


def test_in_strict_mode_a_federated_board_that_does_not_endorse_blocks_the_gate() -> None:
    definition = variant("strict = false              # they endorse", "strict = true  #")
    walk = Walk(definition).through_scoping().on(date(2019, 9, 27))
    walk.phase_tasks("evidence")
    walk.meeting_vote("evidence-agreed", "kmep", "not-endorsed", day=date(2019, 9, 24))
    for body in ("success-essex", "ose", "team-east-sussex"):
        walk.meeting_vote("evidence-agreed", body, day=date(2019, 9, 24))
    assert walk.instance.phase == "evidence"
    gate = walk.definition.gate_by_id["evidence-agreed"]
    assert walk.instance.gate_status(gate) == "open"


def test_a_rejection_follows_the_route_back_to_drafting_and_voids_the_old_decisions() -> None:
    walk = Walk().through_drafting()
    walk.on(date(2019, 11, 26))
    walk.meeting_vote("federated-endorsement", "kmep", "endorsed")
    walk.meeting_vote("federated-endorsement", "ose", "rejected", day=date(2019, 11, 20))
    assert walk.instance.phase == "drafting"
    assert walk.instance.live_decisions("federated-endorsement") == []
    assert "draft-written" not in walk.instance.tasks_done
    assert "structure-agreed" in walk.instance.passed
    assert walk.replayed() == walk.instance


def test_deferred_noted_and_returned_leave_the_gate_open() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    walk.decide("structure-agreed", "strategic-board", "deferred", present=20, deferred_to=date(2019, 12, 13))
    walk.decide("structure-agreed", "strategic-board", "noted", present=20)
    walk.decide("structure-agreed", "strategic-board", "returned", present=20)
    gate = walk.definition.gate_by_id["structure-agreed"]
    assert walk.instance.gate_status(gate) == "open"


def test_a_deferral_appears_among_the_next_deadlines() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    walk.decide("structure-agreed", "strategic-board", "deferred", present=20, deferred_to=date(2019, 10, 18))
    kinds = {(d["kind"], d["date"]) for d in status_of(walk.instance, date(2019, 10, 4))["next_deadlines"]}
    assert ("deferred", "2019-10-18") in kinds


def test_written_procedure_needs_a_majority_of_all_eligible_members() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    with pytest.raises(VotesInvalid, match="majority of all 27 eligible members"):
        walk.decide("structure-agreed", "strategic-board", mode="written", votes_for=13, against=0)
    walk.decide("structure-agreed", "strategic-board", mode="written", votes_for=14, against=2)
    assert "structure-agreed" in walk.instance.passed


def test_a_new_document_version_voids_decisions_of_gates_not_yet_passed() -> None:
    walk = Walk().through_drafting()
    walk.on(date(2019, 11, 26)).meeting_vote("federated-endorsement", "kmep")
    walk.record(commands.add_document(walk.instance, "b" * 64, "lis-draft-v2.pdf", 1200, walk.now))
    status = status_of(walk.instance, date(2019, 11, 26))
    gate = next(g for g in status["gates"] if g["id"] == "federated-endorsement")
    kmep = next(b for b in gate["boards"] if b["id"] == "kmep")
    assert kmep == kmep | {"decided": False, "must_decide_again": True}
    assert walk.replayed() == walk.instance


def test_the_same_document_cannot_be_registered_twice_in_a_row() -> None:
    walk = Walk().through_drafting(document="c" * 64)
    with pytest.raises(NotApplicable, match="already document version 1"):
        commands.add_document(walk.instance, "c" * 64, "again.pdf", 1, walk.now)


def test_a_body_that_has_decided_cannot_decide_the_same_gate_again() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    walk.on(date(2019, 10, 4))
    walk.decide("structure-agreed", "strategic-board", "deferred", present=20)
    walk.decide("structure-agreed", "strategic-board", present=20, votes_for=18)
    with pytest.raises(GateNotOpen, match="passed on 2019-10-04"):
        walk.decide("structure-agreed", "strategic-board", present=20, votes_for=18)


def test_government_cannot_agree_during_the_pre_election_blackout() -> None:
    walk = Walk().through_drafting().on(date(2019, 11, 29))
    for body in FEDERATED:
        walk.meeting_vote("federated-endorsement", body, day=date(2019, 11, 26))
    walk.meeting_vote("final-agreement", "strategic-board", "approved", day=date(2019, 11, 29))
    walk.phase_tasks("sign-off")
    assert walk.instance.phase == "co-design"
    with pytest.raises(BlackoutInForce, match="pre-election-2019"):
        walk.decide("priorities-agreed", "government", day=date(2019, 11, 29))


def test_pause_resume_and_supersede_are_events_with_reasons() -> None:
    walk = Walk().through_scoping()
    walk.record(commands.pause(walk.instance, "purdah", walk.now))
    assert walk.instance.phase == "paused"
    with pytest.raises(InstanceNotActive):
        walk.tasks("evidence-base")
    walk.record(commands.resume(walk.instance, "election over", walk.now))
    assert walk.instance.phase == "evidence"
    walk.record(commands.supersede(walk.instance, "replaced by the recovery strategy", walk.now))
    assert walk.instance.phase == "superseded"
    with pytest.raises(InstanceNotActive):
        commands.pause(walk.instance, "again", walk.now)
    assert walk.replayed() == walk.instance


def test_resume_is_refused_when_not_paused() -> None:
    walk = Walk()
    with pytest.raises(NotApplicable, match="not paused"):
        commands.resume(walk.instance, "x", walk.now)


def test_the_deadline_can_be_extended_with_a_reason() -> None:
    walk = Walk()
    walk.record(commands.extend_deadline(walk.instance, date(2020, 9, 30), "covid", walk.now))
    assert walk.instance.deadline == date(2020, 9, 30)
    assert status_of(walk.instance, date(2019, 6, 3))["deadline"] == "2020-09-30"


def test_changing_a_planned_meeting_of_one_instance_leaves_the_others_of_its_definition_alone() -> None:
    definition = lis()
    changed, other = Walk(definition), Walk(definition)
    planned = "strategic-board-2019-10-04"
    changed.record(commands.schedule_meeting(changed.instance, "strategic-board", date(2019, 10, 4), changed.now))
    changed.record(commands.reschedule_meeting(changed.instance, planned, date(2019, 10, 11), "x", changed.now))
    changed.record(commands.cancel_meeting(changed.instance, planned, "no business", changed.now))

    untouched = other.instance.meetings[planned]
    assert (untouched.day, untouched.confirmed, untouched.cancelled, untouched.moves) == (
        date(2019, 10, 4),
        False,
        None,
        (),
    )
    assert Walk(definition).instance.meetings == other.instance.meetings


def test_a_meeting_can_be_confirmed_rescheduled_and_cancelled() -> None:
    walk = Walk()
    walk.record(commands.schedule_meeting(walk.instance, "strategic-board", date(2019, 10, 4), walk.now))
    meeting = walk.instance.meetings["strategic-board-2019-10-04"]
    assert meeting.confirmed
    walk.record(
        commands.reschedule_meeting(walk.instance, meeting.id, date(2019, 10, 11), "chair unavailable", walk.now)
    )
    assert walk.instance.meetings[meeting.id].day == date(2019, 10, 11)
    walk.record(commands.cancel_meeting(walk.instance, meeting.id, "no business", walk.now))
    with pytest.raises(NotApplicable, match="cancelled"):
        commands.reschedule_meeting(walk.instance, meeting.id, date(2019, 10, 18), "x", walk.now)
    assert walk.replayed() == walk.instance


def test_unknown_gates_bodies_tasks_and_outcomes_are_named() -> None:
    walk = Walk().on(date(2019, 7, 26))
    with pytest.raises(UnknownName, match="unknown gate 'approach'"):
        walk.decide("approach", "secretariat")
    with pytest.raises(UnknownName, match="unknown outcome 'yes'"):
        walk.decide("approach-agreed", "secretariat", "yes")
    with pytest.raises(UnknownName, match="unknown task"):
        walk.tasks("no-such-task")


def test_the_whole_lis_reaches_agreed_and_replays_to_the_same_state() -> None:
    walk = Walk().through_drafting().on(date(2019, 11, 29))
    for body in FEDERATED:
        walk.meeting_vote("federated-endorsement", body, day=date(2019, 11, 26))
    walk.meeting_vote("final-agreement", "strategic-board", "approved", day=date(2019, 11, 29))
    walk.phase_tasks("sign-off")
    walk.on(date(2019, 12, 16)).decide("priorities-agreed", "government")
    walk.phase_tasks("co-design")
    walk.on(date(2020, 3, 20)).phase_tasks("negotiation")
    walk.decide("lis-agreed", "government")
    assert walk.instance.phase == "agreed"
    assert not walk.instance.active
    assert walk.replayed() == walk.instance


def test_a_gate_found_passable_is_checked_afresh_once_the_state_has_changed() -> None:
    # The fold checks every GatePassed against the state it is applied to. A command asks
    # first and the answer is remembered for that version, so the event it then makes is not
    # checked twice; an event in between (here, a body's decision changed to "deferred")
    # must make the check run again, and refuse the pass.
    walk = Walk().through_evidence()
    passed_at = next(
        i for i, e in enumerate(walk.events) if e.type == "GatePassed" and e.data["gate"] == "evidence-agreed"
    )
    vote = next(
        e for e in walk.events[:passed_at] if e.type == "DecisionRecorded" and e.data["gate"] == "evidence-agreed"
    )
    first, *rest = walk.events[:passed_at]
    instance = begin("selep-lis", walk.definition, first.data)
    for event in rest:
        instance.apply(event)
    gate = walk.definition.gate_by_id["evidence-agreed"]
    assert instance.gate_can_pass(gate)

    deferred = {**vote.data, "decision": f"evidence-agreed/{vote.data['body']}/99", "outcome": "deferred"}
    instance.apply(NewEvent("DecisionRecorded", deferred, vote.occurred_at))
    assert not instance.gate_can_pass(gate)
    with pytest.raises(CorruptHistory, match="evidence-agreed' cannot pass"):
        instance.apply(walk.events[passed_at])
