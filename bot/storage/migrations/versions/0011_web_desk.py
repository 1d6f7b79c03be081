"""web desk: one-time sign-in links, browser sessions, canned replies, duplicate cases, queue order

Staff sign in to the web desk with a link the bot sends on ``/masuk``; only hashes of the link
and of the session cookie are stored. Agencies keep ready-made replies, and a case may be
marked a duplicate of another (its resident then follows the surviving case).

Revision ID: 0011_web_desk
Revises: 0010_complaint_cases
Create Date: 2026-12-01 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_web_desk"
down_revision: str | Sequence[str] | None = "0010_complaint_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "desk_login_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_desk_login_tokens_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_login_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_desk_login_tokens_token_hash")),
    )
    op.create_index(op.f("ix_desk_login_tokens_contact_id"), "desk_login_tokens", ["contact_id"])
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_desk_sessions_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_desk_sessions_session_hash")),
    )
    op.create_index(op.f("ix_desk_sessions_contact_id"), "desk_sessions", ["contact_id"])
    op.create_table(
        "desk_canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_desk_canned_replies_agency_id_agencies")),
        sa.ForeignKeyConstraint(["updated_by"], ["staff_members.id"], ondelete="SET NULL",
                                name=op.f("fk_desk_canned_replies_updated_by_staff_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_canned_replies")),
    )
    op.create_index(op.f("ix_desk_canned_replies_agency_id"), "desk_canned_replies", ["agency_id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("last_resident_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_cases_duplicate_of_cases"), "cases", ["duplicate_of"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index(op.f("ix_cases_duplicate_of"), ["duplicate_of"])
        batch.create_index("ix_cases_agency_last_resident", ["agency_id", "last_resident_at"])
        batch.create_index("ix_cases_agency_deadlines", ["agency_id", "status", "resolution_due",
                                                         "first_response_due", "first_response_at"])
    op.create_index("ix_complaints_category", "complaints", ["category"])
    # the queue orders by the resident's latest message; until one comes, by when the case opened
    op.execute(
        "UPDATE cases SET last_resident_at = COALESCE((SELECT MAX(e.at) FROM case_events e "
        "WHERE e.case_id = cases.id AND e.kind = 'from_resident'), created_at)"
    )


def downgrade() -> None:
    op.drop_index("ix_complaints_category", table_name="complaints")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_agency_deadlines")
        batch.drop_index("ix_cases_agency_last_resident")
        batch.drop_index(op.f("ix_cases_duplicate_of"))
        batch.drop_constraint(op.f("fk_cases_duplicate_of_cases"), type_="foreignkey")
        batch.drop_column("duplicate_of")
        batch.drop_column("last_resident_at")
    op.drop_index(op.f("ix_desk_canned_replies_agency_id"), table_name="desk_canned_replies")
    op.drop_table("desk_canned_replies")
    op.drop_index(op.f("ix_desk_sessions_contact_id"), table_name="desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_index(op.f("ix_desk_login_tokens_contact_id"), table_name="desk_login_tokens")
    op.drop_table("desk_login_tokens")
