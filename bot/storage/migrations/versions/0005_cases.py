"""cases in human review, their audit trail, and staff rooms

Revision ID: 0005_cases
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0005_cases"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0003_staff_digest",)  # cases point at staff_members

UTC = bot.storage.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "staff_rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("linked_by", sa.Integer(), nullable=True),
        sa.Column("linked_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_staff_rooms_agency_id_agencies")),
        sa.ForeignKeyConstraint(["linked_by"], ["contacts.id"], ondelete="SET NULL",
                                name=op.f("fk_staff_rooms_linked_by_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_rooms")),
        sa.UniqueConstraint("agency_id", name=op.f("uq_staff_rooms_agency_id")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_staff_rooms_chat_id")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=128), nullable=False),
        sa.Column("ticket", sa.String(length=16), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("survey_response_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("reporter_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("relay", sa.Boolean(), nullable=False),
        sa.Column("room_chat_id", sa.String(length=64), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("card_message_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.Column("first_response_due", UTC(), nullable=False),
        sa.Column("resolution_due", UTC(), nullable=False),
        sa.Column("first_response_at", UTC(), nullable=True),
        sa.Column("resolved_at", UTC(), nullable=True),
        sa.Column("closed_at", UTC(), nullable=True),
        sa.Column("first_overdue_at", UTC(), nullable=True),
        sa.Column("resolution_overdue_at", UTC(), nullable=True),
        sa.Column("notice_at", UTC(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_cases_agency_id_agencies")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_cases_service_id_services")),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_cases_complaint_id_complaints")),
        sa.ForeignKeyConstraint(["survey_response_id"], ["survey_responses.id"],
                                name=op.f("fk_cases_survey_response_id_survey_responses")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL",
                                name=op.f("fk_cases_contact_id_contacts")),
        sa.ForeignKeyConstraint(["assignee_id"], ["staff_members.id"], ondelete="SET NULL",
                                name=op.f("fk_cases_assignee_id_staff_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("source_key", name=op.f("uq_cases_source_key")),
    )
    op.create_index("ix_cases_agency_status", "cases", ["agency_id", "status"])
    op.create_index("ix_cases_first_response_due", "cases", ["first_response_due"])
    op.create_index("ix_cases_resolution_due", "cases", ["resolution_due"])
    op.create_index(op.f("ix_cases_ticket"), "cases", ["ticket"])
    op.create_index(op.f("ix_cases_complaint_id"), "cases", ["complaint_id"])
    op.create_index(op.f("ix_cases_contact_id"), "cases", ["contact_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_events_case_id"), table_name="case_events")
    op.drop_table("case_events")
    op.drop_index(op.f("ix_cases_contact_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_complaint_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_ticket"), table_name="cases")
    op.drop_index("ix_cases_resolution_due", table_name="cases")
    op.drop_index("ix_cases_first_response_due", table_name="cases")
    op.drop_index("ix_cases_agency_status", table_name="cases")
    op.drop_table("cases")
    op.drop_table("staff_rooms")
