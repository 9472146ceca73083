"""Sending email: the ``Mailer`` port and its SMTP adapter.

``SmtpMailer`` speaks SMTP through ``smtplib`` and translates every failure into the
package's errors, so callers decide on three outcomes only:

- ``SmtpConfigError``: the settings cannot work (no server there, login refused, no
  STARTTLS). Raised by ``check()`` at start and by ``send()`` if it happens later; stop
  and fix the configuration rather than blame the message.
- ``TransientSmtpError``: a 4xx reply, a dropped connection, a timeout, the server down.
  The message was not accepted; send the same message again later.
- ``PermanentSmtpError``: a 5xx reply, a refused recipient. Sending it again will fail.

Used as a context manager, one connection serves a whole batch. The mailer sends the
message's bytes as built (they are what was hashed), without serialising anything again.
``submit`` hands a message over without waiting for the server's final answer, which
takes the server longest (it stores the message): the caller prepares the next message
meanwhile, then reads the answer with ``result()``.

How many round trips a message costs depends on the server:

- A server that advertises PIPELINING (RFC 2920; most do) gets ``MAIL``, every ``RCPT``
  and ``DATA`` in one write, sent before the answer to the previous message is read (the
  RFC allows a group to follow the end of a message's data): one round trip per message,
  then the data. Over a network with milliseconds of latency that is most of the time
  a message takes. ``smtp.pipelining = false`` turns it off for a server that advertises
  it but mishandles it.
- Otherwise one command at a time, as SMTP without PIPELINING requires: the next
  ``submit`` reads a pending answer first, then ``MAIL``, each ``RCPT`` and ``DATA`` wait
  for their replies.

The socket sends at once (``TCP_NODELAY``): a group written while the previous message's
data is not yet acknowledged would otherwise wait for that acknowledgement.

It does not ask an idle connection whether it is still open (a NOOP round trip before
every message cost as much as a tenth of the exchange): when the server has closed it in
between (a timeout, a restart), the first command of the next transaction, ``MAIL``,
fails or is answered 421, before the server accepted anything of the message, and the
mailer reconnects and starts that transaction again, once. Any later failure is
reported, never retried here, because only the caller knows whether a resend is safe.
Passwords never appear in errors or logs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from types import TracebackType
from typing import Protocol, TypeVar

from notifications.errors import NotificationError, PermanentSmtpError, SmtpConfigError, TransientSmtpError
from notifications.message import OutgoingMessage
from notifications.smtp_failures import (
    Refused,
    Unreachable,
    by_code,
    describe,
    refusal,
    reply_text,
    setup_failure,
    unreachable,
)

__all__ = ["Mailer", "SmtpMailer", "SmtpSettings", "Submission"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# SMTP ends the data with a line holding only "."; a line of the message starting with
# "." gets another one (RFC 5321 4.5.2), as smtplib does it.
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")


class Submission:
    """A message handed to a mailer; :meth:`result` gives the server's answer to it."""

    def __init__(self, answer: Callable[[], str]) -> None:
        self._answer: Callable[[], str] | None = answer
        self._outcome: str | NotificationError = ""

    @classmethod
    def done(cls, outcome: str | NotificationError) -> Submission:
        """A submission whose answer is already known: a Message-ID or the error."""
        submission = cls(lambda: "")
        submission._answer, submission._outcome = None, outcome
        return submission

    def settle(self) -> None:
        """Wait for the answer, if not done yet, and keep it for :meth:`result`."""
        if self._answer is not None:
            answer, self._answer = self._answer, None
            try:
                self._outcome = answer()
            except NotificationError as error:
                self._outcome = error

    def result(self) -> str:
        """The Message-ID once the server accepted the message; raises as ``Mailer.send`` does."""
        self.settle()
        if isinstance(self._outcome, NotificationError):
            raise self._outcome
        return self._outcome


