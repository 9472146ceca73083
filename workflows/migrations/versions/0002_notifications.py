"""The notification outbox: notifications, notification_plans, notification_cursor.

The outbox is bookkeeping beside the log (what is planned, claimed, sent, missed), so
it is mutable; the append-only triggers of 0001 stay on the log. What was sent is
proven by the ``NotificationSent`` events, not by these rows.

Revision ID: 0002
Revises: 0001
Create Date: 2024-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = "state IN ('planned', 'claimed', 'sent', 'failed', 'missed', 'cancelled')"


def _id() -> sa.String:
    return sa.String(200)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("instance", _id(), nullable=False),
        sa.Column("rule", _id(), nullable=False),
        sa.Column("kind", _id(), nullable=False),
        sa.Column("subject", _id(), nullable=False),
        sa.Column("target", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.Text(), nullable=False),
        sa.Column("recipient_role", _id(), nullable=False),
        sa.Column("due_at", sa.Text(), nullable=False),
        sa.Column("stale_after", sa.Text(), nullable=True),
        sa.Column("stale_reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", _id(), nullable=True),
        sa.Column("claimed_until", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("invite", sa.Text(), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("first_attempt_at", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("key", name="uq_notifications_key"),
        sa.CheckConstraint(_STATES, name="ck_notifications_state"),
    )
    op.create_index("ix_notifications_state_due_at", "notifications", ["state", "due_at"])
    op.create_index("ix_notifications_instance", "notifications", ["instance"])
    op.create_table(
        "notification_plans",
        sa.Column("instance", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("planned_at", sa.Text(), nullable=False),
        sa.Column("replan_after", sa.Text(), nullable=True),
        sa.Column("silenced", sa.Text(), nullable=True),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance", name="pk_notification_plans"),
    )
    op.create_index("ix_notification_plans_replan_after", "notification_plans", ["replan_after"])
    cursor = op.create_table(
        "notification_cursor",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_cursor"),
        sa.CheckConstraint("id = 1", name="ck_notification_cursor_single_row"),
    )
    op.bulk_insert(cursor, [{"id": 1, "position": 0}])


def downgrade() -> None:
    op.drop_table("notification_cursor")
    op.drop_index("ix_notification_plans_replan_after", table_name="notification_plans")
    op.drop_table("notification_plans")
    op.drop_index("ix_notifications_instance", table_name="notifications")
    op.drop_index("ix_notifications_state_due_at", table_name="notifications")
    op.drop_table("notifications")
