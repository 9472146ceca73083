"""Meeting invitations as iCalendar (RFC 5545) attachments.

Timed events are written in UTC (``DTSTART:20191004T090000Z``), converted from the
meeting's local time zone. That is one of the forms RFC 5545 allows, every calendar client
shows it in the reader's own zone, and it avoids hand-building a VTIMEZONE block that
would have to describe GMT/BST changes correctly. An event with no start time is an
all-day event (``VALUE=DATE``, end exclusive). Lines end in CRLF and are folded at 75
octets without splitting a UTF-8 character; text values are escaped.

Resending an invitation with the same ``uid`` and a higher ``sequence`` updates it in
the recipients' calendars; ``method="CANCEL"`` withdraws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parseaddr
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifications.message import Attachment

__all__ = ["MAX_LINE_OCTETS", "METHODS", "fold_line", "meeting_invite"]

MAX_LINE_OCTETS = 75
METHODS = ("REQUEST", "PUBLISH", "CANCEL")
PRODUCT_ID = "-//govflow//notifications//EN"


def meeting_invite(
    *,
    uid: str,
    summary: str,
    description: str,
    day: date,
    start: time | None,
    end: time | None,
    timezone: str,
    organizer: str,
    attendees: Sequence[str],
    sequence: int = 0,
    method: str = "REQUEST",
    stamp: datetime,
) -> Attachment:
    """An ``invite.ics`` attachment for one meeting.

    ``day``, ``start`` and ``end`` are local to ``timezone`` (an IANA name such as
    ``Europe/London``); ``start=None`` makes an all-day event. ``organizer`` and
    ``attendees`` are addresses, optionally with a display name (``Jo Clarke
    <jo@selep.example>``). ``stamp`` (timezone-aware) is the DTSTAMP: pass the
    notification's due time so a rebuilt invitation is identical. Raises ``ValueError``
    for an unknown zone or method, a naive stamp, or an end not after the start.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not '{method}'")
    if stamp.tzinfo is None:
        raise ValueError("the DTSTAMP needs a timezone-aware datetime")
    if sequence < 0:
        raise ValueError("sequence cannot be negative")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{timezone}'") from None

    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODUCT_ID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid)}",
        f"DTSTAMP:{_utc(stamp)}",
        f"SEQUENCE:{sequence}",
        *_when(day, start, end, zone),
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"STATUS:{'CANCELLED' if method == 'CANCEL' else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        _address_line("ORGANIZER", organizer, ""),
        *(_address_line("ATTENDEE", attendee, ";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION") for attendee in attendees),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    data = "".join(fold_line(line) + "\r\n" for line in lines).encode()
    return Attachment(filename="invite.ics", content_type=f'text/calendar; method={method}; charset="utf-8"', data=data)


def _when(day: date, start: time | None, end: time | None, zone: ZoneInfo) -> list[str]:
    if start is None:
        if end is not None:
            raise ValueError("an all-day event (no start time) cannot have an end time")
        following = day + timedelta(days=1)
        return [f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{following:%Y%m%d}"]
    begins = datetime.combine(day, start, zone)
    if end is None:
        # RFC 5545 3.6.1: a DATE-TIME start without an end is an event of no duration.
        return [f"DTSTART:{_utc(begins)}"]
    ends = datetime.combine(day, end, zone)
    if ends <= begins:
        raise ValueError(f"the meeting must end after it starts ({start:%H:%M} to {end:%H:%M})")
    return [f"DTSTART:{_utc(begins)}", f"DTEND:{_utc(ends)}"]


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@lru_cache(maxsize=1024)
def _address_line(name: str, address: str, params: str) -> str:
    # Cached: the same organizer and attendees come back invitation after invitation.
    display, email_address = parseaddr(address)
    if "@" not in email_address:
        raise ValueError(f"'{address}' is not an email address")
    common_name = f";CN={quote_param(display)}" if display else ""
    return f"{name}{common_name}{params}:mailto:{email_address}"


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newline escaped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def quote_param(value: str) -> str:
    """A parameter value, quoted when it holds ``:;,``; DQUOTE and control characters cannot appear."""
    cleaned = "".join(character for character in value if character != '"' and character.isprintable())
    return f'"{cleaned}"' if any(character in cleaned for character in ":;,") else cleaned


def fold_line(line: str) -> str:
    """Fold a content line into pieces of at most 75 octets, joined by CRLF and a space."""
    if len(line.encode()) <= MAX_LINE_OCTETS:
        return line  # most lines: no need to walk the characters
    pieces: list[str] = []
    current, size = "", 0
    for character in line:
        width = len(character.encode())
        # Continuation lines start with a space, which counts towards their 75 octets.
        limit = MAX_LINE_OCTETS if not pieces else MAX_LINE_OCTETS - 1
        if size + width > limit:
            pieces.append(current)
            current, size = "", 0
        current += character
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)
