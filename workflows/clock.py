"""The clock: the one place that reads the system time.

Everything else receives a :class:`Clock` (or a ``now`` argument). ``govflow --now``
and the tests use a :class:`FixedClock`; events recorded under it say so.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from workflows.errors import BadInput


class Clock(Protocol):
    """A source of the current time; ``now`` is always timezone-aware."""

    simulated: bool

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A simulated clock that stands still until moved."""

    simulated = True

    def __init__(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime")
        self._now = moment

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def parse_moment(text: str, timezone: str, *, end_of_day: bool = False) -> datetime:
    """Parse a date or datetime given by a user, in ``timezone`` unless it has an offset.

    A bare date means the start of that day, or its last moment with ``end_of_day``.
    """
    zone = ZoneInfo(timezone)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time(0), zone)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise BadInput(f"'{text}' is not a date (YYYY-MM-DD) or datetime (YYYY-MM-DDTHH:MM)") from None
    return moment
