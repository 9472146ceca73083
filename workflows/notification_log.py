"""The audit record of notifications: events in the stream ``notifications:<instance>``.

Reminders are audit events too (DOMAIN.md rule 11): notice given can be proven from the
log, not from the mutable outbox. Each event carries a command key derived from the
notification key and the event type, so a worker that records again after a crash
writes nothing new, and the key tells whether a send was already recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from governance import events as ev
from governance.chain import canonical_json, format_timestamp
from governance.events import NewEvent, RecordedEvent
from workflows.errors import ConcurrencyConflict
from workflows.outbox_row import OutboxRow
from workflows.store.base import AppendRequest, CommandRecord, EventStore

__all__ = ["NotificationLog", "notification_stream"]

STREAM_PREFIX: Final = "notifications:"
_APPEND_TRIES: Final = 8
_TAGS: Final = {ev.NOTIFICATION_SENT: "sent", ev.NOTIFICATION_FAILED: "failed", ev.NOTIFICATION_MISSED: "missed"}


def notification_stream(instance: str) -> str:
    """The stream holding an instance's notification events (not an instance stream: it has a ':')."""
    return f"{STREAM_PREFIX}{instance}"


def command_key(event_type: str, notification_key: str) -> str:
    # Notification keys may exceed the command key column; their hash does not.
    return f"notification-{_TAGS[event_type]}:{hashlib.sha256(notification_key.encode()).hexdigest()}"


class NotificationLog:
    """Appends notification events; ``identity(instance)`` gives its (definition hash, definition id)."""

    def __init__(
        self,
        store: EventStore,
        *,
        worker: str,
        simulated: bool,
        identity: Callable[[str], tuple[str, str]],
    ) -> None:
        self.store = store
        self.worker = worker
        self.simulated = simulated
        self.identity = identity
        self._versions: dict[str, int] = {}

    def recorded_send(self, row: OutboxRow) -> tuple[str, str] | None:
        """(Message-ID, SHA-256) when this notification's ``NotificationSent`` is already in the log."""
        found = self.store.find_command(command_key(ev.NOTIFICATION_SENT, row.key))
        if found is None:
            return None
        return str(found.response["message_id"]), str(found.response["sha256"])

    def sent(self, row: OutboxRow, now: datetime, message_id: str, sha256: str) -> None:
        extra = {"message_id": message_id, "sha256": sha256, "attempt": row.attempts + 1}
        self._append(row, ev.NOTIFICATION_SENT, extra, now)

    def failed(self, row: OutboxRow, now: datetime, error: str, attempts: int) -> None:
        self._append(row, ev.NOTIFICATION_FAILED, {"error": error, "attempts": attempts}, now)

    def missed(self, row: OutboxRow, now: datetime) -> None:
        self._append(row, ev.NOTIFICATION_MISSED, {"reason": row.stale_reason}, now)

    def history(self, instance: str) -> list[RecordedEvent]:
        return self.store.read_stream(notification_stream(instance))

    def _append(self, row: OutboxRow, event_type: str, extra: dict[str, Any], now: datetime) -> None:
        data: dict[str, Any] = {
            "key": row.key,
            "instance": row.instance,
            "rule": row.rule,
            "kind": row.kind,
            "subject": row.subject,
            "target": row.target.isoformat(),
            "recipient": row.recipient,
            "recipient_role": row.recipient_role,
            "due_at": format_timestamp(row.due_at),
            **extra,
        }
        stream = notification_stream(row.instance)
        key = command_key(event_type, row.key)
        response = {"message_id": extra.get("message_id"), "sha256": extra.get("sha256")}
        # Only the key and type identify the command: a rebuilt message may differ in nothing else.
        request_hash = hashlib.sha256(canonical_json({"key": row.key, "type": event_type}).encode()).hexdigest()
        definition_hash, definition_id = self.identity(row.instance)
        meta = {"source": "worker", "worker": self.worker, "clock": "simulated" if self.simulated else "system"}
        for _ in range(_APPEND_TRIES):
            version = self._versions.get(stream)
            if version is None:
                summary = self.store.stream(stream)
                version = summary.version if summary is not None else 0
            request = AppendRequest(
                stream_id=stream,
                expected_version=version,
                actor=f"govflow worker {self.worker}",
                definition_hash=definition_hash,
                definition_id=definition_id,
                recorded_at=now,
                phase="notifications",
                meta=meta,
                command=CommandRecord(key, stream, request_hash, response),
            )
            try:
                written = self.store.append(request, [NewEvent(event_type, data, now)])
            except ConcurrencyConflict:
                # Another worker appended to this stream meanwhile: read its head again.
                self._versions.pop(stream, None)
                continue
            if written:
                self._versions[stream] = written[-1].version
            else:
                self._versions.pop(stream, None)  # already recorded: our cached head may be stale
            return
        raise ConcurrencyConflict(stream, self._versions.get(stream, 0))
