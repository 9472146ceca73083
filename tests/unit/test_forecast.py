"""At-risk forecasting: the remaining gates placed on the remaining meetings, against the deadline."""

from __future__ import annotations

from datetime import date

from governance import commands
from governance.forecast import forecast
from governance.reminders import plan_notifications
from governance.status import status_of
from tests.unit.lis import FEDERATED, Walk


def through_co_design() -> Walk:
    """The LIS as planned: federated endorsement in November, final agreement 13 December, priorities 16 December."""
    walk = Walk().through_drafting().on(date(2019, 11, 27))
    for body in FEDERATED:
        walk.meeting_vote("federated-endorsement", body, day=date(2019, 11, 26))
    walk.on(date(2019, 12, 13)).decide("final-agreement", "strategic-board", present=20, votes_for=18)
    walk.tasks("document-finalised")
    walk.on(date(2019, 12, 16)).decide("priorities-agreed", "government", mode="external")
    return walk


def test_a_fresh_lis_is_on_track_for_march_2020() -> None:
    outlook = forecast(Walk().instance, date(2019, 6, 3))

    assert not outlook.at_risk
    days = {p.gate: p.day for p in outlook.placements}
    assert days["evidence-agreed"] == date(2019, 9, 24)  # the last of the September Federated Boards
    assert days["final-agreement"] == date(2019, 12, 13)
    assert days["priorities-agreed"] == date(2019, 12, 16)  # government: the next working day after


def test_government_cannot_be_placed_inside_its_blackout() -> None:
    walk = Walk().through_drafting()
    walk.record(
        commands.reschedule_meeting(walk.instance, "strategic-board-2019-12-13", date(2019, 11, 28), "moved", walk.now)
    )

    days = {p.gate: p.day for p in forecast(walk.instance, date(2019, 11, 1)).placements}

    assert days["final-agreement"] == date(2019, 11, 28)
    assert days["priorities-agreed"] == date(2019, 12, 13)  # the pre-election period ends on 12 December


def test_a_rejection_by_government_in_february_puts_the_lis_at_risk_naming_the_gate_that_does_not_fit() -> None:
    walk = through_co_design().on(date(2020, 2, 10))
    walk.decide("lis-agreed", "government", "rejected", mode="external")
    assert walk.instance.phase == "drafting"

    outlook = forecast(walk.instance, date(2020, 2, 11))

    assert outlook.at_risk
    blocking = outlook.blocking
    assert blocking is not None and blocking.gate == "federated-endorsement"
    assert "no meeting of" in blocking.reason and blocking.day is None
    assert status_of(walk.instance, date(2020, 2, 11))["at_risk"]["gate"] == "federated-endorsement"


def test_the_at_risk_warning_goes_to_the_programme_lead_and_the_strategic_board_chair_from_t_minus_20() -> None:
    walk = through_co_design().on(date(2020, 2, 10))
    walk.decide("lis-agreed", "government", "rejected", mode="external")

    early = plan_notifications(walk.instance, date(2020, 2, 11))
    warnings = [n for n in early.notices if n.kind == "at_risk"]

    assert {n.send_on for n in warnings} == {date(2020, 3, 3)}  # T-20 working days before 31 March
    assert {n.recipient.email for n in warnings} >= {
        "lis-programme-lead@selep.example",
        "chair@strategic-board.selep.example",
    }
    assert all(n.context["gate_id"] == "federated-endorsement" for n in warnings)
    late = plan_notifications(walk.instance, date(2020, 3, 10))
    assert {n.send_on for n in late.notices if n.kind == "at_risk"} == {date(2020, 3, 10)}


def test_a_cancelled_last_meeting_puts_the_final_agreement_at_risk() -> None:
    walk = Walk().through_drafting().on(date(2019, 11, 27))
    for body in FEDERATED:
        walk.meeting_vote("federated-endorsement", body, day=date(2019, 11, 26))
    for meeting in ("strategic-board-2019-12-13", "strategic-board-2020-03-20"):
        walk.record(commands.cancel_meeting(walk.instance, meeting, "no quorum expected", walk.now))

    blocking = forecast(walk.instance, date(2019, 11, 27)).blocking

    assert blocking is not None and blocking.gate == "final-agreement"


def test_a_finished_or_superseded_instance_is_not_forecast() -> None:
    walk = Walk()
    walk.record(commands.supersede(walk.instance, "replaced", walk.now))

    outlook = forecast(walk.instance, date(2019, 7, 1))

    assert not outlook.active and not outlook.at_risk
    assert status_of(walk.instance, date(2019, 7, 1))["at_risk"]["at_risk"] is False


def test_status_keeps_its_keys_and_adds_the_forecast() -> None:
    status = status_of(Walk().instance, date(2019, 6, 3))

    assert {"gates", "next_deadlines", "deadline", "phase"} <= set(status)
    assert status["at_risk"]["at_risk"] is False
    assert status["at_risk"]["gates"][0]["gate"] == "approach-agreed"
