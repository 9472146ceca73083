"""An index for the earliest expiring claim: ``(state, claimed_until)`` on notifications.

The worker asks for ``min(claimed_until)`` of the claimed rows at every tick (when to
wake for an expired lease). With only ``(state, due_at)``, a planner that has statistics
saying most rows share a state (SQLite after ``ANALYZE``) reads the whole outbox; this
index answers it from one end of the claimed rows.

Revision ID: 0003
Revises: 0002
Create Date: 2024-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_state_claimed_until", "notifications", ["state", "claimed_until"])


def downgrade() -> None:
    op.drop_index("ix_notifications_state_claimed_until", table_name="notifications")