class Mailer(Protocol):
    """The port for sending email.

    ``send`` returns the message's Message-ID once the server (or fake) has accepted it,
    and raises ``TransientSmtpError`` (try again later), ``PermanentSmtpError`` (do not)
    or ``SmtpConfigError`` (the mailer itself is misconfigured). ``submit`` starts the
    same and returns at once; its ``result()`` returns or raises what ``send`` would.
    """

    def send(self, message: OutgoingMessage) -> str: ...

    def submit(self, message: OutgoingMessage) -> Submission: ...


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit mail; the names follow ``config.toml`` ``[smtp]``."""

    host: str
    port: int
    sender: str
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout: float = 30.0
    pipelining: bool = True
    """Use PIPELINING when the server advertises it (``smtp.pipelining``)."""

    def __post_init__(self) -> None:
        if not self.host:
            raise SmtpConfigError("no SMTP server given (smtp.host)")
        if not 0 < self.port < 65536:
            raise SmtpConfigError(f"SMTP port {self.port} is not a port number (smtp.port)")
        if "@" not in self.sender or any(character.isspace() for character in self.sender):
            raise SmtpConfigError(f"{self.sender!r} is not a sender address (smtp.from)")
        if self.timeout <= 0:
            raise SmtpConfigError("the SMTP timeout must be positive (smtp.timeout_seconds)")
        if self.username and not self.starttls and not self.loopback:
            raise SmtpConfigError(
                f"refusing to send the SMTP password to {self.where} without TLS: "
                "set smtp.starttls = true (smtp.starttls)"
            )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ip_address(self.host).is_loopback
        except ValueError:
            return False


class SmtpMailer:
    """The SMTP adapter of :class:`Mailer`."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None
        self._batch = False
        self._pending: Submission | None = None

    def check(self) -> None:
        """Connect, STARTTLS and log in as configured, then quit; raises ``SmtpConfigError``."""
        connection = self._connect()
        _quietly_quit(connection)

    def __enter__(self) -> SmtpMailer:
        self._batch = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._batch = False
        try:
            if self._pending is not None:
                self._pending.settle()
        finally:
            self._drop()

    def send(self, message: OutgoingMessage) -> str:
        """Submit ``message`` and wait for the answer; return its Message-ID (errors: see the module)."""
        return self.submit(message).result()

    def submit(self, message: OutgoingMessage) -> Submission:
        """Hand ``message`` to the server, all of it, without waiting for the final answer.

        Within a batch (the context manager) the answer is read by the submission's
        ``result()``, or by the next ``submit`` or the end of the batch, whichever comes
        first. Outside a batch there is nothing to do meanwhile: it is read at once.
        """
        try:
            connection, refused = self._translated(lambda: self._begin(message))
        except NotificationError as error:
            self._settle_pending()
            if not self._batch:
                self._drop()
            return Submission.done(error)
        submission = Submission(lambda: self._answer(connection, message, refused))
        if self._batch:
            self._pending = submission
        else:
            submission.settle()
        return submission

    def _begin(self, message: OutgoingMessage) -> tuple[smtplib.SMTP, Refused]:
        """Start the transaction of ``message`` and send its data (see the module doc).

        On a connection used before, a server that closed it before taking ``MAIL`` gets
        the transaction again on a new connection, once. Returns the connection and the
        refused recipients (when some were accepted); raises ``smtplib`` errors.
        """
        reused = self._connection is not None
        try:
            return self._transaction(self._connected(), message)
        except _ClosedBeforeMail as closed:
            self._drop()
            if not reused:
                raise closed.error from None
        log.info("SMTP connection to %s was closed by the server; reconnecting", self.settings.where)
        try:
            return self._transaction(self._connected(), message)
        except _ClosedBeforeMail as closed:
            self._drop()
            raise closed.error from None

    def _transaction(self, connection: smtplib.SMTP, message: OutgoingMessage) -> tuple[smtplib.SMTP, Refused]:
        try:
            connection.ehlo_or_helo_if_needed()
            options = self._mail_options(connection, message)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._settle_pending()
            raise _ClosedBeforeMail(error) from None
        if self.settings.pipelining and connection.has_extn("pipelining"):
            refused = self._pipelined(connection, message, options)
        else:
            self._settle_pending()
            refused = self._lockstep(connection, message, options)
        data = message.data if message.data.endswith(b"\r\n") else message.data + b"\r\n"
        connection.send(_LINE_STARTING_WITH_DOT.sub(b"..", data) + b".\r\n")
        return connection, refused

    def _lockstep(self, connection: smtplib.SMTP, message: OutgoingMessage, options: list[str]) -> Refused:
        """MAIL, RCPT for each recipient and DATA, each waiting for its reply, as ``smtplib.SMTP.sendmail``."""
        try:
            code, reply = connection.mail(message.sender, options)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise _ClosedBeforeMail(error) from None
        if code == 421:
            raise _ClosedBeforeMail(smtplib.SMTPSenderRefused(code, reply, message.sender))
        if code != 250:
            self._abandon(connection, code)
            raise smtplib.SMTPSenderRefused(code, reply, message.sender)
        refused: Refused = {}
        for recipient in message.recipients:
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                self._drop()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(message.recipients):
            self._abandon(connection, 0)
            raise smtplib.SMTPRecipientsRefused(refused)
        connection.putcmd("data")
        code, reply = connection.getreply()
        if code != 354:
            self._abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)
        return refused

    def _pipelined(self, connection: smtplib.SMTP, message: OutgoingMessage, options: list[str]) -> Refused:
        """MAIL, every RCPT and DATA in one write, then their replies (RFC 2920).

        The group goes out before the answer to the previous message is read: that
        answer comes first, then one reply per command of the group.
        """
        group = "".join(
            _command(line)
            for line in (
                f"MAIL FROM:{smtplib.quoteaddr(message.sender)}{''.join(' ' + option for option in options)}",
                *(f"RCPT TO:{smtplib.quoteaddr(recipient)}" for recipient in message.recipients),
                "DATA",
            )
        )
        try:
            connection.send(group.encode())
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._settle_pending()
            raise _ClosedBeforeMail(error) from None
        self._settle_pending()
        if self._connection is not connection:  # the answer to the previous message closed it
            raise _ClosedBeforeMail(smtplib.SMTPServerDisconnected("the server closed the connection"))
        try:
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise _ClosedBeforeMail(error) from None
        if code == 421:
            raise _ClosedBeforeMail(smtplib.SMTPSenderRefused(code, reply, message.sender))
        sender = (code, reply)
        refused: Refused = {}
        for recipient in message.recipients:
            code, reply = connection.getreply()
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                self._drop()
                raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = connection.getreply()
        if code == 354 and (sender[0] != 250 or len(refused) == len(message.recipients)):
            # A server may take DATA with no recipient; it then gets an empty message, ended at once.
            connection.send(b".\r\n")
            code, reply = connection.getreply()
        if sender[0] != 250:
            self._abandon(connection, sender[0])
            raise smtplib.SMTPSenderRefused(*sender, message.sender)
        if len(refused) == len(message.recipients):
            self._abandon(connection, 0)
            raise smtplib.SMTPRecipientsRefused(refused)
        if code != 354:
            self._abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)
        return refused

    def _settle_pending(self) -> None:
        """Read the answer to the message before, if it is still to come."""
        if self._pending is not None:
            self._pending.settle()

    def _answer(self, connection: smtplib.SMTP, message: OutgoingMessage, refused: Refused) -> str:
        """Read the server's answer to the data ``_begin`` sent.

        Whatever the answer, the transaction is over (RFC 5321 4.1.1.4): only a 421 ends
        the connection too.
        """
        self._pending = None
        try:
            code, reply = self._translated(lambda: _reply(connection))
            if code != 250:
                if code == 421:
                    self._drop()
                raise by_code(code, reply_text(reply), "the server refused the message")
        finally:
            if not self._batch:
                self._drop()
        if refused:
            raise refusal(refused, accepted_some=True)
        log.debug("sent %s to %s via %s", message.message_id, ", ".join(message.recipients), self.settings.where)
        return message.message_id

    def _translated(self, step: Callable[[], _T]) -> _T:
        """``step()``, with smtplib's errors translated (see the module docstring)."""
        try:
            return step()
        except smtplib.SMTPRecipientsRefused as error:
            raise refusal(error.recipients, accepted_some=False) from None
        except smtplib.SMTPResponseException as error:
            # Covers SMTPSenderRefused, SMTPDataError and any other reply with a code.
            raise by_code(error.smtp_code, reply_text(error.smtp_error), "the server refused the message") from None
        except smtplib.SMTPNotSupportedError as error:
            where = self.settings.where
            raise PermanentSmtpError(f"the SMTP server at {where} cannot take this message: {error}") from None
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            raise TransientSmtpError(f"lost the connection to {self.settings.where}: {describe(error)}") from None

    @staticmethod
    def _mail_options(connection: smtplib.SMTP, message: OutgoingMessage) -> list[str]:
        options = []
        if connection.does_esmtp and connection.has_extn("size"):
            options.append(f"SIZE={len(message.data)}")
        if not all(address.isascii() for address in (message.sender, *message.recipients)):
            # As smtplib.SMTP.send_message: international addresses need the server's SMTPUTF8.
            if not connection.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("one of the addresses needs SMTPUTF8, which the server lacks")
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        return options

    def _abandon(self, connection: smtplib.SMTP, code: int) -> None:
        """End a refused transaction: reset, so the connection serves the next message.

        A 421 reply means the server is closing the connection; a failed reset, that it has.
        """
        if code != 421:
            try:
                connection.rset()
                return
            except (smtplib.SMTPException, OSError):
                pass
        self._drop()

    def _connected(self) -> smtplib.SMTP:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except Unreachable as error:
                # check() passed at start, so the server is down or unreachable for now.
                raise TransientSmtpError(str(error)) from None
        return self._connection

    def _connect(self) -> smtplib.SMTP:
        settings, where = self.settings, self.settings.where
        # smtplib would otherwise look up this machine's FQDN for EHLO: slow with a poor resolver.
        local_hostname = "localhost" if settings.loopback else None
        try:
            connection = smtplib.SMTP(settings.host, settings.port, local_hostname, timeout=settings.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise unreachable(where, error) from None
        if connection.sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stage = "STARTTLS"
        try:
            if settings.starttls:
                connection.ehlo()
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            stage = "login (AUTH)"
            if settings.username:
                connection.login(settings.username, settings.password)
        except Exception as error:
            _quietly_quit(connection)
            problem = setup_failure(settings, stage, error)
            if problem is None:
                raise
            raise problem from None
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            _quietly_quit(self._connection)
            self._connection = None


class _ClosedBeforeMail(Exception):
    """The server closed the connection before it took ``MAIL``: nothing of the message was accepted."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _reply(connection: smtplib.SMTP) -> tuple[int, bytes]:
    """The next reply; a connection closed meanwhile is reported as ``smtplib`` reports a lost one."""
    if connection.sock is None:
        raise smtplib.SMTPServerDisconnected("the connection was closed")
    return connection.getreply()


def _command(line: str) -> str:
    if "\r" in line or "\n" in line:
        raise ValueError(f"an SMTP command must be one line: {line!r}")
    return line + "\r\n"


def _quietly_quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()
