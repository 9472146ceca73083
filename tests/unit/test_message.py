"""Building the email: multipart/alternative, deterministic Message-ID and bytes, attachments.

What is built is read back with the standard parser, and compared byte for byte with what
``email.message.EmailMessage`` builds from the same inputs (the reference below).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from email import message_from_bytes, policy, quoprimime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.ics import meeting_invite
from notifications.message import (
    MAIL_POLICY,
    Attachment,
    OutgoingMessage,
    _quoted_printable,
    _split_content_type,
    build_message,
    make_message_id,
)
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


def build(**changes: Any) -> OutgoingMessage:
    arguments: dict[str, Any] = {
        "sender": "govflow <govflow@selep.example>",
        "to": ["Alex Morgan <alex.morgan@selep.example>"],
        "rendered": RENDERED,
        "message_id": make_message_id(KEY, "selep.example"),
        "date": DUE,
        **changes,
    }
    return build_message(**arguments)


def reparse(message: OutgoingMessage) -> EmailMessage:
    parsed = message_from_bytes(message.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.defects == [] and all(part.defects == [] for part in parsed.walk())
    return parsed


def reference(
    *,
    sender: str,
    to: Sequence[str],
    rendered: RenderedMessage,
    message_id: str,
    headers: Mapping[str, str] = {},
    attachments: Sequence[Attachment] = (),
    date: datetime | None = None,
) -> bytes:
    """The bytes ``EmailMessage`` gives for the same inputs (how build_message used to build)."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = rendered.subject
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    for name, value in headers.items():
        message[name] = value
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    for attachment in attachments:
        maintype, subtype, params = _split_content_type(attachment.content_type)
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename, params=params
        )
    stem = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    for index, part in enumerate(part for part in message.walk() if part.is_multipart()):
        part.set_boundary(f"=_govflow_{stem}_{index}")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


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

    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.data).hexdigest()


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
    assert build(**changes).sha256 != build().sha256


def test_the_bytes_have_crlf_line_ends_and_no_line_over_78_characters() -> None:
    message = build(attachments=[INVITE], rendered=RenderedMessage("k", "s", "x" * 300 + "\n" + "é" * 100, "<p>\n"))

    assert b"\n" not in message.data.replace(b"\r\n", b"")
    assert max(len(line) for line in message.data.split(b"\r\n")) <= 78
    assert message.data.isascii()


def test_the_envelope_is_the_addresses_of_from_and_to() -> None:
    message = build(to=["Alex Morgan <alex.morgan@selep.example>", "sam.patel@selep.example"])

    assert message.sender == "govflow@selep.example"
    assert message.recipients == ("alex.morgan@selep.example", "sam.patel@selep.example")
    assert message.message_id == make_message_id(KEY, "selep.example")


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
    assert all(len(line) <= 78 for line in message.data.split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_without_a_date_there_is_no_date_header() -> None:
    assert reparse(build(date=None))["Date"] is None


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


# Inputs of the kinds a notification carries, and then some: non-ASCII, long lines and
# words, trailing spaces, lone carriage returns, dots and "From " at line starts.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400) | st.sampled_from(
    ["", "\n", ".\n", "From here\n", "a \nb\t\n", "x" * 77 + "é", "=" * 90, "line\r\nnext\rlast "]
)
_LINE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120).filter(
    lambda value: len(value.splitlines()) <= 1
)
_ASCII_LINE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
_NAME = st.text(st.characters(whitelist_categories=("L", "Nd", "Zs"), whitelist_characters=".,'-()\""), max_size=40)
_ADDRESS = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}@[a-z0-9-]{1,15}(\.[a-z]{2,6}){1,2}", fullmatch=True)
_DATE = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)),
)


@st.composite
def message_inputs(draw: st.DrawFn) -> dict[str, Any]:
    recipients = draw(st.lists(st.tuples(_NAME, _ADDRESS), min_size=1, max_size=3))
    key = draw(st.text(min_size=1, max_size=200))
    attachments = draw(
        st.lists(
            st.builds(
                Attachment,
                filename=st.sampled_from(["invite.ics", "agenda.pdf", "café notes.txt"]),
                content_type=st.sampled_from(
                    ['text/calendar; method=REQUEST; charset="utf-8"', "application/pdf", "text/plain"]
                ),
                data=st.binary(max_size=300),
            ),
            max_size=2,
        )
    )
    return {
        "sender": draw(st.sampled_from(["govflow@selep.example", "govflow <govflow@selep.example>"])),
        "to": [formataddr(pair) for pair in recipients],
        "rendered": RenderedMessage("k", draw(_LINE | _ASCII_LINE), draw(_TEXT), draw(_TEXT)),
        "message_id": make_message_id(key, draw(st.sampled_from(["selep.example", "mail.gov.example"]))),
        "headers": {"X-Govflow-Key": draw(_ASCII_LINE.filter(str.strip)), "X-Govflow-Rule": draw(_LINE)},
        "attachments": attachments,
        "date": draw(st.none() | _DATE),
    }


@settings(max_examples=300, deadline=None)
@given(message_inputs())
def test_the_bytes_are_those_the_email_package_builds(inputs: dict[str, Any]) -> None:
    assert build_message(**inputs).data == reference(**inputs)


@settings(max_examples=100, deadline=None)
@given(message_inputs(), _LINE.map(lambda subject: " ".join(subject.split())).filter(bool))
def test_what_is_built_reads_back_with_the_standard_parser(inputs: dict[str, Any], subject: str) -> None:
    # Subjects as the renderer makes them: one line, single spaces, not empty (a parser
    # reads a blank subject as empty).
    rendered: RenderedMessage = replace(inputs["rendered"], subject=subject)
    message = build_message(**inputs | {"rendered": rendered})
    parsed = reparse(message)

    assert parsed["Message-ID"] == message.message_id
    assert parsed["Subject"] == rendered.subject
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    for part, source in ((text, rendered.text), (html, rendered.html)):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        # Line ends become CRLF and the last line gets one: the text is otherwise unchanged.
        assert part.get_payload(decode=True) == b"\r\n".join(source.encode().splitlines()) + b"\r\n"
    attached = list(parsed.iter_attachments())
    assert [part.get_payload(decode=True) for part in attached] == [a.data for a in inputs["attachments"]]


@settings(max_examples=300, deadline=None)
@given(_TEXT.map(lambda text: text.encode().decode("latin-1")) | st.text(st.sampled_from(" \t=.\nxé"), max_size=300))
def test_the_quoted_printable_encoder_writes_what_the_email_package_writes(body: str) -> None:
    assert _quoted_printable(body) == quoprimime.body_encode(body, 78, "\r\n")
