"""The reminder worker: everything happens in :meth:`Worker.tick`, called with any ``now``.

A tick (a) plans again the instances whose streams changed since the last tick (read
from the events after the outbox cursor) or whose plan depends on the day; (b) claims the
due notifications in batches and delivers them (:mod:`workflows.delivery`); (c) says
when to wake next. What is due always comes from the database, so a restart, a downtime
or a second worker loses nothing and sends nothing twice; a worker that was down sends
what is still worth sending and marks the rest missed, with the reason.

APScheduler is only the alarm clock that calls ``tick`` (:mod:`workflows.alarm`); the
tests call ``tick`` directly with a simulated ``now``.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from time import perf_counter
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from governance.calendar import local_datetime
from governance.commands import local_day
from governance.definition import Contact
from governance.errors import CorruptHistory
from governance.notice_context import secretary_of
from governance.reminders import NEWS_RULES, Plan, plan_notifications, withdrawal_reason
from notifications.templates import TemplateRenderer
from workflows.claims import SqlClaims
from workflows.delivery import DELIVERY_FAILED_RULE, Courier, DeliveryCounts
from workflows.errors import UnknownInstance
from workflows.notification_log import NotificationLog
from workflows.outbox import SqlOutbox
from workflows.services import Services, is_instance_stream

__all__ = ["TickReport", "Worker", "WorkerSettings"]

log = logging.getLogger(__name__)

_STICKY: Final = NEWS_RULES | {DELIVERY_FAILED_RULE}
_MAX_ROUNDS: Final = 1000
_EVENTS_PER_TICK: Final = 10_000


@dataclass(frozen=True)
class WorkerSettings:
    """The ``[worker]`` section of the configuration, and the lease of a claim."""

    send_hour: int = 9
    retry_attempts: int = 4
    retry_backoff_seconds: int = 30
    batch_size: int = 200
    safety_interval_seconds: int = 300
    lease_seconds: int = 900
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class TickReport:
    """What one tick did."""

    now: datetime
    replanned: int = 0
    inserted: int = 0
    cancelled: int = 0
    claimed: int = 0
    delivery: DeliveryCounts = field(default_factory=DeliveryCounts)
    next_wake: datetime | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        counts = self.delivery
        return {
            "now": self.now.isoformat(),
            "replanned": self.replanned,
            "planned": self.inserted,
            "cancelled": self.cancelled,
            "claimed": self.claimed,
            "sent": counts.sent,
            "retried": counts.retried,
            "failed": counts.failed,
            "missed": counts.missed,
            "recovered": counts.recovered,
            "escalated": counts.escalated,
            "next_wake": self.next_wake.isoformat() if self.next_wake else None,
            "seconds": round(self.seconds, 4),
        }


class Worker:
    """Plans, claims and delivers notifications; one instance per process (or thread)."""

    def __init__(self, services: Services, mailer: Any, *, sender: str, settings: WorkerSettings | None = None) -> None:
        engine = services.store.engine  # type: ignore[attr-defined]
        self.services = services
        self.settings = settings or WorkerSettings()
        self.outbox = SqlOutbox(engine)
        self.claims = SqlClaims(engine)
        self._identity: dict[str, tuple[str, str]] = {}
        self.log = NotificationLog(
            services.store, worker=self.settings.worker_id, simulated=services.clock.simulated, identity=self.identity
        )
        self.courier = Courier(
            claims=self.claims,
            log=self.log,
            mailer=mailer,
            renderer=TemplateRenderer(),
            sender=sender,
            worker=self.settings.worker_id,
            retry_attempts=self.settings.retry_attempts,
            retry_backoff=timedelta(seconds=self.settings.retry_backoff_seconds),
            secretary=self.secretary,
        )

    def tick(self, now: datetime) -> TickReport:
        """Plan what changed, send what is due at ``now``, and say when to wake next."""
        started = perf_counter()
        report = TickReport(now)
        backlog = self.replan_changed(now, report)
        lease = timedelta(seconds=self.settings.lease_seconds)
        for _ in range(_MAX_ROUNDS):
            rows = self.claims.claim(now, self.settings.worker_id, self.settings.batch_size, lease)
            if not rows:
                break
            report.claimed += len(rows)
            unknown = {row.instance for row in rows} - self._identity.keys()
            self._identity.update(self.claims.definitions(unknown))
            self.courier.deliver(rows, now, report.delivery)
        report.next_wake = now if backlog else self.claims.next_wake()
        report.seconds = perf_counter() - started
        return report

    def replan_changed(self, now: datetime, report: TickReport) -> bool:
        """Plan again every instance with new events, or whose plan depends on the day.

        Returns True when more changes wait than one tick takes (wake again at once).
        """
        changed, cursor, reached = self.outbox.changed_streams(_EVENTS_PER_TICK)
        wanted = sorted({s for s in changed if is_instance_stream(s)} | set(self.outbox.replans_due(now)))
        for instance_id in wanted:
            try:
                self.replan(instance_id, now, report)
            except CorruptHistory as error:
                # One broken history must not stop the reminders of every other instance.
                log.error("cannot plan notifications of '%s': %s", instance_id, error)
        if reached > cursor:
            self.outbox.advance_cursor(reached)
        return reached >= cursor + _EVENTS_PER_TICK

    def replan(self, instance_id: str, now: datetime, report: TickReport | None = None) -> Plan | None:
        """Plan one instance again unless its plan is already current; returns the plan made."""
        instance = self.services.load(instance_id)
        definition = instance.definition
        self._identity[instance_id] = (definition.content_hash, definition.id)
        mark = self.outbox.plan_mark(instance_id)
        if mark is not None and mark.version == instance.version and not _replan_due(mark.replan_after, now):
            return None  # another worker planned this version already
        after = mark.version if mark is not None else 0
        news = [
            e
            for e in self.services.store.read_stream(instance_id, after_version=after)
            if e.version <= instance.version
        ]
        plan = plan_notifications(
            instance, local_day(now, definition), events=news, send_at=time(self.settings.send_hour)
        )
        replan_after = local_datetime(plan.replan_on, time(0), definition.timezone) if plan.replan_on else None
        head = self.services.store.stream(instance_id)
        for attempt in (1, 2):
            try:
                applied = self.outbox.apply_plan(
                    plan,
                    now,
                    replan_after=replan_after,
                    sticky=_STICKY,
                    withdrawn=lambda subject, target: withdrawal_reason(instance, subject, target, plan.silenced),
                    moot_before=head.updated_at if head is not None else None,
                )
                break
            except IntegrityError:
                # Another worker inserted some of these keys first; the second pass sees them.
                if attempt == 2:
                    raise
        if report is not None:
            report.replanned += 1
            report.inserted += applied.inserted
            report.cancelled += applied.cancelled
        return plan

    def identity(self, instance_id: str) -> tuple[str, str]:
        """The instance's (definition hash, definition id), for its notification events.

        Read from the instance's row in the streams projection, which every append keeps
        in step (for a claimed batch, all at once by :meth:`tick`): folding the instance
        only to learn its definition cost more than recording its notifications.
        """
        found = self._identity.get(instance_id)
        if found is None:
            summary = self.services.store.stream(instance_id)
            if summary is None:
                raise UnknownInstance(instance_id)
            found = self._identity[instance_id] = (summary.definition_hash, summary.definition_id)
        return found

    def secretary(self, instance_id: str) -> Contact | None:
        return secretary_of(self.services.load(instance_id))


def _replan_due(replan_after: datetime | None, now: datetime) -> bool:
    return replan_after is not None and replan_after <= now
