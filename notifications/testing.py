"""A hand-written fake ``Mailer`` for tests elsewhere: it records what it is given and can
fail on demand, the way ``SmtpMailer`` fails.

    mailer = FakeMailer()
    mailer.fail_next("transient")                 # the next send raises TransientSmtpError
    mailer.fail_for("gone@selep.example", "permanent")   # every send to this address fails
    ...
    assert [m["Subject"] for m in mailer.sent] == [...]

A failed send records nothing in ``sent`` (the server did not accept the message) but is
counted in ``attempts``, so a test can tell a retry from a first try. Both hold the
messages read back from their bytes by the standard parser, as a recipient reads them.
"""

from __future__ import annotations

from collections import deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Literal

from notifications.errors import PermanentSmtpError, SmtpDeliveryError, TransientSmtpError
from notifications.mailer import Submission
from notifications.message import OutgoingMessage

__all__ = ["Failure", "FakeMailer"]

Failure = Literal["transient", "permanent"]


class FakeMailer:
    """A :class:`notifications.mailer.Mailer` that keeps messages in memory."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.attempts: list[EmailMessage] = []
        self._next_failures: deque[Failure] = deque()
        self._failing_addresses: dict[str, Failure] = {}

    def fail_next(self, failure: Failure, times: int = 1) -> None:
        """The next ``times`` sends fail with a transient or permanent error."""
        self._next_failures.extend([failure] * times)

    def fail_for(self, address: str, failure: Failure) -> None:
        """Every send with ``address`` among its recipients fails, until ``recover`` is called."""
        self._failing_addresses[address.lower()] = failure

    def recover(self) -> None:
        """Stop failing: queued and per-address failures are forgotten."""
        self._next_failures.clear()
        self._failing_addresses.clear()

    def send(self, message: OutgoingMessage) -> str:
        if not message.message_id:
            raise ValueError("a message to send needs a Message-ID")
        received = message_from_bytes(message.data, policy=policy.default)
        self.attempts.append(received)
        if self._next_failures:
            raise _error(self._next_failures.popleft(), "a failure asked for by the test")
        for address in message.recipients:
            failure = self._failing_addresses.get(address.lower())
            if failure is not None:
                raise _error(failure, f"recipient {address} set to fail by the test")
        self.sent.append(received)
        return message.message_id

    def submit(self, message: OutgoingMessage) -> Submission:
        """As ``send``, the answer known at once."""
        try:
            return Submission.done(self.send(message))
        except SmtpDeliveryError as error:
            return Submission.done(error)

    @property
    def message_ids(self) -> list[str]:
        """The Message-IDs of the accepted messages, in order."""
        return [str(message["Message-ID"]) for message in self.sent]

    def sent_to(self, address: str) -> list[EmailMessage]:
        """The accepted messages with ``address`` among their recipients."""
        return [message for message in self.sent if address.lower() in map(str.lower, self.recipients(message))]

    @staticmethod
    def recipients(message: EmailMessage) -> list[str]:
        """The addresses in To, Cc and Bcc, as an SMTP client would send to them."""
        fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
        return [address for _, address in getaddresses(fields) if address]


def _error(failure: Failure, reason: str) -> SmtpDeliveryError:
    if failure == "transient":
        return TransientSmtpError(f"451 4.3.0 try again later ({reason})", code=451)
    return PermanentSmtpError(f"550 5.1.1 mailbox unavailable ({reason})", code=550)
