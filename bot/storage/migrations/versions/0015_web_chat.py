"""complaints: the web chat's ticket secret and one-time claim code (both stored hashed)

A complaint filed on the web chat gets a short secret, shown once with the ticket and asked
with it to see the status from any browser; ``web_claim_hash``/``web_claim_until`` hold the
one-time code of a "continue on Telegram/WhatsApp" link while it is valid.

Revision ID: 0015_web_chat
Revises: 0014_kiosks
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0015_web_chat"
down_revision: str | Sequence[str] | None = "0014_kiosks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("web_secret_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("web_claim_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("web_claim_until", bot.storage.models.UTCDateTime(), nullable=True))
    op.create_index("ix_complaints_web_claim_hash", "complaints", ["web_claim_hash"])


def downgrade() -> None:
    op.drop_index("ix_complaints_web_claim_hash", table_name="complaints")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("web_claim_until")
        batch.drop_column("web_claim_hash")
        batch.drop_column("web_secret_hash")
