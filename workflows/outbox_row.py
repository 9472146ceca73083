"""One row of the notification outbox, decoded; and connections whose driver errors read as one line.

Shared by :mod:`workflows.outbox` (plans) and :mod:`workflows.claims` (claims and settlements).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from governance.chain import parse_timestamp
from workflows.database import store_error

__all__ = ["OutboxRow", "guarded"]


@dataclass(frozen=True)
class OutboxRow:
    """One row of the outbox, decoded."""

    key: str
    instance: str
    rule: str
    kind: str
    subject: str
    target: date
    recipient: str
    recipient_name: str
    recipient_role: str
    due_at: datetime
    stale_after: datetime | None
    stale_reason: str
    state: str
    attempts: int
    reason: str
    outcome: str | None
    context: dict[str, Any]
    invite: dict[str, Any] | None
    claimed_by: str | None = None
    message_id: str | None = None
    sha256: str | None = None
    last_error: str | None = None
    first_attempt_at: datetime | None = None
    sent_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> OutboxRow:
        def moment(text: str | None) -> datetime | None:
            return parse_timestamp(text) if text else None

        return cls(
            key=row.key,
            instance=row.instance,
            rule=row.rule,
            kind=row.kind,
            subject=row.subject,
            target=date.fromisoformat(row.target),
            recipient=row.recipient,
            recipient_name=row.recipient_name,
            recipient_role=row.recipient_role,
            due_at=parse_timestamp(row.due_at),
            stale_after=moment(row.stale_after),
            stale_reason=row.stale_reason,
            state=row.state,
            attempts=row.attempts,
            reason=row.reason,
            outcome=row.outcome,
            context=json.loads(row.context),
            invite=json.loads(row.invite) if row.invite else None,
            claimed_by=row.claimed_by,
            message_id=row.message_id,
            sha256=row.sha256,
            last_error=row.last_error,
            first_attempt_at=moment(row.first_attempt_at),
            sent_at=moment(row.sent_at),
        )


@contextmanager
def guarded(engine: Engine, doing: str, opener: Callable[[Engine], Any]) -> Iterator[Connection]:
    """A connection from ``opener`` whose driver errors become one-line ``StoreError``s.

    An ``IntegrityError`` passes through: for the outbox it means another worker got there first.
    """
    try:
        with opener(engine) as connection:
            yield connection
    except IntegrityError:
        raise
    except DBAPIError as error:
        raise store_error(engine, error, doing) from error
