"""kiosks (a tablet at the counter collecting one service's SKM) and survey_responses.kiosk_id

A kiosk's questionnaires are ordinary survey responses (channel "kiosk", no contact), so every
report counts them; ``kiosk_id`` says which tablet, for the per-kiosk counts and the burst flag
of the digest. Only a SHA-256 of the kiosk's URL token is stored.

Revision ID: 0014_kiosks
Revises: 0013_report_plan
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_kiosks"
down_revision: str | Sequence[str] | None = "0013_report_plan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kiosks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_kiosks_agency_id_agencies")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_kiosks_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosks")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_kiosks_token_hash")),
    )
    op.create_index(op.f("ix_kiosks_agency_id"), "kiosks", ["agency_id"])
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(sa.Column("kiosk_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_survey_responses_kiosk_id_kiosks"), "kiosks", ["kiosk_id"], ["id"])
        batch.create_index(op.f("ix_survey_responses_kiosk_id"), ["kiosk_id"])


def downgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_index(op.f("ix_survey_responses_kiosk_id"))
        batch.drop_constraint(op.f("fk_survey_responses_kiosk_id_kiosks"), type_="foreignkey")
        batch.drop_column("kiosk_id")
    op.drop_index(op.f("ix_kiosks_agency_id"), table_name="kiosks")
    op.drop_table("kiosks")
