"""What an SMTP failure means for the caller: the package's one-line errors, named after the setting to fix.

``SmtpMailer`` raises these; they are kept apart from the protocol exchange itself.
Passwords never appear in them.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import TYPE_CHECKING

from notifications.errors import PermanentSmtpError, SmtpConfigError, TransientSmtpError

if TYPE_CHECKING:
    from notifications.mailer import SmtpSettings

__all__ = ["Refused", "Unreachable", "by_code", "describe", "refusal", "reply_text", "setup_failure", "unreachable"]

Refused = dict[str, tuple[int, bytes]]
"""Refused recipients: address -> (code, reply)."""


class Unreachable(SmtpConfigError):
    """No SMTP server answered: a configuration error at start, a transient one later."""


def unreachable(where: str, error: BaseException) -> Unreachable:
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, OSError):
        error = error.__context__  # smtplib hides a timeout while waiting for the greeting
    if isinstance(error, socket.gaierror):
        reason, keys = "unknown host", "smtp.host"
    elif isinstance(error, ConnectionRefusedError):
        reason, keys = "connection refused", "smtp.host / smtp.port"
    elif isinstance(error, TimeoutError):
        reason, keys = "no answer in time", "smtp.host / smtp.port / smtp.timeout_seconds"
    elif isinstance(error, smtplib.SMTPResponseException):
        reason, keys = f"it answered {error.smtp_code} {reply_text(error.smtp_error)}", "smtp.host / smtp.port"
    else:
        reason, keys = describe(error), "smtp.host / smtp.port"
    return Unreachable(f"cannot reach SMTP server {where}: {reason} ({keys})")


def setup_failure(settings: SmtpSettings, stage: str, error: Exception) -> SmtpConfigError | None:
    where = settings.where
    if isinstance(error, smtplib.SMTPAuthenticationError):
        message = (
            f"SMTP server {where} refused the login for user '{settings.username}': "
            f"{error.smtp_code} {reply_text(error.smtp_error)} (smtp.username / smtp.password)"
        )
    elif isinstance(error, smtplib.SMTPNotSupportedError):
        key = "smtp.starttls" if stage == "STARTTLS" else "smtp.username"
        message = f"SMTP server {where} does not support {stage} ({key})"
    elif isinstance(error, smtplib.SMTPResponseException):
        message = f"SMTP server {where} refused {stage}: {error.smtp_code} {reply_text(error.smtp_error)}"
    elif isinstance(error, ssl.SSLError):
        message = f"TLS with SMTP server {where} failed: {error.__class__.__name__} {describe(error)} (smtp.starttls)"
    elif isinstance(error, smtplib.SMTPException | OSError):
        message = f"SMTP server {where} failed during {stage}: {describe(error)} (smtp.host / smtp.port)"
    else:
        return None
    return SmtpConfigError(message)


def refusal(recipients: Refused, *, accepted_some: bool) -> Exception:
    details = "; ".join(f"{who}: {code} {reply_text(text)}" for who, (code, text) in sorted(recipients.items()))
    prefix = "accepted for some recipients but refused for" if accepted_some else "recipient refused"
    codes = {code for code, _ in recipients.values()}
    # Retrying resends to every recipient: worth it only if no refusal is final.
    if all(400 <= code < 500 for code in codes):
        return TransientSmtpError(f"{prefix}: {details}", code=min(codes))
    return PermanentSmtpError(f"{prefix}: {details}", code=max(codes))


def by_code(code: int, text: str, what: str) -> Exception:
    message = f"{what}: {code} {text}"
    if 500 <= code < 600:
        return PermanentSmtpError(message, code=code)
    return TransientSmtpError(message, code=code if code > 0 else None)


def reply_text(text: bytes | str) -> str:
    decoded = text.decode(errors="replace") if isinstance(text, bytes) else text
    return " ".join(decoded.split())


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or error.__class__.__name__
