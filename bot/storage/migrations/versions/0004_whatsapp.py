"""whatsapp: delivery statuses on outbox rows, stored webhook bodies, BSUID -> wa_id

Revision ID: 0004_whatsapp
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0004_whatsapp"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", bot.storage.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("read_at", bot.storage.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("error_code", sa.String(length=16), nullable=True))
        # status webhooks look rows up by the platform's message id
        batch_op.create_index("ix_outbox_provider_message_id", ["provider_message_id"], unique=False)
    op.create_table(
        "whatsapp_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_webhooks")),
    )
    with op.batch_alter_table("whatsapp_webhooks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_whatsapp_webhooks_received_at"), ["received_at"], unique=False
        )
    op.create_table(
        "whatsapp_identities",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("wa_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_whatsapp_identities")),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_identities")
    with op.batch_alter_table("whatsapp_webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_whatsapp_webhooks_received_at"))
    op.drop_table("whatsapp_webhooks")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_provider_message_id")
        batch_op.drop_column("error_code")
        batch_op.drop_column("read_at")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("delivery_status")
