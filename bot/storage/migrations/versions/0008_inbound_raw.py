"""inbound_events.raw: an update that could not be handled is kept in the database, not in the logs

An update aiogram cannot parse (or whose turn failed on a bug) is marked received and skipped so
it blocks nobody; its body is stored here for an operator instead of being written to the log
(it carries the resident's name and words).

Revision ID: 0008_inbound_raw
Revises: 0007_reliability
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_inbound_raw"
down_revision: str | Sequence[str] | None = "0007_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inbound_events", sa.Column("raw", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("raw")
