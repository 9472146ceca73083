"""The notification outbox over SQLAlchemy Core: storing plans, and what changed since the last.

:class:`SqlOutbox` keeps one row per planned notification (unique idempotency ``key``)
with its state: ``planned`` → ``claimed`` → ``sent``, or ``failed``, ``missed``,
``cancelled``. This module writes plans into it and finds the instances to plan again;
:mod:`workflows.claims` claims and settles due rows. The SQL is portable; the only
dialect branch is in the claim.

Applying a plan inserts new keys, refreshes rows still ``planned`` (due time, context,
reason), revives ``cancelled`` ones that are back, and cancels ``planned`` ladder rows no
longer in the plan with the reason. Rows ``sent``, ``failed`` or ``missed`` never change:
what was sent stays sent. Every update is conditional on the state it expects, so a
concurrent claim always wins over a re-plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, select, update

from governance.chain import canonical_json, format_timestamp, parse_timestamp
from governance.reminders import Notice, Plan
from workflows.database import read_connection, write_transaction
from workflows.outbox_row import OutboxRow, guarded
from workflows.store.schema import events, notification_cursor, notification_plans, notifications

__all__ = ["ApplyReport", "PlanMark", "SqlOutbox"]

_N = notifications.c
# Refreshed on a planned row when the plan changes them (a retry keeps its own due time).
_REFRESHED: Final = ("recipient_name", "recipient_role", "stale_after", "stale_reason", "reason", "context", "invite")


@dataclass(frozen=True)
class PlanMark:
    """The version an instance was last planned at, and when to plan it again regardless."""

    instance: str
    version: int
    replan_after: datetime | None
    silenced: str | None
    problems: tuple[str, ...]


@dataclass
class ApplyReport:
    inserted: int = 0
    refreshed: int = 0
    revived: int = 0
    cancelled: int = 0


def notice_values(notice: Notice, version: int, now: str) -> dict[str, Any]:
    """The row of a planned notice."""
    return {
        "key": notice.key,
        "instance": notice.instance,
        "rule": notice.rule,
        "kind": notice.kind,
        "subject": notice.subject,
        "target": notice.target.isoformat(),
        "recipient": notice.recipient.email.lower(),
        "recipient_name": notice.recipient.name,
        "recipient_role": notice.recipient.role,
        "due_at": format_timestamp(notice.due_at),
        "stale_after": format_timestamp(notice.stale_after) if notice.stale_after else None,
        "stale_reason": notice.stale_reason,
        "state": "planned",
        "attempts": 0,
        "reason": notice.reason,
        "context": canonical_json(notice.context),
        "invite": canonical_json(notice.invite) if notice.invite is not None else None,
        "plan_version": version,
        "created_at": now,
        "updated_at": now,
    }


class SqlOutbox:
    """The outbox tables of a migrated database (see ``workflows/migrations/versions/0002``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- what to plan ---------------------------------------------------------------------------

    def changed_streams(self, limit: int = 10_000) -> tuple[list[str], int, int]:
        """Streams with events after the cursor (at most ``limit`` positions), the cursor, and the position reached."""
        with self._reading("read the notification cursor") as connection:
            after: int = connection.execute(select(notification_cursor.c.position)).scalar_one()
            upto = after + limit
            rows = connection.execute(
                select(events.c.stream_id, func.max(events.c.position))
                .where(events.c.position > after, events.c.position <= upto)
                .group_by(events.c.stream_id)
            ).all()
        reached = max((int(row[1]) for row in rows), default=after)
        return [str(row[0]) for row in rows], after, reached

    def advance_cursor(self, position: int) -> None:
        """Move the cursor forward to ``position`` (never back: two workers may race)."""
        cursor = notification_cursor.c
        with self._writing("move the notification cursor") as connection:
            connection.execute(
                update(notification_cursor).where(cursor.id == 1, cursor.position < position).values(position=position)
            )

    def replans_due(self, now: datetime, limit: int = 10_000) -> list[str]:
        """Instances whose plan depends on the day and must be made again by ``now``."""
        plans = notification_plans.c
        with self._reading("read the plans due") as connection:
            rows = connection.execute(
                select(plans.instance).where(plans.replan_after <= format_timestamp(now)).limit(limit)
            ).all()
        return [str(row.instance) for row in rows]

    def plan_mark(self, instance: str) -> PlanMark | None:
        plans = notification_plans.c
        with self._reading(f"read the plan of '{instance}'") as connection:
            row = connection.execute(select(notification_plans).where(plans.instance == instance)).first()
        if row is None:
            return None
        replan = parse_timestamp(row.replan_after) if row.replan_after else None
        return PlanMark(row.instance, row.version, replan, row.silenced, tuple(json.loads(row.problems)))

    # -- applying a plan ------------------------------------------------------------------------

    def apply_plan(
        self,
        plan: Plan,
        now: datetime,
        *,
        replan_after: datetime | None,
        sticky: frozenset[str],
        withdrawn: Callable[[str, date], str],
        moot_before: datetime | None = None,
    ) -> ApplyReport:
        """Bring the instance's rows in line with ``plan``; rules in ``sticky`` are never cancelled.

        ``withdrawn(subject, target)`` says why a row left the plan. A notice new to the outbox
        (or cancelled before) that was already not worth sending at ``moot_before`` (when the
        state calling for it was recorded: a gate reopened long after its due date) is not
        stored or revived; one that went stale after it was missed, and the claim marks it so. Raises ``StoreError``;
        an ``IntegrityError`` means another worker inserted the same keys first (retry).
        """
        stamp = format_timestamp(now)
        report = ApplyReport()
        moot = format_timestamp(moot_before) if moot_before is not None else ""
        wanted = {notice.key: notice_values(notice, plan.version, stamp) for notice in plan.notices}
        with self._writing(f"store the plan of '{plan.instance}'") as connection:
            existing = {row.key: row for row in connection.execute(_INSTANCE_ROWS, {"instance": plan.instance})}
            new = [
                values
                for key, values in wanted.items()
                if key not in existing and not (values["stale_after"] and values["stale_after"] <= moot)
            ]
            if new:
                connection.execute(insert(notifications), new)
            report.inserted = len(new)
            refresh, revive, cancel = _changes(existing, wanted, plan, sticky, withdrawn, stamp)
            revive = [row for row in revive if not (row["b_stale_after"] and row["b_stale_after"] <= moot)]
            report.refreshed = _run(connection, _REFRESH, refresh)
            report.revived = _run(connection, _REVIVE, revive)
            report.cancelled = _run(connection, _CANCEL, cancel)
            self._mark(connection, plan, replan_after, stamp)
        return report

    def _mark(self, connection: Connection, plan: Plan, replan_after: datetime | None, stamp: str) -> None:
        values = {
            "version": plan.version,
            "as_of": plan.as_of.isoformat(),
            "planned_at": stamp,
            "replan_after": format_timestamp(replan_after) if replan_after else None,
            "silenced": plan.silenced,
            "problems": canonical_json(list(plan.problems)),
        }
        plans = notification_plans.c
        moved = connection.execute(update(notification_plans).where(plans.instance == plan.instance).values(values))
        if moved.rowcount == 0:
            connection.execute(insert(notification_plans).values(instance=plan.instance, **values))

    # -- reading ----------------------------------------------------------------------------------

    def rows(self, instance: str) -> list[OutboxRow]:
        """Every row of an instance, by due time."""
        with self._reading(f"read the notifications of '{instance}'") as connection:
            found = connection.execute(
                select(notifications).where(_N.instance == instance).order_by(_N.due_at, _N.key)
            ).all()
        return [OutboxRow.from_row(row) for row in found]

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        with self._reading("count notifications") as connection:
            found = connection.execute(select(_N.state, func.count()).group_by(_N.state)).all()
        return {str(row[0]): int(row[1]) for row in found}

    def _reading(self, doing: str) -> AbstractContextManager[Connection]:
        return guarded(self.engine, doing, read_connection)

    def _writing(self, doing: str) -> AbstractContextManager[Connection]:
        return guarded(self.engine, doing, write_transaction)


_INSTANCE_ROWS: Final = select(
    _N.key, _N.state, _N.attempts, _N.due_at, _N.subject, _N.target, _N.rule, *(getattr(_N, c) for c in _REFRESHED)
).where(_N.instance == bindparam("instance"))
_REFRESH: Final = (
    update(notifications)
    .where(_N.key == bindparam("b_key"), _N.state == "planned")
    .values(
        due_at=bindparam("b_due_at"),
        plan_version=bindparam("b_version"),
        updated_at=bindparam("b_now"),
        **{c: bindparam(f"b_{c}") for c in _REFRESHED},
    )
)
_REVIVE: Final = (
    update(notifications)
    .where(_N.key == bindparam("b_key"), _N.state == "cancelled")
    .values(
        state="planned",
        attempts=0,
        outcome=None,
        due_at=bindparam("b_due_at"),
        plan_version=bindparam("b_version"),
        updated_at=bindparam("b_now"),
        **{c: bindparam(f"b_{c}") for c in _REFRESHED},
    )
)
_CANCEL: Final = (
    update(notifications)
    .where(and_(_N.key == bindparam("b_key"), _N.state == "planned"))
    .values(state="cancelled", outcome=bindparam("b_outcome"), updated_at=bindparam("b_now"))
)


def _changes(
    existing: dict[str, Any],
    wanted: dict[str, dict[str, Any]],
    plan: Plan,
    sticky: frozenset[str],
    withdrawn: Callable[[str, date], str],
    stamp: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    refresh, revive, cancel = [], [], []
    for key, row in existing.items():
        values = wanted.get(key)
        if values is None:
            if row.state == "planned" and row.rule not in sticky:
                outcome = withdrawn(row.subject, date.fromisoformat(row.target))
                cancel.append({"b_key": key, "b_outcome": outcome, "b_now": stamp})
            continue
        bound = {"b_key": key, "b_version": plan.version, "b_now": stamp, "b_due_at": values["due_at"]}
        bound |= {f"b_{c}": values[c] for c in _REFRESHED}
        if row.state == "cancelled":
            revive.append(bound)
        elif row.state == "planned":
            if row.attempts:
                bound["b_due_at"] = row.due_at  # a retry keeps its backoff
            if row.due_at != bound["b_due_at"] or any(getattr(row, c) != values[c] for c in _REFRESHED):
                refresh.append(bound)
    return refresh, revive, cancel


def _run(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    connection.execute(statement, list(rows))
    return len(rows)
