"""The errors of the notifications package. Library errors (Jinja2, smtplib, socket) are
translated into these at the module that calls the library.

NotificationError               root of the package's errors
├── TemplateError               unknown template kind, syntax error, unknown variable, output too large
├── SmtpConfigError             the SMTP settings do not work: host, port, credentials, STARTTLS
└── SmtpDeliveryError           sending one message failed
    ├── TransientSmtpError      4xx reply, connection reset, timeout: retry the same message later
    └── PermanentSmtpError      5xx reply, recipient refused: retrying will not help

Delivery errors carry the server's reply ``code`` (``None`` when the failure
was not an SMTP reply, e.g. a reset connection). No message ever contains a password.
"""

from __future__ import annotations


class NotificationError(Exception):
    """Root of the notifications package's errors."""


class TemplateError(NotificationError):
    """A template cannot be found, parsed or rendered with the context given."""


class SmtpConfigError(NotificationError):
    """The SMTP settings cannot work; the message is one line naming the setting to fix."""


class SmtpDeliveryError(NotificationError):
    """Sending one message failed; ``code`` is the SMTP reply code when there was one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class TransientSmtpError(SmtpDeliveryError):
    """The message was not sent, but may be next time (4xx, dropped connection, timeout)."""


class PermanentSmtpError(SmtpDeliveryError):
    """The message was refused for good (5xx); resending the same message will fail again."""
