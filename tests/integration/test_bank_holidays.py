"""England and Wales bank holidays: the verified 2019-2020 list and the ``holidays`` library after it."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import holidays
import pytest

from governance.calendar import Blackout
from workflows.bank_holidays import VERIFIED_BANK_HOLIDAYS, calendar_for, england_and_wales_bank_holidays

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Copied from DOMAIN.md, "England and Wales bank holidays (verified)".
DOMAIN_2019 = {
    date(2019, 1, 1),
    date(2019, 4, 19),
    date(2019, 4, 22),
    date(2019, 5, 6),
    date(2019, 5, 27),
    date(2019, 8, 26),
    date(2019, 12, 25),
    date(2019, 12, 26),
}
DOMAIN_2020 = {
    date(2020, 1, 1),
    date(2020, 4, 10),
    date(2020, 4, 13),
    date(2020, 5, 8),
    date(2020, 5, 25),
    date(2020, 8, 31),
    date(2020, 12, 25),
    date(2020, 12, 28),
}


def library(year: int) -> set[date]:
    return set(holidays.country_holidays("GB", subdiv="ENG", years=year))


def test_the_verified_list_is_exactly_domain_md() -> None:
    assert dict(VERIFIED_BANK_HOLIDAYS) == {2019: DOMAIN_2019, 2020: DOMAIN_2020}
    assert england_and_wales_bank_holidays(2019, 2020) == DOMAIN_2019 | DOMAIN_2020


def test_the_library_agrees_with_the_verified_list_for_2019() -> None:
    assert library(2019) == DOMAIN_2019


def test_the_library_also_lists_boxing_day_2020_on_its_saturday() -> None:
    # The only difference: the library keeps the Saturday as well as the Monday substitute.
    assert library(2020) == DOMAIN_2020 | {date(2020, 12, 26)}
    assert date(2020, 12, 26).weekday() == 5


def test_the_library_treats_england_and_wales_alike() -> None:
    for year in range(2019, 2031):
        assert set(holidays.country_holidays("GB", subdiv="WLS", years=year)) == library(year)


def test_years_after_2020_come_from_the_library_as_weekday_days_off() -> None:
    assert england_and_wales_bank_holidays(2021, 2021) == {
        date(2021, 1, 1),
        date(2021, 4, 2),
        date(2021, 4, 5),
        date(2021, 5, 3),
        date(2021, 5, 31),
        date(2021, 8, 30),
        date(2021, 12, 27),  # Christmas Day (substitute)
        date(2021, 12, 28),  # Boxing Day (substitute)
    }


def test_one_off_bank_holidays_are_included() -> None:
    days = england_and_wales_bank_holidays(2022, 2023)
    assert {date(2022, 6, 3), date(2022, 9, 19), date(2023, 5, 8)} <= days


def test_a_year_range_must_not_run_backwards() -> None:
    with pytest.raises(ValueError, match="before"):
        england_and_wales_bank_holidays(2021, 2020)


def test_the_calendar_for_2019_2020_gives_the_worked_examples() -> None:
    calendar = calendar_for(2019, 2020)
    assert calendar.papers_deadline(date(2019, 10, 4)) == date(2019, 9, 26)
    assert calendar.minutes_deadline(date(2019, 12, 13)) == date(2019, 12, 31)


def test_a_deadline_running_into_the_next_year_uses_that_years_holidays() -> None:
    # 18 Dec 2020: ten working days on skip Christmas, the Boxing Day substitute and 1 Jan 2021.
    assert calendar_for(2020, 2021).minutes_deadline(date(2020, 12, 18)) == date(2021, 1, 6)


def test_calendars_are_cached_per_year_range_and_blackouts() -> None:
    blackout = Blackout(
        "pre-election-2019", date(2019, 11, 6), date(2019, 12, 12), frozenset({"government"}), "election"
    )
    assert calendar_for(2019, 2020) is calendar_for(2019, 2020)
    with_blackout = calendar_for(2019, 2020, (blackout,))
    assert with_blackout is calendar_for(2019, 2020, (blackout,))
    assert with_blackout.blackout_on(date(2019, 11, 20), "government") == blackout


def test_the_library_is_imported_only_when_a_year_needs_it() -> None:
    script = (
        "import sys\n"
        "from workflows.bank_holidays import england_and_wales_bank_holidays as days\n"
        "days(2019, 2020); print('holidays' in sys.modules)\n"
        "days(2021, 2021); print('holidays' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]
