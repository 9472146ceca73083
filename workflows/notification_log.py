"""The audit record of notifications: events in the stream ``notifications:<instance>``.

Reminders are audit events too (DOMAIN.md rule 11): notice given can be proven from the
log, not from the mutable outbox.

``NotificationSent`` is recorded for a whole batch at once: one append per instance
stream holds the sends of that instance, and the appends of every instance of the batch
commit together (a group commit; one durable append per message cost as much as the
SMTP exchange itself). Exactly once per notification key is kept by
the stream's version instead of a command key per message: :meth:`NotificationLog.sent`
appends after the version the worker had seen before it claimed the rows; if anything
was appended since (another worker whose lease ran over may have recorded one of these
keys), the append fails on the version, and it reads what was appended, leaves out the
keys recorded there and tries again. ``NotificationFailed`` and
``NotificationMissed`` are rare and appended one by one, with a command key derived from
the notification key and the event type, so recording one twice writes once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

from governance import events as ev
from governance.chain import canonical_json, format_timestamp
from governance.events import NewEvent, RecordedEvent
from workflows.errors import ConcurrencyConflict
from workflows.outbox_row import OutboxRow
from workflows.store.base import AppendRequest, CommandRecord, EventStore

__all__ = ["NotificationLog", "Send", "notification_stream"]

STREAM_PREFIX: Final = "notifications:"
_APPEND_TRIES: Final = 8
# A batch over many streams meets more appends by other workers: after a few tries on the
# streams that moved, each instance is recorded alone (and retried on its own).
_BATCH_TRIES: Final = 3
_TAGS: Final = {ev.NOTIFICATION_FAILED: "failed", ev.NOTIFICATION_MISSED: "missed"}


class Send(NamedTuple):
    """A message the server accepted for ``key``: what its ``NotificationSent`` records."""

    key: str
    message_id: str
    sha256: str


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

    def seen_version(self, instance: str) -> int:
        """The version of the instance's stream this worker last read or wrote (0: never).

        Take it before claiming, or right after (before recording anything), and pass it
        to :meth:`sent`: no other worker can have recorded a row first claimed after that.
        """
        return self._versions.get(notification_stream(instance), 0)

    def recorded_sends(self, instance: str) -> dict[str, Send]:
        """Every ``NotificationSent`` of the instance, by notification key."""
        return _sends(self._read(notification_stream(instance), 0))

    def sent(self, instance: str, rows: Sequence[tuple[OutboxRow, Send]], now: datetime, since: int) -> list[Send]:
        """Record ``rows`` (all of ``instance``) in one append, each key exactly once.

        ``since`` is a version of the stream after which a record of these rows by another
        worker may exist (:meth:`seen_version`, or 0 for rows claimed before). The append
        is tried right after ``since``: when it succeeds, nothing was appended after
        ``since``, so no key was recorded before; when it fails on the version, what was
        appended is read, the keys recorded there are left out, and it is tried again.
        Returns the sends as the log holds them: for a key another worker recorded
        first, its record.
        """
        stream = notification_stream(instance)
        pending = list(rows)
        found: dict[str, Send] = {}
        version = since
        for _ in range(_APPEND_TRIES):
            try:
                self._append(self._request(stream, instance, version, now), self._sent_events(pending, now))
            except ConcurrencyConflict:
                # Another worker appended to this stream after ``version``: read what it wrote.
                news = self._read(stream, version)
                version = news[-1].version if news else version
                found |= _sends(news)
                pending = [(row, send) for row, send in pending if row.key not in found]
                if pending:
                    continue
            found |= {row.key: send for row, send in pending}
            break
        else:
            raise ConcurrencyConflict(stream, version)
        return [found[row.key] for row, _ in rows]

    def sent_all(
        self, accepted: Mapping[str, Sequence[tuple[OutboxRow, Send]]], now: datetime, since: Mapping[str, int]
    ) -> list[Send]:
        """Record the sends of several instances as :meth:`sent` does, in one transaction.

        One append per instance stream, all committed at once (``EventStore.append_many``):
        one durable commit for the batch instead of one per instance. When a stream has
        moved since it was seen, nothing is written; what was appended to that stream is
        read, the keys recorded there are left out and the batch is tried again (as
        :meth:`sent` does for one stream), a few times, before each instance is recorded
        alone by :meth:`sent`. Returns the sends as the log holds them.
        """
        pending = {instance: list(rows) for instance, rows in accepted.items() if rows}
        versions = {instance: since[instance] for instance in pending}
        found: dict[str, Send] = {}

        def catch_up(instance: str) -> bool:
            """Read what was appended to the instance's stream since ``versions``; False if nothing."""
            news = self._read(notification_stream(instance), versions[instance])
            if not news:
                return False
            versions[instance] = news[-1].version
            found.update(_sends(news))
            pending[instance] = [(row, send) for row, send in pending[instance] if row.key not in found]
            return True

        for instance in pending:
            if self._versions.get(notification_stream(instance), 0) > versions[instance]:
                catch_up(instance)  # this worker appended since (a missed notice): no need to fail first
        recorded = False
        for _ in range(_BATCH_TRIES):
            todo = [instance for instance, rows in pending.items() if rows]
            batch = [
                (
                    self._request(notification_stream(instance), instance, versions[instance], now),
                    self._sent_events(pending[instance], now),
                )
                for instance in todo
            ]
            try:
                written = self.store.append_many(batch)
            except ConcurrencyConflict as conflict:
                moved = conflict.stream_id.removeprefix(STREAM_PREFIX)
                if moved in versions and catch_up(moved):
                    continue
                break  # not a stream that moved on: record each instance alone
            for instance, events in zip(todo, written, strict=True):
                if events:
                    self._versions[notification_stream(instance)] = events[-1].version
                found |= {row.key: send for row, send in pending[instance]}
            recorded = True
            break
        if not recorded:
            # Other workers keep appending to these streams: record each instance alone.
            for instance, rows in pending.items():
                if rows:
                    found |= {send.key: send for send in self.sent(instance, rows, now, versions[instance])}
        return [found[row.key] for rows in accepted.values() for row, _ in rows]

    def failed(self, row: OutboxRow, now: datetime, error: str, attempts: int) -> None:
        self._append_once(row, ev.NOTIFICATION_FAILED, {"error": error, "attempts": attempts}, now)

    def missed(self, row: OutboxRow, now: datetime) -> None:
        self._append_once(row, ev.NOTIFICATION_MISSED, {"reason": row.stale_reason}, now)

    def history(self, instance: str) -> list[RecordedEvent]:
        return self.store.read_stream(notification_stream(instance))

    @classmethod
    def _sent_events(cls, rows: Iterable[tuple[OutboxRow, Send]], now: datetime) -> list[NewEvent]:
        return [
            NewEvent(
                ev.NOTIFICATION_SENT,
                cls._data(row, {"message_id": send.message_id, "sha256": send.sha256, "attempt": row.attempts + 1}),
                now,
            )
            for row, send in rows
        ]

    @staticmethod
    def _data(row: OutboxRow, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
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

    def _request(
        self, stream: str, instance: str, version: int, now: datetime, command: CommandRecord | None = None
    ) -> AppendRequest:
        definition_hash, definition_id = self.identity(instance)
        return AppendRequest(
            stream_id=stream,
            expected_version=version,
            actor=f"govflow worker {self.worker}",
            definition_hash=definition_hash,
            definition_id=definition_id,
            recorded_at=now,
            phase="notifications",
            meta={"source": "worker", "worker": self.worker, "clock": "simulated" if self.simulated else "system"},
            command=command,
        )

    def _read(self, stream: str, after: int) -> list[RecordedEvent]:
        news = self.store.read_stream(stream, after_version=after)
        if news:
            self._versions[stream] = max(self._versions.get(stream, 0), news[-1].version)
        return news

    def _append(self, request: AppendRequest, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        try:
            written = self.store.append(request, events)
        except ConcurrencyConflict:
            self._versions.pop(request.stream_id, None)
            raise
        if written:
            self._versions[request.stream_id] = written[-1].version
        else:
            self._versions.pop(request.stream_id, None)  # already recorded: our cached head may be stale
        return written

    def _append_once(self, row: OutboxRow, event_type: str, extra: dict[str, Any], now: datetime) -> None:
        stream = notification_stream(row.instance)
        key = command_key(event_type, row.key)
        # Only the key and type identify the command: a retry may differ in nothing else.
        request_hash = hashlib.sha256(canonical_json({"key": row.key, "type": event_type}).encode()).hexdigest()
        command = CommandRecord(key, stream, request_hash, {"message_id": None, "sha256": None})
        event = NewEvent(event_type, self._data(row, extra), now)
        for _ in range(_APPEND_TRIES):
            version = self._versions.get(stream)
            if version is None:
                summary = self.store.stream(stream)
                version = summary.version if summary is not None else 0
            try:
                self._append(self._request(stream, row.instance, version, now, command), [event])
            except ConcurrencyConflict:
                continue  # another worker appended to this stream meanwhile: read its head again
            return
        raise ConcurrencyConflict(stream, self._versions.get(stream, 0))


def _sends(events: Iterable[RecordedEvent]) -> dict[str, Send]:
    return {
        str(event.data["key"]): Send(str(event.data["key"]), str(event.data["message_id"]), str(event.data["sha256"]))
        for event in events
        if event.type == ev.NOTIFICATION_SENT
    }
