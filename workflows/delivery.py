"""Delivering claimed notifications: render, build, send, record, settle.

For each claimed row of a batch, in this order:

1. If it was claimed before (a worker died, or its lease ran out) and its
   ``NotificationSent`` is already in the log, settle it as sent: nothing is sent twice.
2. If it is no longer worth sending (``stale_after`` passed while nobody could send it),
   record ``NotificationMissed`` with the reason and settle it missed.
3. Render it, build the message (the Message-ID derives from the key, the Date from the
   first attempt, so a resend after a crash between send and record is the same
   message) and send it through the mailer.

Then, once the batch is through the mailer, every accepted message is recorded —
``NotificationSent`` (key, Message-ID, SHA-256 of the message) — in one append per
instance stream (a group commit: see :mod:`workflows.notification_log` for how each key
is still recorded exactly once), and only then are the rows settled sent. A crash
before that append loses no record: the rows stay claimed, are claimed again when the
lease runs out, are found unrecorded and are sent again, with the same Message-ID and
the same bytes. At worst a batch of messages goes out twice; none is ever marked sent
without its record.

A transient SMTP failure puts the row back with exponential backoff; when the attempts
run out, or on a permanent failure, ``NotificationFailed`` is recorded and the message is
forwarded to the instance's secretary with the reason.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import formataddr

from governance.chain import canonical_json, format_timestamp
from governance.definition import Contact
from notifications.errors import PermanentSmtpError, SmtpConfigError, TemplateError, TransientSmtpError
from notifications.ics import meeting_invite
from notifications.mailer import Mailer, Submission
from notifications.message import Attachment, OutgoingMessage, build_message, make_message_id
from notifications.templates import RenderedMessage, TemplateRenderer
from workflows.claims import SqlClaims
from workflows.notification_log import NotificationLog, Send
from workflows.outbox_row import OutboxRow

__all__ = ["DELIVERY_FAILED_RULE", "FORWARD_KIND", "Courier", "DeliveryCounts"]

log = logging.getLogger(__name__)

DELIVERY_FAILED_RULE = "delivery-failed"
FORWARD_KIND = "delivery_failed"


@dataclass
class DeliveryCounts:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    missed: int = 0
    recovered: int = 0
    escalated: int = 0
    message_ids: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    """What one batch has done so far: sends to record, then rows to settle together."""

    since: dict[str, int] = field(default_factory=dict)
    """Per instance, the stream version after which another worker's records must be looked for."""
    accepted: dict[str, list[tuple[OutboxRow, Send]]] = field(default_factory=dict)
    """Messages the server accepted, not yet recorded, by instance (in the order sent)."""
    sent: list[Send] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _InFlight:
    """A message handed to the mailer, and the server's answer to come."""

    row: OutboxRow
    rendered: RenderedMessage
    message: OutgoingMessage
    reply: Submission


