"""an index on outbox (status, channel, due_at, id) for the dispatcher's claim and /metrics

The dispatcher claims, per channel, the oldest due rows: ``status = 'pending' AND channel = ?
AND due_at <= now ORDER BY due_at, id LIMIT n``. With this index that is a short range read
in the wanted order, whatever the backlog (100,000 due follow-ups after a broadcast cost a
tick what 1,000 do). The same index answers the ``/metrics`` gauges' ``GROUP BY status,
channel`` from the index alone on PostgreSQL.

Revision ID: 0016_outbox_index
Revises: 0015_web_chat
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_outbox_index"
down_revision: str | Sequence[str] | None = "0015_web_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_status_channel_due", "outbox", ["status", "channel", "due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_channel_due", table_name="outbox")
