"""The working-day calendar: weekends, bank holidays, blackout windows and the deadlines built on them.

A :class:`WorkingCalendar` is a value built from a set of bank-holiday dates and a tuple of
:class:`Blackout` windows; it never reads the clock or the environment, so callers pass every
date they mean ("today" included). The rules it encodes come from the LEP guidance of 2018:
working days exclude Saturdays, Sundays and bank holidays; papers are published at least
5 clear working days before a meeting; draft minutes within 10 working days after it.

Blackouts (the pre-election period, say) do not make a day non-working: they stop particular
bodies from acting, so they are looked up per body and kept apart from the working-day maths.

The arithmetic works on proleptic ordinals (``date.toordinal()``, where ordinal 1 is a Monday)
with a closed form for weekdays and a binary search over the sorted holidays, so each call costs
O(log holidays) whatever the distance, and allocates nothing but the answer.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

__all__ = ["Blackout", "WorkingCalendar", "local_datetime"]


@dataclass(frozen=True, slots=True)
class Blackout:
    """A window, inclusive of both ends, in which the listed bodies (or all, when empty) cannot act."""

    id: str
    start: date
    end: date
    bodies: frozenset[str]
    reason: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"blackout '{self.id}' ends ({self.end}) before it starts ({self.start})")
        # A set or tuple given by mistake would leave the value unhashable and break caching.
        object.__setattr__(self, "bodies", frozenset(self.bodies))

    def applies_to(self, body: str | None) -> bool:
        """Whether the window binds ``body``; ``None`` means "any body", so every blackout matches."""
        return body is None or not self.bodies or body in self.bodies

    def covers(self, day: date) -> bool:
        """Whether ``day`` falls inside the window (both ends included)."""
        return self.start.toordinal() <= day.toordinal() <= self.end.toordinal()


def _as_date(day: date) -> date:
    """``day`` as a plain date: a ``datetime`` (a subclass of date) loses its time of day."""
    return day if type(day) is date else date.fromordinal(day.toordinal())


def _weekdays_through(ordinal: int) -> int:
    """How many Mondays-to-Fridays lie in ordinals 1..``ordinal`` (ordinal 1 is a Monday)."""
    weeks, rest = divmod(ordinal, 7)
    return 5 * weeks + min(rest, 5)


def _nth_weekday(count: int) -> int:
    """The ordinal of the ``count``-th weekday since ordinal 1: the inverse of :func:`_weekdays_through`."""
    weeks, rest = divmod(count - 1, 5)
    return 7 * weeks + rest + 1


def _shift_weekdays(ordinal: int, n: int) -> int:
    """The ``n``-th weekday after (``n`` > 0) or before (``n`` < 0) ``ordinal``, not counting it."""
    if n > 0:
        return _nth_weekday(_weekdays_through(ordinal) + n)
    # Counting back from a weekend must land on Friday as the first step, hence ordinal - 1.
    return _nth_weekday(_weekdays_through(ordinal - 1) + n + 1)


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Working days for one jurisdiction, plus the blackout windows that bind particular bodies.

    ``bank_holidays`` must cover every year the caller asks about: a date outside the years it
    was built for is treated as having no bank holidays. Arguments named ``day`` are dates; a
    ``datetime`` is read as its date. Results are plain dates.
    """

    bank_holidays: frozenset[date]
    blackouts: tuple[Blackout, ...] = ()
    # Derived once, so per-call work is a set lookup or a binary search on ints.
    _holiday_ordinals: frozenset[int] = field(init=False, repr=False, compare=False)
    _weekday_holidays: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _blackout_spans: tuple[tuple[int, int, Blackout], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        holidays = frozenset(self.bank_holidays)
        if any(isinstance(day, datetime) for day in holidays):
            # datetime(2019, 12, 25) != date(2019, 12, 25), so a datetime here would never match.
            raise TypeError("bank holidays must be dates, not datetimes")
        object.__setattr__(self, "bank_holidays", holidays)
        object.__setattr__(self, "blackouts", tuple(self.blackouts))
        ordinals = frozenset(day.toordinal() for day in holidays)
        object.__setattr__(self, "_holiday_ordinals", ordinals)
        # A holiday on a weekend (26 Dec 2020, a Saturday) costs no working day: leave it out of the counts.
        object.__setattr__(self, "_weekday_holidays", tuple(sorted(o for o in ordinals if (o - 1) % 7 < 5)))
        spans = sorted(((b.start.toordinal(), b.end.toordinal(), b) for b in self.blackouts), key=lambda span: span[:2])
        object.__setattr__(self, "_blackout_spans", tuple(spans))

    # -- working days -------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is Monday to Friday and not a bank holiday."""
        return day.weekday() < 5 and day.toordinal() not in self._holiday_ordinals

    def _working_days_through(self, ordinal: int) -> int:
        """How many working days lie in ordinals 1..``ordinal``; differences of it count ranges."""
        return _weekdays_through(ordinal) - bisect_right(self._weekday_holidays, ordinal)

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (before it when ``n`` < 0), not counting ``day``.

        ``n == 0`` returns ``day`` itself, working day or not; any other ``n`` gives a working day.
        """
        if n == 0:
            return _as_date(day)
        origin = day.toordinal()
        holidays = self._weekday_holidays
        target = _shift_weekdays(origin, n)
        # Step over the holidays met on the way; the extra weekdays may hold more, so repeat.
        # Each round only looks at the newly added stretch, so it ends after a round or two.
        if n > 0:
            skipped = bisect_right(holidays, target) - bisect_right(holidays, origin)
            while skipped:
                reached, target = target, _shift_weekdays(target, skipped)
                skipped = bisect_right(holidays, target) - bisect_right(holidays, reached)
        else:
            skipped = bisect_left(holidays, origin) - bisect_left(holidays, target)
            while skipped:
                reached, target = target, _shift_weekdays(target, -skipped)
                skipped = bisect_left(holidays, reached) - bisect_left(holidays, target)
        return date.fromordinal(target)

    def shift(self, day: date, working_days: int) -> date:
        """Offset ``day`` by a signed number of working days: ``shift(meeting, -15)`` is T-15.

        The same as :meth:`add_working_days`; the name reads better in a reminder ladder.
        """
        return self.add_working_days(day, working_days)

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie strictly between the two dates, in whichever order they come."""
        low, high = sorted((start.toordinal(), end.toordinal()))
        if high - low < 2:
            return 0
        return self._working_days_through(high - 1) - self._working_days_through(low)

    def working_days_until(self, start: date, end: date) -> int:
        """The signed offset ``n`` with ``add_working_days(start, n) == end`` when ``end`` is a working day.

        Forward it counts the working days in (start, end]; backward, minus those in [end, start).
        ``working_days_until(today, meeting) == 15`` means today is T-15.
        """
        first, last = start.toordinal(), end.toordinal()
        if last >= first:
            return self._working_days_through(last) - self._working_days_through(first)
        return self._working_days_through(last - 1) - self._working_days_through(first - 1)

    def next_working_day(self, day: date) -> date:
        """``day`` if it is a working day, otherwise the first working day after it."""
        return _as_date(day) if self.is_working_day(day) else self.add_working_days(day, 1)

    def previous_working_day(self, day: date) -> date:
        """``day`` if it is a working day, otherwise the last working day before it."""
        return _as_date(day) if self.is_working_day(day) else self.add_working_days(day, -1)

    # -- publication deadlines ----------------------------------------------------------------

    def papers_deadline(self, meeting: date, clear_days: int = 5) -> date:
        """The last working day papers can be published with ``clear_days`` clear working days to spare.

        Clear days exclude both the day of publication and the day of the meeting, so the answer
        is ``clear_days + 1`` working days back: Fri 4 Oct 2019 gives Thu 26 Sep 2019.
        """
        if clear_days < 0:
            raise ValueError(f"clear_days must not be negative, got {clear_days}")
        return self.add_working_days(meeting, -(clear_days + 1))

    def minutes_deadline(self, meeting: date, clear_days: int = 10) -> date:
        """The ``clear_days``-th working day after the meeting: Fri 4 Oct 2019 gives Fri 18 Oct 2019."""
        if clear_days < 1:
            raise ValueError(f"clear_days must be at least 1, got {clear_days}")
        return self.add_working_days(meeting, clear_days)

    # -- blackouts ----------------------------------------------------------------------------

    def blackout_on(self, day: date, body: str | None = None) -> Blackout | None:
        """The blackout binding ``body`` on ``day`` (the earliest-starting if several), or ``None``.

        ``body=None`` asks whether any blackout at all covers the day.
        """
        ordinal = day.toordinal()
        for start, end, blackout in self._blackout_spans:
            if start > ordinal:
                break  # sorted by start: none of the rest has begun yet
            if ordinal <= end and blackout.applies_to(body):
                return blackout
        return None

    def first_day_clear_of_blackout(self, day: date, body: str | None) -> date:
        """The first day on or after ``day`` outside every blackout binding ``body`` (weekends allowed)."""
        ordinal = day.toordinal()
        while (blackout := self.blackout_on(date.fromordinal(ordinal), body)) is not None:
            # Windows may overlap or abut, so look again from the day after this one ends.
            ordinal = blackout.end.toordinal() + 1
        return date.fromordinal(ordinal)

    def first_working_day_clear_of_blackout(self, day: date, body: str | None) -> date:
        """The first working day on or after ``day`` outside every blackout binding ``body``.

        This is where a step needing ``body`` lands once shifted past a blackout: for the
        6 Nov-12 Dec 2019 pre-election period and body "government", Fri 13 Dec 2019.
        """
        candidate = self.next_working_day(day)
        while (blackout := self.blackout_on(candidate, body)) is not None:
            candidate = self.next_working_day(date.fromordinal(blackout.end.toordinal() + 1))
        return candidate


def local_datetime(day: date, at: time = time(9, 0), tz_name: str = "Europe/London") -> datetime:
    """``day`` at wall-clock time ``at`` in ``tz_name``, as an aware datetime.

    The offset follows the date, so 09:00 stays 09:00 local across the GMT/BST change:
    25 Oct 2019 09:00 is 08:00 UTC (BST), 28 Oct 2019 09:00 is 09:00 UTC (GMT).
    A time skipped by the spring change (01:30 on the last Sunday of March) resolves as
    zoneinfo does for ``fold=0``, i.e. with the offset in force before the change.
    """
    if at.tzinfo is not None:
        raise ValueError("'at' must be a wall-clock time without tzinfo; the zone comes from tz_name")
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz_name))