@dataclass
class Courier:
    """Delivers the rows one worker has claimed."""

    claims: SqlClaims
    log: NotificationLog
    mailer: Mailer
    renderer: TemplateRenderer
    sender: str
    worker: str
    retry_attempts: int
    retry_backoff: timedelta
    secretary: Callable[[str], Contact | None]

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or "govflow.invalid"

    def deliver(self, rows: list[OutboxRow], now: datetime, counts: DeliveryCounts) -> None:
        """Settle every row of one claim; one SMTP connection serves the batch.

        The batch's sends are recorded together once its rows are through the mailer (one
        append per instance, one commit for all), and sent and missed rows are settled
        together at the end (one transaction, not one per row). Also when the batch stops
        on an error, what the server accepted is recorded before anything is settled,
        which is what makes a retry safe.
        """
        # Before anything is recorded: a row claimed for the first time now cannot have
        # been recorded by anyone at or before the versions this worker saw until now.
        batch = _Batch(since={row.instance: self.log.seen_version(row.instance) for row in rows})
        try:
            to_send = self._triage(rows, now, counts, batch)
            if to_send:
                self._send_all(to_send, now, counts, batch)
        finally:
            try:
                self._record(now, counts, batch)
            finally:
                self.claims.settle_done(now, batch.sent, batch.missed)

    def _triage(self, rows: list[OutboxRow], now: datetime, counts: DeliveryCounts, batch: _Batch) -> list[OutboxRow]:
        """Settle the rows already sent or no longer worth sending; return the rest, to send."""
        recorded: dict[str, dict[str, Send]] = {}
        to_send = []
        for row in rows:
            if row.first_attempt_at is not None and row.first_attempt_at < now:
                # Claimed before: its send may be recorded already, by us or by another worker.
                if row.instance not in recorded:
                    recorded[row.instance] = self.log.recorded_sends(row.instance)
                    batch.since[row.instance] = 0
                found = recorded[row.instance].get(row.key)
                if found is not None:
                    batch.sent.append(found)
                    counts.recovered += 1
                    continue
            if row.stale_after is not None and row.stale_after <= now:
                self.log.missed(row, now)
                batch.missed.append((row.key, row.stale_reason))
                counts.missed += 1
            else:
                to_send.append(row)
        return to_send

    def _send_all(self, rows: list[OutboxRow], now: datetime, counts: DeliveryCounts, batch: _Batch) -> None:
        """Send ``rows`` in order, each message made while the server takes in the one before.

        The mailer's ``submit`` returns once the data is sent, before the server's answer
        (storing the message is most of the server's work): meanwhile this renders and
        builds the next message, then reads the answer and hands the next message over.
        So rendering overlaps the SMTP exchange instead of adding to it; the sends are
        recorded after the last answer, in one commit (:meth:`_record`).
        """
        connection = self.mailer if isinstance(self.mailer, AbstractContextManager) else nullcontext()
        with connection:
            on_the_wire: _InFlight | None = None
            for row in rows:
                ready = self._prepare(row, now, counts)
                previous, on_the_wire = on_the_wire, None
                if previous is not None:
                    self._settle_send(previous, now, counts, batch)
                if ready is not None:
                    rendered, message = ready
                    on_the_wire = _InFlight(row, rendered, message, self.mailer.submit(message))
            if on_the_wire is not None:
                self._settle_send(on_the_wire, now, counts, batch)

    def _prepare(
        self, row: OutboxRow, now: datetime, counts: DeliveryCounts
    ) -> tuple[RenderedMessage, OutgoingMessage] | None:
        try:
            rendered = self.render(row)
        except TemplateError as error:
            self._fail(row, now, f"cannot render the '{row.kind}' template: {error}", None, counts)
            return None
        return rendered, self.build(row, rendered, now)

    def _settle_send(self, sent: _InFlight, now: datetime, counts: DeliveryCounts, batch: _Batch) -> None:
        """Wait for the server's answer to one message and act on it."""
        row = sent.row
        try:
            message_id = sent.reply.result()
        except (TransientSmtpError, SmtpConfigError) as error:
            self._retry(row, now, str(error), sent.rendered, counts)
            return
        except PermanentSmtpError as error:
            self._fail(row, now, str(error), sent.rendered, counts)
            return
        batch.accepted.setdefault(row.instance, []).append((row, Send(row.key, message_id, sent.message.sha256)))

    def _record(self, now: datetime, counts: DeliveryCounts, batch: _Batch) -> None:
        """Record every accepted send of the batch: one append per instance, one commit for all."""
        accepted, batch.accepted = batch.accepted, {}
        if not accepted:
            return
        batch.sent += self.log.sent_all(accepted, now, batch.since)
        for rows in accepted.values():
            counts.sent += len(rows)
            counts.message_ids += [send.message_id for _, send in rows]

    def render(self, row: OutboxRow) -> RenderedMessage:
        if row.kind == FORWARD_KIND:
            context = row.context
            return RenderedMessage(row.kind, context["subject"], context["text"], context["html"])
        return self.renderer.render(row.kind, row.context)

    def build(self, row: OutboxRow, rendered: RenderedMessage, now: datetime) -> OutgoingMessage:
        """The message for ``row``: the same bytes whenever it is built again for this row."""
        composed = row.first_attempt_at or now
        attachments: list[Attachment] = []
        if row.invite is not None:
            attachments.append(self._invite(row, composed))
        return build_message(
            sender=self.sender,
            to=[formataddr((row.recipient_name, row.recipient))],
            rendered=rendered,
            message_id=make_message_id(row.key, self.domain),
            headers={"X-Govflow-Key": row.key, "X-Govflow-Rule": row.rule},
            attachments=attachments,
            date=composed,
        )

    def _invite(self, row: OutboxRow, stamp: datetime) -> Attachment:
        invite = row.invite or {}
        return meeting_invite(
            uid=invite["uid"],
            summary=invite["summary"],
            description=invite["description"],
            day=date.fromisoformat(invite["day"]),
            start=None,
            end=None,
            timezone=invite["timezone"],
            organizer=self.sender,
            attendees=[formataddr((row.recipient_name, row.recipient))],
            sequence=int(invite["sequence"]),
            stamp=stamp,
        )

    def _retry(
        self, row: OutboxRow, now: datetime, error: str, rendered: RenderedMessage, counts: DeliveryCounts
    ) -> None:
        attempts = row.attempts + 1
        if attempts >= self.retry_attempts:
            self._fail(row, now, f"gave up after {attempts} attempts: {error}", rendered, counts, attempts)
            return
        retry_at = now + self.retry_backoff * 2 ** (attempts - 1)
        log.warning("notification %s: %s; retrying at %s", row.key, error, retry_at.isoformat())
        self.claims.settle_retry(row.key, self.worker, now, retry_at, attempts, error)
        counts.retried += 1

    def _fail(
        self,
        row: OutboxRow,
        now: datetime,
        error: str,
        rendered: RenderedMessage | None,
        counts: DeliveryCounts,
        attempts: int | None = None,
    ) -> None:
        attempts = row.attempts + 1 if attempts is None else attempts
        log.error("notification %s failed: %s", row.key, error)
        self.log.failed(row, now, error, attempts)
        self.claims.settle_failed(row.key, self.worker, now, attempts, error)
        counts.failed += 1
        if row.rule != DELIVERY_FAILED_RULE and self._escalate(row, now, error, rendered):
            counts.escalated += 1

    def _escalate(self, row: OutboxRow, now: datetime, error: str, rendered: RenderedMessage | None) -> bool:
        """Forward what could not be delivered to the instance's secretary, due at once."""
        secretary = self.secretary(row.instance)
        if secretary is None:
            log.error("notification %s failed and instance %s has no secretary to tell", row.key, row.instance)
            return False
        tag = hashlib.sha256(row.key.encode()).hexdigest()[:16]
        key = f"{row.instance}/{DELIVERY_FAILED_RULE}/{tag}/{row.target.isoformat()}/{secretary.email.lower()}"
        stamp = format_timestamp(now)
        return self.claims.add(
            {
                "key": key,
                "instance": row.instance,
                "rule": DELIVERY_FAILED_RULE,
                "kind": FORWARD_KIND,
                "subject": tag,
                "target": row.target.isoformat(),
                "recipient": secretary.email.lower(),
                "recipient_name": secretary.name,
                "recipient_role": secretary.role,
                "due_at": stamp,
                "stale_after": None,
                "stale_reason": "",
                "state": "planned",
                "attempts": 0,
                "reason": f"notification {row.key} could not be delivered: {error}",
                "context": canonical_json(forward(row, error, rendered)),
                "invite": None,
                "plan_version": 0,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )


def forward(row: OutboxRow, error: str, rendered: RenderedMessage | None) -> dict[str, str]:
    """The message telling the secretary what could not be delivered, to whom, and why."""
    note = (
        f"govflow could not deliver a notification to {row.recipient_name} <{row.recipient}> "
        f"({row.recipient_role}): {error}. Please pass it on, and have the contact corrected in the "
        f"workflow definition if the address is wrong. Reference: {row.key}"
    )
    if rendered is None:
        body = f"The message could not be produced: {row.reason}"
        subject = f"Undelivered notification for {row.recipient}"
    else:
        body = rendered.text
        subject = f"Undelivered: {rendered.subject}"
    text = f"{note}\n\n----- the undelivered message -----\n\n{body}"
    markup = f"<p>{html.escape(note)}</p><hr><pre>{html.escape(body)}</pre>"
    return {"subject": subject[:240], "text": text, "html": markup}
