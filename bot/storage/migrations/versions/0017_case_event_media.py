"""case_events.media: the photo a resident (or staff) sent during a relay

The web desk showed a relayed photo as "[photo]"; the event now keeps what the channel gave
(a Telegram file id, a WhatsApp media id and the saved file's path), so the desk can show it.

Revision ID: 0017_case_event_media
Revises: 0016_outbox_index
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_case_event_media"
down_revision: str | Sequence[str] | None = "0016_outbox_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("media", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("media")
