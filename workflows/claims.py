"""Claiming due notifications exactly once, and settling them: sent, retry, failed, missed.

A claim is one statement in one write transaction: ``UPDATE notifications SET
state = 'claimed', claimed_by, claimed_until … WHERE id IN (the due rows) RETURNING *``.
On SQLite the write transaction starts with ``BEGIN IMMEDIATE``, so claims are
serialised and ``UPDATE … RETURNING`` hands each row to one worker. On PostgreSQL the
inner ``SELECT`` takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers split the due
rows instead of queueing behind each other (SQLAlchemy drops ``SKIP LOCKED`` on SQLite
without a word: hence the one dialect branch of the outbox).

"Due" is ``planned`` with ``due_at <= now``, or ``claimed`` with an expired lease (its
worker died): ``ix_notifications_state_due_at`` serves both, so a claim costs what is
due, not the size of the table. Settling is conditional on the row still being claimed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from governance.chain import format_timestamp, parse_timestamp
from workflows.database import read_connection, write_transaction
from workflows.outbox_row import OutboxRow, guarded
from workflows.store.schema import notification_plans, notifications, streams

__all__ = ["SqlClaims"]

_N = notifications.c


_RELEASED: Final[dict[str, Any]] = {"claimed_by": None, "claimed_until": None, "updated_at": bindparam("b_now")}
_SENT: Final = (
    update(notifications)
    .where(_N.key == bindparam("b_key"), _N.state == "claimed")
    .values(
        state="sent",
        message_id=bindparam("b_id"),
        sha256=bindparam("b_sha"),
        sent_at=bindparam("b_now"),
        outcome=None,
        **_RELEASED,
    )
)
_MISSED: Final = (
    update(notifications)
    .where(_N.key == bindparam("b_key"), _N.state == "claimed")
    .values(state="missed", outcome=bindparam("b_outcome"), **_RELEASED)
)


class SqlClaims:
    """Claims and settlements on the outbox of a migrated database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._skip_locked = engine.dialect.name == "postgresql"

    def claim(self, now: datetime, worker: str, limit: int, lease: timedelta) -> list[OutboxRow]:
        """Take up to ``limit`` due rows for ``worker`` until ``now + lease``; each row goes to one worker."""
        stamp = format_timestamp(now)
        due = (
            select(_N.id)
            .where(
                _N.state.in_(("planned", "claimed")),
                _N.due_at <= stamp,
                or_(_N.state == "planned", _N.claimed_until <= stamp),
            )
            .order_by(_N.due_at)
            .limit(limit)
        )
        if self._skip_locked:
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(notifications)
            .where(_N.id.in_(due.scalar_subquery()))
            .values(
                state="claimed",
                claimed_by=worker,
                claimed_until=format_timestamp(now + lease),
                first_attempt_at=func.coalesce(_N.first_attempt_at, stamp),
                updated_at=stamp,
            )
            .returning(*notifications.c)
        )
        with guarded(self.engine, "claim due notifications", write_transaction) as connection:
            rows = connection.execute(statement).all()
        return sorted((OutboxRow.from_row(row) for row in rows), key=lambda r: (r.due_at, r.key))

    def settle_done(
        self, now: datetime, sent: Sequence[tuple[str, str, str]], missed: Sequence[tuple[str, str]]
    ) -> None:
        """Mark rows sent (key, Message-ID, SHA-256) and missed (key, reason) in one transaction.

        Their events are in the log already, so a worker dying before this only costs a
        re-claim after the lease, which finds the events and settles without sending again.
        Sent is sent whoever holds the claim now; so is missed.
        """
        if not sent and not missed:
            return
        stamp = format_timestamp(now)
        with guarded(self.engine, "record sent and missed notifications", write_transaction) as connection:
            if sent:
                rows = [{"b_key": k, "b_id": i, "b_sha": h, "b_now": stamp} for k, i, h in sent]
                connection.execute(_SENT, rows)
            if missed:
                connection.execute(_MISSED, [{"b_key": k, "b_outcome": o, "b_now": stamp} for k, o in missed])

    def settle_retry(self, key: str, worker: str, now: datetime, due_at: datetime, attempts: int, error: str) -> bool:
        """Put a claimed row back for another attempt at ``due_at``."""
        values = {"state": "planned", "due_at": format_timestamp(due_at), "attempts": attempts, "last_error": error}
        return self._settle(key, worker, now, values)

    def settle_failed(self, key: str, worker: str, now: datetime, attempts: int, error: str) -> bool:
        values = {"state": "failed", "attempts": attempts, "last_error": error, "outcome": error}
        return self._settle(key, worker, now, values)

    def add(self, values: dict[str, Any]) -> bool:
        """Insert one row (a failure escalation); False when its key is already there."""
        try:
            with guarded(self.engine, "add a notification", write_transaction) as connection:
                connection.execute(insert(notifications).values(values))
        except IntegrityError:
            return False
        return True

    def definitions(self, instances: Collection[str]) -> dict[str, tuple[str, str]]:
        """(definition hash, definition id) of each instance, from the streams projection, in one query.

        A batch's notification events carry them; one query per batch, not one per instance.
        """
        if not instances:
            return {}
        query = select(streams.c.stream_id, streams.c.definition_hash, streams.c.definition_id).where(
            streams.c.stream_id.in_(sorted(instances))
        )
        with guarded(self.engine, "read the definitions of the claimed notifications", read_connection) as connection:
            return {str(row[0]): (str(row[1]), str(row[2])) for row in connection.execute(query)}

    def next_wake(self) -> datetime | None:
        """The earliest moment something may be due: a planned row, an expiring lease, a re-plan."""
        with guarded(self.engine, "find the next due notification", read_connection) as connection:
            candidates = [
                connection.execute(select(func.min(_N.due_at)).where(_N.state == "planned")).scalar(),
                connection.execute(select(func.min(_N.claimed_until)).where(_N.state == "claimed")).scalar(),
                connection.execute(select(func.min(notification_plans.c.replan_after))).scalar(),
            ]
        found = [parse_timestamp(text) for text in candidates if text]
        return min(found, default=None)

    def _settle(self, key: str, worker: str, now: datetime, values: dict[str, Any]) -> bool:
        values = {**values, "claimed_by": None, "claimed_until": None, "updated_at": format_timestamp(now)}
        where = (_N.key == key, _N.state == "claimed", _N.claimed_by == worker)
        return self._update(f"settle notification {key}", where, values)

    def _update(self, doing: str, where: tuple[Any, ...], values: dict[str, Any]) -> bool:
        with guarded(self.engine, doing, write_transaction) as connection:
            moved = connection.execute(update(notifications).where(*where).values(values))
        return bool(moved.rowcount)
