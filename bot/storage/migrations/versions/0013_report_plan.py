"""plan_actions (the follow-up plan of the SKM) and periodic_reports (each report produced once)

Heads record improvement actions per SKM element and service (what, who, by when, status, what
was done); the periodic report and the digest show them. A periodic report is produced once
per (scope, period): the unique row is inserted with its outbox messages. The index on
survey_responses (agency, updated_at, started_at) finds the few questionnaires still answered
after a period's boundary, so the report can count answers by time and correct only those.

Revision ID: 0013_report_plan
Revises: 0012_skm_data
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_report_plan"
down_revision: str | Sequence[str] | None = "0012_skm_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("element", sa.SmallInteger(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_text", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_plan_actions_agency_id_agencies")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_plan_actions_service_id_services")),
        sa.ForeignKeyConstraint(["created_by"], ["staff_members.id"], ondelete="SET NULL",
                                name=op.f("fk_plan_actions_created_by_staff_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_actions")),
    )
    op.create_index("ix_plan_actions_agency_status", "plan_actions", ["agency_id", "status"])
    op.create_table(
        "periodic_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("produced_at", sa.DateTime(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_periodic_reports")),
        sa.UniqueConstraint("scope", "period", name="uq_periodic_reports_scope_period"),
    )


    op.create_index("ix_survey_responses_agency_updated", "survey_responses",
                    ["agency_id", "updated_at", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_responses_agency_updated", table_name="survey_responses")
    op.drop_table("periodic_reports")
    op.drop_index("ix_plan_actions_agency_status", table_name="plan_actions")
    op.drop_table("plan_actions")
