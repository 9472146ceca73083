"""The working-day calendar, built from the verified 2019-2020 bank holidays of DOMAIN.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.calendar import Blackout, WorkingCalendar, local_datetime

BANK_HOLIDAYS_2019_2020 = frozenset(
    {
        date(2019, 1, 1),
        date(2019, 4, 19),
        date(2019, 4, 22),
        date(2019, 5, 6),
        date(2019, 5, 27),
        date(2019, 8, 26),
        date(2019, 12, 25),
        date(2019, 12, 26),
        date(2020, 1, 1),
        date(2020, 4, 10),
        date(2020, 4, 13),
        date(2020, 5, 8),
        date(2020, 5, 25),
        date(2020, 8, 31),
        date(2020, 12, 25),
        date(2020, 12, 28),
    }
)
PRE_ELECTION = Blackout(
    id="pre-election-2019",
    start=date(2019, 11, 6),
    end=date(2019, 12, 12),
    bodies=frozenset({"government"}),
    reason="general-election pre-election period",
)
CALENDAR = WorkingCalendar(BANK_HOLIDAYS_2019_2020, (PRE_ELECTION,))


# -- the worked examples of DOMAIN.md ----------------------------------------------------------


def test_papers_for_the_4_october_2019_strategic_board_are_due_on_thursday_26_september() -> None:
    assert CALENDAR.papers_deadline(date(2019, 10, 4)) == date(2019, 9, 26)


def test_papers_for_the_13_december_2019_strategic_board_are_due_on_thursday_5_december() -> None:
    assert CALENDAR.papers_deadline(date(2019, 12, 13)) == date(2019, 12, 5)


def test_draft_minutes_of_the_4_october_2019_meeting_are_due_on_friday_18_october() -> None:
    assert CALENDAR.minutes_deadline(date(2019, 10, 4)) == date(2019, 10, 18)


def test_draft_minutes_of_the_13_december_2019_meeting_are_due_on_tuesday_31_december() -> None:
    assert CALENDAR.minutes_deadline(date(2019, 12, 13)) == date(2019, 12, 31)


def test_papers_deadline_leaves_exactly_the_clear_days_between_publication_and_meeting() -> None:
    assert CALENDAR.working_days_between(date(2019, 9, 26), date(2019, 10, 4)) == 5
    assert CALENDAR.working_days_between(date(2019, 9, 27), date(2019, 10, 4)) == 4


def test_papers_deadline_before_a_meeting_after_a_bank_holiday_skips_the_holiday() -> None:
    # Tue 27 Aug 2019 follows the Late Summer bank holiday: clear days are 19-23 Aug.
    assert CALENDAR.papers_deadline(date(2019, 8, 27)) == date(2019, 8, 16)


def test_deadlines_reject_impossible_clear_days() -> None:
    with pytest.raises(ValueError, match="clear_days"):
        CALENDAR.papers_deadline(date(2019, 10, 4), clear_days=-1)
    with pytest.raises(ValueError, match="clear_days"):
        CALENDAR.minutes_deadline(date(2019, 10, 4), clear_days=0)


# -- working days --------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2019, 10, 5), date(2019, 10, 6), date(2020, 12, 26)])
def test_weekends_are_not_working_days(day: date) -> None:
    assert not CALENDAR.is_working_day(day)


@pytest.mark.parametrize(
    "day", [date(2019, 8, 26), date(2019, 12, 25), date(2019, 12, 26), date(2020, 5, 8), date(2020, 12, 28)]
)
def test_bank_holidays_are_not_working_days(day: date) -> None:
    assert not CALENDAR.is_working_day(day)


@pytest.mark.parametrize("day", [date(2019, 8, 27), date(2019, 12, 27), date(2020, 5, 4)])
def test_ordinary_weekdays_are_working_days(day: date) -> None:
    assert CALENDAR.is_working_day(day)


def test_a_datetime_is_read_as_its_date() -> None:
    assert not CALENDAR.is_working_day(datetime(2019, 12, 25, 9, 0))
    assert CALENDAR.add_working_days(datetime(2019, 12, 24, 9, 0), 1) == date(2019, 12, 27)
    assert type(CALENDAR.next_working_day(datetime(2019, 12, 24, 9, 0))) is date


def test_adding_working_days_skips_weekends_and_christmas() -> None:
    assert CALENDAR.add_working_days(date(2019, 10, 4), 1) == date(2019, 10, 7)
    assert CALENDAR.add_working_days(date(2019, 12, 24), 1) == date(2019, 12, 27)
    assert CALENDAR.add_working_days(date(2019, 12, 20), 5) == date(2019, 12, 31)
    assert CALENDAR.add_working_days(date(2019, 12, 20), 6) == date(2020, 1, 2)


def test_adding_from_a_weekend_counts_the_following_monday_as_the_first_day() -> None:
    assert CALENDAR.add_working_days(date(2019, 10, 5), 1) == date(2019, 10, 7)
    assert CALENDAR.add_working_days(date(2019, 10, 5), -1) == date(2019, 10, 4)


def test_negative_offsets_count_back_over_bank_holidays() -> None:
    assert CALENDAR.add_working_days(date(2019, 8, 27), -1) == date(2019, 8, 23)
    assert CALENDAR.add_working_days(date(2020, 1, 2), -3) == date(2019, 12, 27)
    assert CALENDAR.add_working_days(date(2020, 1, 2), -4) == date(2019, 12, 24)


def test_zero_offset_is_the_day_itself_even_when_not_a_working_day() -> None:
    assert CALENDAR.add_working_days(date(2019, 12, 25), 0) == date(2019, 12, 25)


def test_the_reminder_ladder_reads_as_offsets_from_the_meeting() -> None:
    meeting = date(2019, 10, 4)
    assert CALENDAR.shift(meeting, working_days=-15) == date(2019, 9, 13)
    assert CALENDAR.shift(meeting, working_days=-5) == date(2019, 9, 27)
    assert CALENDAR.shift(meeting, working_days=-1) == date(2019, 10, 3)
    assert CALENDAR.shift(meeting, working_days=10) == date(2019, 10, 18)


def test_working_days_until_is_the_signed_offset_between_two_days() -> None:
    assert CALENDAR.working_days_until(date(2019, 9, 13), date(2019, 10, 4)) == 15
    assert CALENDAR.working_days_until(date(2019, 10, 4), date(2019, 9, 13)) == -15
    assert CALENDAR.working_days_until(date(2019, 10, 4), date(2019, 10, 4)) == 0
    # From a Saturday, the Friday before is one working day back and the Monday after one ahead.
    assert CALENDAR.working_days_until(date(2019, 10, 5), date(2019, 10, 4)) == -1
    assert CALENDAR.working_days_until(date(2019, 10, 5), date(2019, 10, 7)) == 1


def test_working_days_between_excludes_both_ends_and_ignores_order() -> None:
    assert CALENDAR.working_days_between(date(2019, 12, 13), date(2019, 12, 31)) == 9
    assert CALENDAR.working_days_between(date(2019, 12, 31), date(2019, 12, 13)) == 9
    assert CALENDAR.working_days_between(date(2019, 10, 3), date(2019, 10, 4)) == 0
    assert CALENDAR.working_days_between(date(2019, 10, 4), date(2019, 10, 4)) == 0


def test_next_and_previous_working_day_keep_a_working_day_and_move_off_a_holiday() -> None:
    assert CALENDAR.next_working_day(date(2019, 10, 4)) == date(2019, 10, 4)
    assert CALENDAR.previous_working_day(date(2019, 10, 4)) == date(2019, 10, 4)
    assert CALENDAR.next_working_day(date(2019, 8, 24)) == date(2019, 8, 27)
    assert CALENDAR.previous_working_day(date(2019, 8, 26)) == date(2019, 8, 23)


def test_bank_holidays_must_be_dates_not_datetimes() -> None:
    with pytest.raises(TypeError, match="dates"):
        WorkingCalendar(frozenset({datetime(2019, 12, 25)}))


def test_a_calendar_is_a_hashable_value() -> None:
    same = WorkingCalendar(frozenset(BANK_HOLIDAYS_2019_2020), (PRE_ELECTION,))
    assert same == CALENDAR
    assert hash(same) == hash(CALENDAR)


# -- blackouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2019, 11, 6), date(2019, 11, 20), date(2019, 12, 12)])
def test_the_pre_election_period_binds_government_on_both_end_days_and_between(day: date) -> None:
    assert CALENDAR.blackout_on(day, "government") is PRE_ELECTION


@pytest.mark.parametrize("day", [date(2019, 11, 5), date(2019, 12, 13)])
def test_the_pre_election_period_does_not_bind_government_outside_it(day: date) -> None:
    assert CALENDAR.blackout_on(day, "government") is None


def test_the_pre_election_period_does_not_bind_the_lep_boards() -> None:
    assert CALENDAR.blackout_on(date(2019, 11, 20), "strategic-board") is None
    assert CALENDAR.first_day_clear_of_blackout(date(2019, 11, 20), "kmep") == date(2019, 11, 20)


def test_without_a_body_any_blackout_on_the_day_is_found() -> None:
    assert CALENDAR.blackout_on(date(2019, 11, 20)) is PRE_ELECTION
    assert CALENDAR.blackout_on(date(2019, 11, 5)) is None


def test_a_step_needing_government_shifts_to_the_day_after_the_pre_election_period() -> None:
    assert CALENDAR.first_day_clear_of_blackout(date(2019, 11, 20), "government") == date(2019, 12, 13)
    assert CALENDAR.first_working_day_clear_of_blackout(date(2019, 11, 20), "government") == date(2019, 12, 13)


def test_a_blackout_without_bodies_binds_everyone() -> None:
    closure = Blackout("all", date(2019, 12, 20), date(2019, 12, 24), frozenset(), "office closed")
    calendar = WorkingCalendar(BANK_HOLIDAYS_2019_2020, (closure,))
    assert calendar.blackout_on(date(2019, 12, 23), "kmep") is closure
    # Clear of the blackout on 25 Dec, but the first working day is after Boxing Day.
    assert calendar.first_day_clear_of_blackout(date(2019, 12, 20), "kmep") == date(2019, 12, 25)
    assert calendar.first_working_day_clear_of_blackout(date(2019, 12, 20), "kmep") == date(2019, 12, 27)


def test_abutting_and_overlapping_blackouts_are_cleared_together() -> None:
    first = Blackout("a", date(2019, 11, 1), date(2019, 11, 10), frozenset({"government"}), "one")
    second = Blackout("b", date(2019, 11, 11), date(2019, 11, 15), frozenset(), "two")
    third = Blackout("c", date(2019, 11, 14), date(2019, 11, 20), frozenset({"government"}), "three")
    calendar = WorkingCalendar(BANK_HOLIDAYS_2019_2020, (third, first, second))
    assert calendar.first_day_clear_of_blackout(date(2019, 11, 2), "government") == date(2019, 11, 21)
    assert calendar.first_day_clear_of_blackout(date(2019, 11, 2), "kmep") == date(2019, 11, 2)
    assert calendar.first_day_clear_of_blackout(date(2019, 11, 12), "kmep") == date(2019, 11, 16)


def test_a_blackout_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends"):
        Blackout("x", date(2019, 12, 12), date(2019, 11, 6), frozenset(), "backwards")


# -- local send times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2019, 10, 25), 8),  # BST
        (date(2019, 10, 27), 9),  # the day the clocks go back
        (date(2019, 10, 28), 9),  # GMT
        (date(2020, 3, 27), 9),  # GMT
        (date(2020, 3, 30), 8),  # BST again
    ],
)
def test_reminders_go_at_nine_local_time_on_both_sides_of_the_clock_change(day: date, utc_hour: int) -> None:
    sent = local_datetime(day, time(9, 0), "Europe/London")
    assert (sent.hour, sent.minute) == (9, 0)
    assert sent.astimezone(UTC) == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)


def test_local_datetime_defaults_to_nine_in_london() -> None:
    assert local_datetime(date(2019, 10, 25)).astimezone(UTC).hour == 8


def test_local_datetime_refuses_a_time_that_already_has_a_zone() -> None:
    with pytest.raises(ValueError, match="tzinfo"):
        local_datetime(date(2019, 10, 25), time(9, 0, tzinfo=UTC))


# -- properties ----------------------------------------------------------------------------------

DAYS = st.dates(min_value=date(2018, 1, 1), max_value=date(2021, 12, 31))


def naive_add(calendar: WorkingCalendar, day: date, n: int) -> date:
    """Step one day at a time: slow, but obviously right."""
    step = timedelta(days=1 if n > 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if calendar.is_working_day(day):
            remaining -= 1
    return day


def naive_between(calendar: WorkingCalendar, start: date, end: date) -> int:
    low, high = sorted((start, end))
    return sum(calendar.is_working_day(low + timedelta(days=i)) for i in range(1, (high - low).days))


@given(DAYS, st.integers(0, 60))
def test_going_forward_then_back_lands_on_or_before_the_start(day: date, n: int) -> None:
    there = CALENDAR.add_working_days(day, n)
    back = CALENDAR.add_working_days(there, -n)
    assert back <= day
    if n == 0 or CALENDAR.is_working_day(day):
        assert back == day
    else:
        assert back == CALENDAR.previous_working_day(day)


@given(DAYS, st.integers(-60, 60).filter(lambda n: n != 0))
def test_every_nonzero_offset_lands_on_a_working_day(day: date, n: int) -> None:
    assert CALENDAR.is_working_day(CALENDAR.add_working_days(day, n))


@given(
    st.frozensets(DAYS, max_size=40),
    DAYS,
    st.integers(-60, 60),
)
def test_fast_arithmetic_matches_stepping_one_day_at_a_time(holidays: frozenset[date], day: date, n: int) -> None:
    calendar = WorkingCalendar(holidays)
    expected = naive_add(calendar, day, n)
    assert calendar.add_working_days(day, n) == expected
    if n > 0:
        assert calendar.working_days_until(day, expected) == n
        assert calendar.working_days_between(day, expected) == n - 1
    elif n < 0:
        assert calendar.working_days_until(day, expected) == n


@given(st.frozensets(DAYS, max_size=40), DAYS, DAYS)
def test_working_days_between_matches_counting_one_day_at_a_time(
    holidays: frozenset[date], start: date, end: date
) -> None:
    calendar = WorkingCalendar(holidays)
    assert calendar.working_days_between(start, end) == naive_between(calendar, start, end)


@given(DAYS, st.integers(0, 15))
def test_papers_deadline_is_the_last_day_leaving_enough_clear_days(meeting: date, clear_days: int) -> None:
    deadline = CALENDAR.papers_deadline(meeting, clear_days)
    assert CALENDAR.is_working_day(deadline)
    assert CALENDAR.working_days_between(deadline, meeting) >= clear_days
    later = CALENDAR.add_working_days(deadline, 1)
    assert later >= meeting or CALENDAR.working_days_between(later, meeting) < clear_days
