"""cases.priority: every complaint opens a case, and serious ones come first

Until now only a serious complaint (or a resident asking for a person, or a "not solved"
follow-up) opened a case, so every case was urgent by definition. Now every submitted complaint
opens one, and ``priority`` ("urgent" for the serious triggers or raised by staff, else
"normal") keeps the serious ones first in the queue. Existing cases were all opened by a
trigger, so they start as "normal" except the serious ones, which become "urgent".

Revision ID: 0010_complaint_cases
Revises: 0009_send_budget
Create Date: 2026-12-01 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_complaint_cases"
down_revision: str | Sequence[str] | None = "0009_send_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("priority", sa.String(length=16), nullable=False,
                                   server_default="normal"))
    op.execute("UPDATE cases SET priority = 'urgent' WHERE \"trigger\" = 'serious'")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("priority")
