"""The outbox on SQLite and PostgreSQL: plans stored idempotently, each due row claimed exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from governance import commands
from governance.reminders import NEWS_RULES, plan_notifications, withdrawal_reason
from tests.unit.lis import Walk
from workflows.claims import SqlClaims
from workflows.database import make_engine, migrate
from workflows.outbox import SqlOutbox

NOW = datetime(2019, 6, 3, 12, tzinfo=UTC)
LATER = datetime(2021, 1, 4, 12, tzinfo=UTC)  # every notice of the LIS is due by then


@pytest.fixture
def url(database_url: str) -> str:
    migrate(database_url)
    return database_url


def store_plan(outbox: SqlOutbox, walk: Walk, today: date = date(2019, 6, 3), now: datetime = NOW) -> int:
    plan = plan_notifications(walk.instance, today)
    report = outbox.apply_plan(
        plan,
        now,
        replan_after=None,
        sticky=NEWS_RULES,
        withdrawn=lambda subject, target: withdrawal_reason(walk.instance, subject, target, plan.silenced),
    )
    return report.inserted


def test_storing_the_same_plan_twice_changes_nothing(url: str) -> None:
    outbox = SqlOutbox(make_engine(url))
    walk = Walk()

    first = store_plan(outbox, walk)
    second = store_plan(outbox, walk)

    assert first == len(plan_notifications(walk.instance, date(2019, 6, 3)).notices) > 100
    assert second == 0
    assert outbox.counts() == {"planned": first}
    outbox.engine.dispose()


def test_a_new_plan_cancels_what_left_it_with_the_reason_and_keeps_what_was_sent(url: str) -> None:
    engine = make_engine(url)
    outbox, claims = SqlOutbox(engine), SqlClaims(engine)
    walk = Walk()
    store_plan(outbox, walk)
    (sent, *_) = claims.claim(datetime(2019, 8, 1, 9, tzinfo=UTC), "w1", 1, timedelta(minutes=5))
    claims.settle_done(NOW, [(sent.key, "<id@selep.example>", "0" * 64)], [])

    walk.record(commands.cancel_meeting(walk.instance, "strategic-board-2019-10-04", "no business", walk.now))
    walk.record(commands.pause(walk.instance, "purdah", walk.now))
    store_plan(outbox, walk)

    rows = {row.key: row for row in outbox.rows("selep-lis")}
    assert rows[sent.key].state == "sent"
    others = [row for key, row in rows.items() if key != sent.key]
    assert {row.state for row in others} == {"cancelled"}
    assert {row.outcome for row in others} == {"instance paused: purdah"}
    engine.dispose()


def test_a_notice_back_in_the_plan_is_planned_again(url: str) -> None:
    outbox = SqlOutbox(make_engine(url))
    walk = Walk()
    store_plan(outbox, walk)
    walk.record(commands.pause(walk.instance, "purdah", walk.now))
    store_plan(outbox, walk)
    walk.record(commands.resume(walk.instance, "over", walk.now))

    store_plan(outbox, walk)

    assert set(outbox.counts()) == {"planned"}
    outbox.engine.dispose()


def test_each_due_row_is_claimed_exactly_once_by_concurrent_workers(url: str) -> None:
    outbox = SqlOutbox(make_engine(url))
    total = store_plan(outbox, Walk())
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work(name: str) -> None:
        engine = make_engine(url)  # each worker has its own engine, as separate processes would
        claims = SqlClaims(engine)
        start.wait()
        while rows := claims.claim(LATER, name, 7, timedelta(minutes=5)):
            with lock:
                claimed.extend(row.key for row in rows)
        engine.dispose()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claimed) == total
    assert max(Counter(claimed).values()) == 1
    outbox.engine.dispose()


def test_a_claim_whose_lease_expired_is_taken_over(url: str) -> None:
    engine = make_engine(url)
    store_plan(SqlOutbox(engine), Walk())
    claims = SqlClaims(engine)
    due = datetime(2019, 8, 1, 9, tzinfo=UTC)
    first = claims.claim(due, "crashed", 100, timedelta(minutes=10))

    assert claims.claim(due + timedelta(minutes=9), "w2", 100, timedelta(minutes=10)) == []
    taken = claims.claim(due + timedelta(minutes=11), "w2", 100, timedelta(minutes=10))

    assert first and {row.key for row in taken} == {row.key for row in first}
    assert {row.claimed_by for row in taken} == {"w2"}
    assert not claims.settle_failed(first[0].key, "crashed", due, 1, "too late")  # the old claim is gone
    engine.dispose()


def test_finding_what_is_due_reads_the_state_and_due_time_index(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        plan = connection.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id FROM notifications WHERE state IN ('planned', 'claimed') "
                "AND due_at <= :now ORDER BY due_at LIMIT 10"
            ),
            {"now": "2019-01-01"},
        ).all()
    assert any("ix_notifications_state_due_at" in str(row) for row in plan)
    engine.dispose()
