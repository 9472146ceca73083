"""Building the email for a rendered notification, reproducibly, straight to its wire bytes.

The same inputs give the same bytes. The Message-ID derives from the notification's
idempotency key, the Date is passed in (never read from the clock), and the MIME
boundaries derive from the Message-ID. So a resend after a crash carries the same
Message-ID, and the SHA-256 of a rebuilt message equals the hash recorded the first time.

Structure: ``multipart/alternative`` (text, then HTML, both quoted-printable so no 8-bit
data needs the server's 8BITMIME); with attachments (base64), that alternative sits
first inside a ``multipart/mixed``. Headers are folded at 78 characters; non-ASCII is
RFC 2047 encoded.

Why not ``email.message.EmailMessage``: building one, then flattening it, cost about
3 ms a message (mostly parsing every header value into a header object only to fold it
back into text), several times the SMTP exchange itself. :func:`build_message` writes
the bytes directly and produces exactly what ``EmailMessage`` produced for the same
inputs (the tests compare the two on generated inputs), so hashes recorded before stay
reproducible. It still calls the ``email`` package where exactness is hard and speed
does not matter: the quoted-printable encoder, header values that are not plain short
ASCII, and the headers of each kind of attachment (computed once). The quirks kept for
that reason: the HTML and attachment parts repeat ``MIME-Version``, and :class:`MailPolicy`
works around a CPython bug that mangles spaces in folded non-ASCII subjects.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from notifications.templates import RenderedMessage

__all__ = ["Attachment", "OutgoingMessage", "build_message", "make_message_id"]

# Headers build_message owns; an extra header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class MailPolicy(EmailPolicy):
    """``email.policy.default``, except that a non-ASCII Subject is folded by ``email.header``.

    CPython's folder (3.11 to 3.13 at least) loses the space between two encoded words
    and doubles the one at a fold, so "2019 – “LIS”" arrives as "2019  –“LIS”". The
    older ``Header`` encoder keeps spaces inside the encoded words and reads back exactly.
    """

    def fold(self, name: str, value: str) -> str:
        return self.legacy_fold(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self.legacy_fold(name, value)
        return folded.encode("ascii") if folded else super().fold_binary(name, value)

    def legacy_fold(self, name: str, value: str) -> str | None:
        """The folded Subject line when ``value`` is not ASCII, else None (the default folder serves)."""
        if name.lower() != "subject" or self.utf8 or str(value).isascii():
            return None
        header = Header(str(value), "utf-8", maxlinelen=self.max_line_length or None, header_name=name)
        return f"{name}: {header.encode(linesep=self.linesep)}{self.linesep}"


MAIL_POLICY = MailPolicy()
WIRE_POLICY = MAIL_POLICY.clone(linesep="\r\n")
"""The policy of the bytes sent: ``smtplib`` sends CRLF line ends."""

MAX_LINE: Final = 78
CRLF: Final = "\r\n"
# Header values written as they are: printable ASCII words separated by single spaces,
# with no encoded word ("=?") the email package would decode and encode again.
_PLAIN_VALUE: Final = re.compile(r"(?!.*=\?)[!-~]+(?: [!-~]+)*")
# What format_datetime writes for an aware datetime, and make_message_id for a plain domain.
_DATE_VALUE: Final = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d\d:\d\d:\d\d [+-]\d{4}"
)
_MESSAGE_ID_VALUE: Final = re.compile(r"<[0-9a-f]{32}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")
# Header names the email package parses as structured values (addresses, dates, MIME
# parameters…): their values are re-rendered, so only the email package folds them exactly.
_HEADERS: Final = HeaderRegistry()
"""The header classes of ``email.policy.default`` (the policy's own ``header_factory``)."""
_STRUCTURED: Final = frozenset(_HEADERS.registry) - {"subject"}
_ADDRESS_HEADERS: Final = frozenset({"from", "to"})
# Quoted-printable as email.quoprimime.body_encode writes it: every character but these
# becomes "=XX" (the text was decoded from UTF-8 bytes as Latin-1, so all are below 256).
_QP_UNSAFE: Final = re.compile(r"[^\t\n\r !-<>-~]")
_QP_ESCAPES: Final = {chr(octet): f"={octet:02X}" for octet in range(256)}


@dataclass(frozen=True)
class Attachment:
    """A file to attach: ``content_type`` may carry parameters (``text/calendar; method=REQUEST``)."""

    filename: str
    content_type: str
    data: bytes


def make_message_id(key: str, domain: str) -> str:
    """``<sha256(key)[:32]@domain>``: the same idempotency key always gives the same Message-ID."""
    if not key:
        raise ValueError("a Message-ID needs a non-empty idempotency key")
    if not domain or any(character in domain for character in "<>@ \t\r\n"):
        raise ValueError(f"'{domain}' is not a mail domain for a Message-ID")
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for SMTP: its envelope and its bytes exactly as they are sent."""

    message_id: str
    sender: str
    """The envelope sender (``MAIL FROM``): the address of the From header."""
    recipients: tuple[str, ...]
    """The envelope recipients (``RCPT TO``): the addresses of the To header."""
    data: bytes
    """The message, CRLF line ends, as the server receives it (before dot-stuffing)."""

    @cached_property
    def sha256(self) -> str:
        """SHA-256 (hex) of :attr:`data`: the hash ``NotificationSent`` records."""
        return hashlib.sha256(self.data).hexdigest()


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    rendered: RenderedMessage,
    message_id: str,
    headers: Mapping[str, str] = _NO_HEADERS,
    attachments: Sequence[Attachment] = (),
    date: datetime | None = None,
) -> OutgoingMessage:
    """The email for ``rendered``, with ``message_id`` exactly as given.

    ``date`` (timezone-aware) becomes the Date header; pass the notification's due time,
    not "now", so that a rebuilt message is byte-for-byte the same. ``headers`` adds
    headers such as ``X-Govflow-Key``; it cannot replace the ones built here. Raises
    ``ValueError`` for an empty recipient list, not one sender address, a naive date,
    a reserved header or a header value with a line break.
    """
    if isinstance(to, str) or not to:
        raise ValueError("a message needs a list of at least one recipient")
    if date is not None and date.tzinfo is None:
        raise ValueError("the Date header needs a timezone-aware datetime")
    clashes = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if clashes:
        raise ValueError(f"build_message sets these headers itself: {', '.join(clashes)}")
    recipients = _addresses(tuple(to))
    if not recipients:
        raise ValueError("a message needs a list of at least one recipient")
    envelope_sender = _addresses((sender,))
    if len(envelope_sender) != 1:
        raise ValueError(f"'{sender}' is not one sender address")

    lines = [_header("From", sender), _header("To", ", ".join(to)), _header("Subject", rendered.subject)]
    if date is not None:
        lines.append(_header("Date", format_datetime(date)))
    lines.append(_header("Message-ID", message_id))
    # Automatic mail: ask mail systems not to send out-of-office replies back to the sender.
    lines.append("Auto-Submitted: auto-generated\r\n")
    lines.append("X-Auto-Response-Suppress: All\r\n")
    lines.extend(_header(name, value) for name, value in headers.items())
    lines.append("MIME-Version: 1.0\r\n")

    # Boundaries from the Message-ID instead of random ones, numbered outermost first.
    # "=_" cannot occur in a quoted-printable or base64 body ("=" is always followed by
    # hex digits or a line end in one, and is only padding in the other), so the
    # boundary cannot collide with the content.
    stem = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    text = _text_part(rendered.text, "plain", mime_version=False)
    html = _text_part(rendered.html, "html", mime_version=True)
    if attachments:
        outer, inner = f"=_govflow_{stem}_0", f"=_govflow_{stem}_1"
        alternative = _multipart_head("alternative", inner) + CRLF + _multipart(inner, [text, html])
        parts = [alternative, *(_attachment_part(attachment) for attachment in attachments)]
        lines += [_multipart_head("mixed", outer), CRLF, _multipart(outer, parts)]
    else:
        boundary = f"=_govflow_{stem}_0"
        lines += [_multipart_head("alternative", boundary), CRLF, _multipart(boundary, [text, html])]
    data = "".join(lines).encode("ascii", "surrogateescape")
    return OutgoingMessage(message_id, envelope_sender[0], recipients, data)


@lru_cache(maxsize=4096)
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses in address-header values; cached, as the same few come back all the time."""
    return tuple(address for _, address in getaddresses(list(values)) if address)


def _header(name: str, value: str) -> str:
    """``Name: value`` folded as ``EmailMessage`` folds it, CRLF-terminated."""
    lowered = name.lower()
    if len(name) + 2 + len(value) <= MAX_LINE:
        if lowered not in _STRUCTURED and _PLAIN_VALUE.fullmatch(value):
            return f"{name}: {value}{CRLF}"
        if (lowered == "date" and _DATE_VALUE.fullmatch(value)) or (
            lowered == "message-id" and _MESSAGE_ID_VALUE.fullmatch(value)
        ):
            return f"{name}: {value}{CRLF}"
    if lowered == "subject" and "=?" not in value and len(value.splitlines()) <= 1:
        # A non-ASCII subject needs no header object: MailPolicy folds the text itself.
        folded = WIRE_POLICY.legacy_fold(name, value)
        if folded is not None:
            return folded
    if lowered in _ADDRESS_HEADERS:
        # The same sender and the same few recipients come back message after message.
        return _folded_address(name, value)
    return _folded(name, value)


@lru_cache(maxsize=4096)
def _folded_address(name: str, value: str) -> str:
    return _folded(name, value)


def _folded(name: str, value: str) -> str:
    # As EmailMessage does it (EmailPolicy.header_store_parse): refuse line breaks, parse
    # into a header object, fold that.
    if len(value.splitlines()) > 1:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    header = _header_class(name.lower())(name, value)
    return WIRE_POLICY.fold_binary(name, header).decode("ascii", "surrogateescape")


@lru_cache(maxsize=256)
def _header_class(name: str) -> type[BaseHeader]:
    # The registry builds a new class on every lookup, which costs more than the parsing.
    return _HEADERS[name]


def _text_part(content: str, subtype: str, *, mime_version: bool) -> str:
    # As email.contentmanager encodes text: lines normalised, a final line end, then
    # quoted-printable at the policy's line length, with the CRLF line ends of the wire.
    normal = b"\n".join(content.encode("utf-8").splitlines()) + b"\n"
    body = _quoted_printable(normal.decode("latin-1"))
    head = f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable{CRLF}'
    if mime_version:
        head += f"MIME-Version: 1.0{CRLF}"
    return head + CRLF + body


def _quoted_printable(body: str) -> str:
    """``email.quoprimime.body_encode(body, MAX_LINE, CRLF)``, the same text, about twice as fast.

    ``body_encode`` quotes with ``str.translate`` over a 256-entry table, which costs
    more than the rest of the message; a regular expression finds the few characters
    that need quoting. The line wrapping below is ``body_encode``'s own (the tests
    compare the two).
    """
    quoted = _QP_UNSAFE.sub(lambda found: _QP_ESCAPES[found[0]], body)
    lines: list[str] = []
    for line in quoted.splitlines():
        # Break the line into pieces of at most MAX_LINE - 1 characters and a soft break
        # ("="), never inside an escape.
        start, last_start = 0, len(line) - 1 - MAX_LINE
        while start <= last_start:
            stop = start + MAX_LINE - 1
            if line[stop - 2] == "=":
                lines.append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                lines.append(line[start:stop])
                start = stop - 1
            else:
                lines.append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":
            # Whitespace at the end of a line is quoted, with a soft break where needed.
            room = start - last_start
            if room >= 3:
                tail = _QP_ESCAPES[line[-1]]
            elif room == 2:
                tail = line[-1] + "=" + CRLF
            else:
                tail = "=" + CRLF + _QP_ESCAPES[line[-1]]
            lines.append(line[start:-1] + tail)
        else:
            lines.append(line[start:])
    if body and body[-1] in "\r\n":
        lines.append("")
    return CRLF.join(lines)


def _attachment_part(attachment: Attachment) -> str:
    chunk = MAX_LINE // 4 * 3
    data = attachment.data
    body = "".join(
        binascii.b2a_base64(data[i : i + chunk], newline=False).decode("ascii") + CRLF
        for i in range(0, len(data), chunk)
    )
    return _attachment_head(attachment.filename, attachment.content_type) + CRLF + body


@lru_cache(maxsize=64)
def _attachment_head(filename: str, content_type: str) -> str:
    """The part headers of an attachment, built once per file name and type by the email package.

    They do not depend on the data, and an invitation's are the same in every message.
    """
    maintype, subtype, params = _split_content_type(content_type)
    part = EmailMessage(policy=WIRE_POLICY)
    part.set_content(b"", maintype=maintype, subtype=subtype, filename=filename, params=params)
    head, _, _ = part.as_bytes().partition(b"\r\n\r\n")
    return head.decode("ascii", "surrogateescape") + CRLF


def _multipart_head(subtype: str, boundary: str) -> str:
    line = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    if len(line) > MAX_LINE:
        line = f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"'
    return line + CRLF


def _multipart(boundary: str, parts: list[str]) -> str:
    return f"--{boundary}{CRLF}" + f"{CRLF}--{boundary}{CRLF}".join(parts) + f"{CRLF}--{boundary}--{CRLF}"


def _split_content_type(content_type: str) -> tuple[str, str, dict[str, str]]:
    probe = Message()
    probe["Content-Type"] = content_type
    if "/" not in content_type.split(";", 1)[0]:
        raise ValueError(f"'{content_type}' is not a MIME type")
    params = {str(key): str(value) for key, value in (probe.get_params() or [])[1:]}
    return probe.get_content_maintype(), probe.get_content_subtype(), params
