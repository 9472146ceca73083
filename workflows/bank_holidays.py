"""England and Wales bank holidays, and the working calendar built from them.

2019 and 2020, the years of the South East LEP strategy, come from the verified list in
DOMAIN.md (2020 moved the early May holiday to Fri 8 May for VE Day, and Boxing Day fell on a
Saturday, so Mon 28 Dec was the substitute day). Every other year comes from the maintained
``holidays`` library (England; Wales shares its bank holidays).

Only the days people get off are kept: a holiday falling on a weekend (Christmas Day 2021, a
Saturday) is dropped in favour of its weekday substitute, as the gov.uk list does, so that the
two sources look alike. Nothing happens at import time; the library is imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Final

from governance.calendar import Blackout, WorkingCalendar

__all__ = ["VERIFIED_BANK_HOLIDAYS", "calendar_for", "england_and_wales_bank_holidays"]

# Read-only, because callers share it and a stray edit would silently move every deadline.
VERIFIED_BANK_HOLIDAYS: Final[Mapping[int, frozenset[date]]] = MappingProxyType(
    {
        2019: frozenset(
            {
                date(2019, 1, 1),
                date(2019, 4, 19),
                date(2019, 4, 22),
                date(2019, 5, 6),
                date(2019, 5, 27),
                date(2019, 8, 26),
                date(2019, 12, 25),
                date(2019, 12, 26),
            }
        ),
        2020: frozenset(
            {
                date(2020, 1, 1),
                date(2020, 4, 10),
                date(2020, 4, 13),
                date(2020, 5, 8),  # moved from Mon 4 May for the 75th anniversary of VE Day
                date(2020, 5, 25),
                date(2020, 8, 31),
                date(2020, 12, 25),
                date(2020, 12, 28),  # substitute for Boxing Day, a Saturday
            }
        ),
    }
)


@cache
def _bank_holidays_in(year: int) -> frozenset[date]:
    """One year's weekday bank holidays: the verified list where there is one, else the library's."""
    verified = VERIFIED_BANK_HOLIDAYS.get(year)
    if verified is not None:
        return verified
    # Imported here, not at the top: the library takes ~130 ms to import, start-up time matters,
    # and only years outside the verified list need it.
    import holidays

    # country_holidays("GB") builds the same holidays.UnitedKingdom, but is the typed entry point.
    found = holidays.country_holidays("GB", subdiv="ENG", years=year)
    return frozenset(day for day in found if day.weekday() < 5)


@lru_cache(maxsize=64)
def england_and_wales_bank_holidays(first_year: int, last_year: int) -> frozenset[date]:
    """The weekday bank holidays of England and Wales in ``first_year``..``last_year`` inclusive."""
    if last_year < first_year:
        raise ValueError(f"last_year ({last_year}) is before first_year ({first_year})")
    days: set[date] = set()
    for year in range(first_year, last_year + 1):
        days |= _bank_holidays_in(year)
    return frozenset(days)


@lru_cache(maxsize=64)
def calendar_for(first_year: int, last_year: int, blackouts: tuple[Blackout, ...] = ()) -> WorkingCalendar:
    """A working calendar with the bank holidays of ``first_year``..``last_year`` and the given blackouts.

    Choose the years with a margin: dates outside them are treated as having no bank holidays,
    and a December meeting's minutes deadline falls in the next year.
    """
    return WorkingCalendar(england_and_wales_bank_holidays(first_year, last_year), blackouts)
