"""Building the email for a rendered notification, reproducibly.

The same inputs give the same bytes. The Message-ID derives from the notification's
idempotency key, the Date is passed in (never read from the clock), and the MIME
boundaries derive from the Message-ID (the email package would otherwise draw random
ones). So a resend after a crash carries the same Message-ID, and ``message_sha256`` of
a rebuilt message equals the hash recorded the first time.

Structure: ``multipart/alternative`` (text, then HTML, both quoted-printable so no 8-bit
data needs the server's 8BITMIME); with attachments, that alternative sits first inside
a ``multipart/mixed``. Messages carry :class:`MailPolicy`, which works around a CPython
bug that mangles spaces in folded non-ASCII subjects; :func:`wire_bytes` gives the bytes
``smtplib`` sends, which is what :func:`message_sha256` hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import format_datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifications.templates import RenderedMessage

__all__ = ["Attachment", "build_message", "make_message_id", "message_sha256", "wire_bytes"]

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
        return self._legacy_fold(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._legacy_fold(name, value)
        return folded.encode("ascii") if folded else super().fold_binary(name, value)

    def _legacy_fold(self, name: str, value: str) -> str | None:
        if name.lower() != "subject" or self.utf8 or str(value).isascii():
            return None
        header = Header(str(value), "utf-8", maxlinelen=self.max_line_length or None, header_name=name)
        return f"{name}: {header.encode(linesep=self.linesep)}{self.linesep}"


MAIL_POLICY = MailPolicy()


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


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    rendered: RenderedMessage,
    message_id: str,
    headers: Mapping[str, str] = _NO_HEADERS,
    attachments: Sequence[Attachment] = (),
    date: datetime | None = None,
) -> EmailMessage:
    """The email for ``rendered``, with ``message_id`` exactly as given.

    ``date`` (timezone-aware) becomes the Date header; pass the notification's due time,
    not "now", so that a rebuilt message is byte-for-byte the same. ``headers`` adds
    headers such as ``X-Govflow-Key``; it cannot replace the ones built here. Raises
    ``ValueError`` for an empty recipient list, a naive date or a reserved header.
    """
    if isinstance(to, str) or not to:
        raise ValueError("a message needs a list of at least one recipient")
    if date is not None and date.tzinfo is None:
        raise ValueError("the Date header needs a timezone-aware datetime")
    clashes = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if clashes:
        raise ValueError(f"build_message sets these headers itself: {', '.join(clashes)}")

    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = rendered.subject
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # Automatic mail: ask mail systems not to send out-of-office replies back to the sender.
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
    _fix_boundaries(message, message_id)
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as ``smtplib`` sends it: its own policy, CRLF line ends."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def message_sha256(message: EmailMessage) -> str:
    """SHA-256 (hex) of the message's canonical bytes, :func:`wire_bytes`."""
    return hashlib.sha256(wire_bytes(message)).hexdigest()


def _split_content_type(content_type: str) -> tuple[str, str, dict[str, str]]:
    probe = Message()
    probe["Content-Type"] = content_type
    if "/" not in content_type.split(";", 1)[0]:
        raise ValueError(f"'{content_type}' is not a MIME type")
    params = {str(key): str(value) for key, value in (probe.get_params() or [])[1:]}
    return probe.get_content_maintype(), probe.get_content_subtype(), params


def _fix_boundaries(message: EmailMessage, message_id: str) -> None:
    # Boundaries from the Message-ID instead of random ones. "=_" cannot occur in a
    # quoted-printable or base64 body ("=" is always followed by hex digits or a line
    # end in one, and is only padding in the other), so the boundary cannot collide.
    stem = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    for index, part in enumerate(part for part in message.walk() if part.is_multipart()):
        part.set_boundary(f"=_govflow_{stem}_{index}")
