"""outbox: quiet-hours agency, urgency, reference, uncertain sends; follow-up answers

Revision ID: 0002_outbox
Revises: 0001
Create Date: 2026-11-28 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0002_outbox"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("uncertain", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(batch_op.f("ix_outbox_ref"), ["ref"], unique=False)
    op.create_table(
        "followup_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_followup_answers_complaint_id_complaints")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_answers")),
    )
    with op.batch_alter_table("followup_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followup_answers_complaint_id"), ["complaint_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("followup_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_answers_complaint_id"))
    op.drop_table("followup_answers")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_ref"))
        batch_op.drop_column("uncertain")
        batch_op.drop_column("ref")
        batch_op.drop_column("urgent")
        batch_op.drop_column("agency_id")
