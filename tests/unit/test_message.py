"""Building the email: multipart/alternative, deterministic Message-ID and bytes, attachments."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from notifications.ics import meeting_invite
from notifications.message import Attachment, build_message, make_message_id, message_sha256, wire_bytes
from notifications.templates import RenderedMessage

KEY = "selep-lis|call_for_papers|2019-10-04|alex.morgan@selep.example"
DUE = datetime(2019, 9, 13, 8, 0, tzinfo=UTC)
RENDERED = RenderedMessage(
    kind="call_for_papers",
    subject="Call for papers: SELEP Strategic Board, Friday 4 October 2019 – “LIS”",
    text="Dear Alex Morgan,\n\nPapers are due by Friday 20 September 2019.\n",
    html="<!DOCTYPE html>\n<p>Papers are due by <strong>Friday 20 September 2019</strong>.</p>\n",
)
INVITE = meeting_invite(
    uid="strategic-board-2019-10-04@selep.example",
    summary="SELEP Strategic Board",
    description="Local Industrial Strategy",
    day=date(2019, 10, 4),
    start=time(10),
    end=time(12),
    timezone="Europe/London",
    organizer="secretariat@selep.example",
    attendees=["alex.morgan@selep.example"],
    stamp=DUE,
)


def build(**changes: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "sender": "govflow <govflow@selep.example>",
        "to": ["Alex Morgan <alex.morgan@selep.example>"],
        "rendered": RENDERED,
        "message_id": make_message_id(KEY, "selep.example"),
        "date": DUE,
        **changes,
    }
    return build_message(**arguments)


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(wire_bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_message_id_is_derived_from_the_key() -> None:
    message_id = make_message_id(KEY, "selep.example")

    assert message_id == make_message_id(KEY, "selep.example")
    assert message_id != make_message_id(KEY + "x", "selep.example")
    assert message_id.startswith("<") and message_id.endswith("@selep.example>")
    assert len(message_id.split("@")[0]) == 1 + 32


@pytest.mark.parametrize(("key", "domain"), [("", "selep.example"), (KEY, ""), (KEY, "a@b"), (KEY, "a b")])
def test_a_message_id_needs_a_key_and_a_plain_domain(key: str, domain: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        make_message_id(key, domain)


def test_a_message_is_text_and_html_alternatives_with_the_given_headers() -> None:
    message = reparse(build(headers={"X-Govflow-Key": KEY}))

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == make_message_id(KEY, "selep.example")
    assert message["Subject"] == RENDERED.subject
    assert message["Date"] == "Fri, 13 Sep 2019 08:00:00 +0000"
    assert message["X-Govflow-Key"] == KEY
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    # The parser keeps the CRLF line ends of the wire form.
    assert text is not None and text.get_content().replace("\r\n", "\n") == RENDERED.text
    assert html is not None and html.get_content().replace("\r\n", "\n") == RENDERED.html


def test_attachments_make_it_mixed_with_the_alternatives_first() -> None:
    message = reparse(build(attachments=[INVITE]))

    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["multipart/alternative", "text/calendar"]
    calendar = parts[1]
    assert calendar.get_filename() == "invite.ics"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content().encode() == INVITE.data


def test_the_same_inputs_give_the_same_bytes_and_hash() -> None:
    first, second = build(attachments=[INVITE]), build(attachments=[INVITE])

    assert first.as_bytes() == second.as_bytes()
    assert message_sha256(first) == message_sha256(second)
    assert len(message_sha256(first)) == 64


@pytest.mark.parametrize(
    "changes",
    [
        {"message_id": make_message_id("another key", "selep.example")},
        {"date": datetime(2019, 9, 16, 8, 0, tzinfo=UTC)},
        {"to": ["sam.patel@selep.example"]},
        {"attachments": [Attachment("note.txt", "text/plain", b"x")]},
    ],
)
def test_any_change_changes_the_hash(changes: dict[str, Any]) -> None:
    assert message_sha256(build(**changes)) != message_sha256(build())


def test_the_hash_is_of_the_crlf_bytes_sent_by_smtp() -> None:
    message = build()

    assert b"\n" not in wire_bytes(message).replace(b"\r\n", b"")
    assert message_sha256(message) == message_sha256(reparse(message))


@pytest.mark.parametrize(
    "subject",
    [
        RENDERED.subject,
        "Decision recorded: “Local Industrial Strategy – final draft”, approved with conditions – 13 December 2019",
        "Gate passed: Strategaeth Ddiwydiannol Leol – Bwrdd Strategol – ŵ ŷ",
        "Gate passed: an ASCII subject long enough to be folded by the generator somewhere near its end",
    ],
)
def test_a_subject_reads_back_exactly_however_it_is_folded(subject: str) -> None:
    # CPython's own folder loses or doubles spaces between encoded words in such subjects.
    message = build(rendered=RenderedMessage("gate_passed", subject, "text\n", "<p>html</p>\n"))

    assert reparse(message)["Subject"] == subject
    assert all(len(line) <= 78 for line in wire_bytes(message).split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_without_a_date_there_is_no_date_header() -> None:
    assert build(date=None)["Date"] is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": []}, "at least one recipient"),
        ({"to": "alex.morgan@selep.example"}, "at least one recipient"),
        ({"date": datetime(2019, 9, 13, 8, 0)}, "timezone-aware"),
        ({"headers": {"Subject": "other"}}, "sets these headers itself: Subject"),
        ({"attachments": [Attachment("x", "calendar", b"")]}, "not a MIME type"),
    ],
)
def test_bad_arguments_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**changes)


def test_a_header_value_cannot_smuggle_in_another_header() -> None:
    with pytest.raises(ValueError):
        build(headers={"X-Govflow-Key": "k\r\nBcc: evil@example.com"})
