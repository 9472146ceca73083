"""The reminder plan is derived from the instance alone: the ladder of DOMAIN.md rule 9, in working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from governance import commands
from governance.reminders import KINDS, Notice, Plan, plan_notifications, withdrawal_reason
from governance.state import Instance
from notifications.samples import SAMPLE_CONTEXT
from notifications.templates import KINDS as TEMPLATE_KINDS
from tests.unit.lis import FEDERATED, Walk, at, variant
from tests.unit.recording import recorded

LONDON = ZoneInfo("Europe/London")
SB_OCT = "strategic-board-2019-10-04"
SB_DEC = "strategic-board-2019-12-13"


def plan_of(instance: Instance, today: date = date(2019, 6, 3)) -> Plan:
    return plan_notifications(instance, today)


def sends(plan: Plan, subject: str) -> dict[str, date]:
    """Rule id -> send day, for the notices about one subject (one per rule, whoever gets it)."""
    return {n.rule: n.send_on for n in plan.notices if n.subject == subject}


def one(plan: Plan, rule: str, subject: str) -> Notice:
    return next(n for n in plan.notices if n.rule == rule and n.subject == subject)


def test_the_strategic_board_of_4_october_2019_has_papers_by_26_september_and_minutes_by_18_october() -> None:
    plan = plan_of(Walk().instance)

    assert one(plan, "pack-publication", SB_OCT).context["publish_by"] == "2019-09-26"
    assert one(plan, "draft-minutes", SB_OCT).context["minutes_due"] == "2019-10-18"
    assert sends(plan, SB_OCT) == {
        "call-for-papers": date(2019, 9, 13),  # T-15
        "paper-deadline": date(2019, 9, 20),  # T-10
        "paper-overdue": date(2019, 9, 24),  # T-8
        "paper-overdue-chair": date(2019, 9, 26),  # T-6
        "pack-publication": date(2019, 9, 26),  # 5 clear working days before: the last day to publish
        "quorum-check": date(2019, 10, 3),  # T-1
        "draft-minutes": date(2019, 10, 11),  # +5
        "draft-minutes-overdue": date(2019, 10, 16),  # +8
        "draft-minutes-breach": date(2019, 10, 21),  # the working day after the 10th clear day
    }


def test_the_strategic_board_of_13_december_2019_has_papers_by_5_december_and_minutes_by_31_december() -> None:
    plan = plan_of(Walk().instance)

    assert one(plan, "pack-publication", SB_DEC).send_on == date(2019, 12, 5)
    assert one(plan, "pack-publication", SB_DEC).context["publish_by"] == "2019-12-05"
    breach = one(plan, "draft-minutes-breach", SB_DEC)
    assert breach.context["minutes_due"] == "2019-12-31"
    assert breach.context["breached"] is True
    assert breach.send_on == date(2020, 1, 2)  # 1 January is a bank holiday


def test_every_reminder_goes_out_at_nine_on_a_working_day_whatever_the_clock_change() -> None:
    instance = Walk().instance
    plan = plan_of(instance)

    for notice in plan.notices:
        local = notice.due_at.astimezone(LONDON)
        assert local.time() == time(9, 0), notice.key
        assert instance.calendar.is_working_day(local.date()), notice.key
    # Summer time ended on 27 October 2019 and began again on 29 March 2020.
    for day, utc_hour in (
        (date(2019, 10, 21), 8),
        (date(2019, 10, 30), 9),
        (date(2020, 3, 27), 9),
        (date(2020, 4, 1), 8),
    ):
        on_day = [n for n in plan.notices if n.send_on == day]
        assert on_day and {n.due_at for n in on_day} == {datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)}


def test_each_notice_has_one_key_of_instance_rule_subject_target_and_recipient() -> None:
    plan = plan_of(Walk().instance)

    keys = [n.key for n in plan.notices]
    assert len(keys) == len(set(keys))
    notice = one(plan, "call-for-papers", SB_OCT)
    assert notice.key.startswith(f"selep-lis/call-for-papers/{SB_OCT}/2019-10-04/")


def test_roles_resolve_to_the_body_concerned_first_and_the_programme_otherwise() -> None:
    plan = plan_of(Walk().instance)

    call = {n.recipient.email for n in plan.notices if n.rule == "call-for-papers" and n.subject == SB_OCT}
    chair = {n.recipient.email for n in plan.notices if n.rule == "paper-overdue-chair" and n.subject == SB_OCT}
    assert call == {"secretary@strategic-board.selep.example", "lead-officer@strategic-board.selep.example"}
    assert chair == {"chair@strategic-board.selep.example", "chief-executive@selep.example"}
    recipient = one(plan, "call-for-papers", "kmep-2019-09-24").context["recipient_role"]
    assert recipient in (
        "Secretary, Kent & Medway Economic Partnership",
        "Lead officer, Kent & Medway Economic Partnership",
    )


def test_a_rung_no_template_can_render_is_reported_not_dropped_silently() -> None:
    rung = (
        '[[reminders]]\nid = "gate-due"\nanchor = "gate-due"\noffset = -10\n'
        'template = "gate-due"\nto = ["programme-lead"]\n\n'
    )
    definition = variant("# Gates, around their due date.\n", "# Gates, around their due date.\n" + rung)
    plan = plan_of(Walk(definition).instance)

    assert any("'gate-due'" in problem for problem in plan.problems)
    assert not any(n.rule == "gate-due" for n in plan.notices)


def test_each_context_has_exactly_the_variables_its_template_expects() -> None:
    walk = Walk().through_drafting()
    walk.on(date(2019, 11, 27))
    for body in FEDERATED:
        walk.meeting_vote("federated-endorsement", body, day=date(2019, 11, 26))
    walk.on(date(2019, 12, 13)).decide(
        "final-agreement",
        "strategic-board",
        "approved-with-conditions",
        present=20,
        votes_for=18,
        conditions=("add the skills annex",),
        condition_owner="programme lead",
        condition_due=date(2020, 3, 30),
    )
    plan = plan_notifications(walk.instance, date(2020, 3, 10), events=recorded(walk))

    assert set(KINDS) == set(TEMPLATE_KINDS)
    seen = {n.kind for n in plan.notices}
    assert {"decision_recorded", "gate_passed", "condition_due", "at_risk", "gate_overdue", "escalation"} <= seen
    for notice in plan.notices:
        assert set(notice.context) == set(SAMPLE_CONTEXT[notice.kind]), notice.key


def test_a_notice_concerning_a_body_in_a_blackout_is_held_to_the_first_working_day_after_it() -> None:
    definition = variant("due = 2019-12-31            # default: end of the co-design window", "due = 2019-11-29")
    plan = plan_of(Walk(definition).instance)

    held = one(plan, "gate-overdue", "priorities-agreed")
    assert held.send_on == date(2019, 12, 13)  # +1 is 2 December, inside the pre-election period
    assert "held from 2019-12-02 to 2019-12-13 by blackout 'pre-election-2019'" in held.reason


def test_rescheduling_a_meeting_replaces_its_reminders_and_says_why_the_old_ones_went() -> None:
    walk = Walk()
    before = plan_of(walk.instance)
    walk.on(date(2019, 9, 2)).record(
        commands.reschedule_meeting(walk.instance, SB_OCT, date(2019, 10, 11), "chair unavailable", walk.now)
    )
    after = plan_of(walk.instance, date(2019, 9, 2))

    assert sends(after, SB_OCT)["call-for-papers"] == date(2019, 9, 20)
    gone = {n.key for n in before.notices} - {n.key for n in after.notices}
    assert gone and all(f"/{SB_OCT}/2019-10-04/" in key for key in gone)
    reason = withdrawal_reason(walk.instance, SB_OCT, date(2019, 10, 4), after.silenced)
    assert reason == "meeting moved to 2019-10-11: chair unavailable"


def test_a_cancelled_meeting_has_no_reminders() -> None:
    walk = Walk()
    walk.record(commands.cancel_meeting(walk.instance, SB_OCT, "no business", walk.now))

    assert sends(plan_of(walk.instance), SB_OCT) == {}


def test_a_paused_instance_gets_no_reminders_until_it_resumes() -> None:
    walk = Walk()
    walk.record(commands.pause(walk.instance, "pre-election period", walk.now))

    paused = plan_of(walk.instance)
    assert paused.notices == () and paused.silenced == "paused: pre-election period"

    walk.record(commands.resume(walk.instance, "election over", walk.now))
    assert plan_of(walk.instance).notices


def test_a_superseded_instance_gets_no_reminders() -> None:
    walk = Walk()
    walk.record(commands.supersede(walk.instance, "replaced by the ERRS", walk.now))

    plan = plan_of(walk.instance)
    assert plan.notices == () and plan.silenced is not None and plan.silenced.startswith("superseded")


def test_a_passed_gate_and_a_discharged_condition_leave_the_plan() -> None:
    walk = Walk().through_evidence().on(date(2019, 10, 4))
    walk.decide(
        "structure-agreed",
        "strategic-board",
        "approved-with-conditions",
        present=20,
        votes_for=18,
        conditions=("add a skills annex",),
        condition_due=date(2019, 10, 25),
    )
    (condition,) = walk.instance.conditions
    assert {n.rule for n in plan_of(walk.instance).notices if n.subject == condition} == {
        "condition-due",
        "condition-overdue",
    }
    assert any(n.subject == "structure-agreed" for n in plan_of(walk.instance).notices)

    walk.on(date(2019, 10, 24)).record(commands.discharge_condition(walk.instance, condition, walk.now))

    plan = plan_of(walk.instance)
    assert not any(n.subject in (condition, "structure-agreed") for n in plan.notices)
    assert withdrawal_reason(walk.instance, "structure-agreed", date(2019, 10, 4), None).startswith("gate")


def test_an_earlier_rung_stops_being_worth_sending_once_a_later_one_to_the_same_person_is_due() -> None:
    plan = plan_of(Walk().instance)

    first = next(n for n in plan.notices if n.rule == "draft-minutes" and n.subject == SB_OCT)
    later = next(
        n
        for n in plan.notices
        if n.rule == "draft-minutes-overdue" and n.subject == SB_OCT and n.recipient == first.recipient
    )
    assert first.stale_after == later.due_at
    call = next(n for n in plan.notices if n.rule == "call-for-papers" and n.subject == SB_OCT)
    assert call.stale_after is not None and call.stale_after <= at(date(2019, 9, 21), 0)


def test_news_of_a_decision_goes_to_the_secretary_as_soon_as_it_is_recorded_on_a_working_day() -> None:
    walk = Walk().through_scoping()  # decided and recorded on Fri 26 July 2019
    plan = plan_notifications(walk.instance, date(2019, 7, 26), events=recorded(walk))

    news = [n for n in plan.notices if n.kind in ("decision_recorded", "gate_passed")]
    assert {n.kind for n in news} == {"decision_recorded", "gate_passed"}
    assert {n.recipient.email for n in news} == {"secretariat@selep.example"}
    assert all(n.due_at == at(date(2019, 7, 26)) for n in news)  # recorded at noon: due at once


@pytest.mark.parametrize("weekend", [date(2019, 7, 27), date(2019, 7, 28)])
def test_news_recorded_at_a_weekend_waits_for_monday_morning(weekend: date) -> None:
    walk = Walk().on(date(2019, 7, 26))
    walk.phase_tasks("scoping")
    walk.on(weekend).decide("approach-agreed", "secretariat", mode="delegated", authority="SB/2019/06/3")
    plan = plan_notifications(walk.instance, weekend, events=recorded(walk))

    news = [n for n in plan.notices if n.kind == "decision_recorded"]
    assert [n.due_at for n in news] == [datetime(2019, 7, 29, 8, tzinfo=UTC)]
