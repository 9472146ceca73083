"""Meeting invitations: valid RFC 5545 text that a calendar can read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from notifications.ics import MAX_LINE_OCTETS, escape_text, fold_line, meeting_invite
from notifications.message import Attachment

STAMP = datetime(2019, 9, 13, 8, 0, tzinfo=UTC)


def invite(**changes: Any) -> Attachment:
    arguments: dict[str, Any] = {
        "uid": "selep-lis/strategic-board/2019-10-04@selep.example",
        "summary": "SELEP Strategic Board",
        "description": "Agenda item 4: Local Industrial Strategy, progress and structure",
        "day": date(2019, 10, 4),
        "start": time(10, 0),
        "end": time(12, 30),
        "timezone": "Europe/London",
        "organizer": "SELEP Secretariat <secretariat@selep.example>",
        "attendees": ["Alex Morgan <alex.morgan@selep.example>", "sam.patel@selep.example"],
        "stamp": STAMP,
        **changes,
    }
    return meeting_invite(**arguments)


def unfold(data: bytes) -> list[str]:
    """The content lines of an iCalendar stream (RFC 5545 3.1)."""
    return data.decode().replace("\r\n ", "").split("\r\n")[:-1]


def parse(data: bytes) -> list[tuple[str, dict[str, str], str]]:
    """(name, parameters, value) per content line; a minimal reader for the tests."""
    parsed = []
    for line in unfold(data):
        head, value = _split_outside_quotes(line, ":")
        name, *params = _split_all_outside_quotes(head, ";")
        parameters = dict(param.split("=", 1) for param in params)
        parsed.append((name, parameters, value))
    return parsed


def _split_outside_quotes(text: str, separator: str) -> tuple[str, str]:
    quoted = False
    for index, character in enumerate(text):
        if character == '"':
            quoted = not quoted
        elif character == separator and not quoted:
            return text[:index], text[index + 1 :]
    raise AssertionError(f"no '{separator}' in {text!r}")


def _split_all_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    while True:
        try:
            head, text = _split_outside_quotes(text, separator)
        except AssertionError:
            return [*parts, text]
        parts.append(head)


def properties(data: bytes) -> dict[str, str]:
    return {name: value for name, _, value in parse(data)}


def unescape(value: str) -> str:
    out, characters = [], iter(value)
    for character in characters:
        if character == "\\":
            following = next(characters)
            out.append("\n" if following in "nN" else following)
        else:
            out.append(character)
    return "".join(out)


def test_the_invitation_is_a_calendar_attachment() -> None:
    attachment = invite()

    assert attachment.filename == "invite.ics"
    assert attachment.content_type == 'text/calendar; method=REQUEST; charset="utf-8"'


def test_lines_end_in_crlf_and_stay_within_75_octets() -> None:
    data = invite(description="Local Industrial Strategy – Clean Growth, AI & Data, Ageing Society. " * 8).data

    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= MAX_LINE_OCTETS for line in data.split(b"\r\n"))


def test_components_are_balanced_and_carry_the_required_properties() -> None:
    parsed = parse(invite().data)
    names = [name for name, _, _ in parsed]

    assert [value for name, _, value in parsed if name in {"BEGIN", "END"}] == [
        "VCALENDAR",
        "VEVENT",
        "VEVENT",
        "VCALENDAR",
    ]
    for required in ("PRODID", "VERSION", "METHOD", "UID", "DTSTAMP", "DTSTART", "SUMMARY", "ORGANIZER"):
        assert names.count(required) == 1, required
    assert properties(invite().data)["VERSION"] == "2.0"


def test_local_times_are_written_in_utc_across_the_clock_change() -> None:
    summer = properties(invite().data)
    winter = properties(invite(day=date(2019, 12, 13)).data)

    assert (summer["DTSTART"], summer["DTEND"]) == ("20191004T090000Z", "20191004T113000Z")
    assert (winter["DTSTART"], winter["DTEND"]) == ("20191213T100000Z", "20191213T123000Z")
    assert summer["DTSTAMP"] == "20190913T080000Z"


def test_no_start_time_makes_an_all_day_event() -> None:
    parsed = parse(invite(start=None, end=None).data)
    dates = {name: (parameters, value) for name, parameters, value in parsed if name in {"DTSTART", "DTEND"}}

    assert dates == {"DTSTART": ({"VALUE": "DATE"}, "20191004"), "DTEND": ({"VALUE": "DATE"}, "20191005")}


def test_a_start_without_an_end_has_no_dtend() -> None:
    assert "DTEND" not in properties(invite(end=None).data)


def test_text_is_escaped_and_reads_back_unchanged() -> None:
    summary = "Board; Strategic, Special\\Extraordinary"
    description = "Agenda:\n1. Apologies, declarations\r\n2. LIS; final draft"

    read = properties(invite(summary=summary, description=description).data)

    assert unescape(read["SUMMARY"]) == summary
    assert unescape(read["DESCRIPTION"]) == description.replace("\r\n", "\n")


def test_folding_never_splits_a_utf8_character() -> None:
    line = "DESCRIPTION:" + "é–€😀" * 60
    folded = fold_line(line).encode()

    for piece in folded.split(b"\r\n"):
        assert len(piece) <= MAX_LINE_OCTETS
        piece.decode()  # raises if a character was cut in two
    assert folded.decode().replace("\r\n ", "") == line


def test_a_short_line_is_not_folded() -> None:
    assert fold_line("SUMMARY:Board") == "SUMMARY:Board"
    assert fold_line("X" * 75) == "X" * 75
    assert fold_line("X" * 76) == "X" * 75 + "\r\n X"


def test_people_become_mailto_addresses_with_quoted_names() -> None:
    parsed = parse(invite(attendees=['"Morgan, Alex" <alex.morgan@selep.example>']).data)
    people = {name: (parameters, value) for name, parameters, value in parsed if name in {"ORGANIZER", "ATTENDEE"}}

    assert people["ORGANIZER"] == ({"CN": "SELEP Secretariat"}, "mailto:secretariat@selep.example")
    assert people["ATTENDEE"][0]["CN"] == '"Morgan, Alex"'
    assert people["ATTENDEE"][1] == "mailto:alex.morgan@selep.example"


def test_an_update_and_a_cancellation_keep_the_uid() -> None:
    first, update = properties(invite().data), properties(invite(sequence=1, start=time(14, 0), end=None).data)
    cancel = invite(sequence=2, method="CANCEL")

    assert first["UID"] == update["UID"] == properties(cancel.data)["UID"]
    assert (first["SEQUENCE"], update["SEQUENCE"]) == ("0", "1")
    assert properties(cancel.data)["STATUS"] == "CANCELLED"
    assert "method=CANCEL" in cancel.content_type


def test_the_same_arguments_give_the_same_bytes() -> None:
    assert invite().data == invite().data


def test_escape_text_handles_each_special_character() -> None:
    assert escape_text("a\\b;c,d\ne") == "a\\\\b\\;c\\,d\\ne"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end": time(9, 0)}, "must end after it starts"),
        ({"start": None}, "cannot have an end time"),
        ({"timezone": "Europe/Londres"}, "unknown time zone"),
        ({"stamp": datetime(2019, 9, 13, 8, 0)}, "timezone-aware"),
        ({"method": "INVITE"}, "method must be one of"),
        ({"attendees": ["not an address"]}, "not an email address"),
        ({"sequence": -1}, "cannot be negative"),
    ],
)
def test_bad_arguments_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invite(**changes)
