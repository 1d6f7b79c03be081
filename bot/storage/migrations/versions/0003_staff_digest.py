"""staff members, invites, invite attempts and weekly digests

Revision ID: 0003_staff_digest
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0003_staff_digest"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_staff_members_agency_id_agencies")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_members_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_members")),
        sa.UniqueConstraint("agency_id", "contact_id", name="uq_staff_members_agency_contact"),
    )
    op.create_index(op.f("ix_staff_members_agency_id"), "staff_members", ["agency_id"])
    op.create_index(op.f("ix_staff_members_contact_id"), "staff_members", ["contact_id"])
    op.create_table(
        "staff_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", bot.storage.models.UTCDateTime(), nullable=True),
        sa.Column("used_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_staff_invites_agency_id_agencies")),
        sa.ForeignKeyConstraint(["used_by"], ["contacts.id"], ondelete="SET NULL",
                                name=op.f("fk_staff_invites_used_by_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_staff_invites_code_hash")),
    )
    op.create_table(
        "staff_invite_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_invite_attempts_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invite_attempts")),
    )
    op.create_index("ix_staff_invite_attempts_contact_at", "staff_invite_attempts",
                    ["contact_id", "at"])
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("produced_at", bot.storage.models.UTCDateTime(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_digests_agency_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("agency_id", "week", name="uq_digests_agency_week"),
    )


def downgrade() -> None:
    op.drop_table("digests")
    op.drop_index("ix_staff_invite_attempts_contact_at", table_name="staff_invite_attempts")
    op.drop_table("staff_invite_attempts")
    op.drop_table("staff_invites")
    op.drop_index(op.f("ix_staff_members_contact_id"), table_name="staff_members")
    op.drop_index(op.f("ix_staff_members_agency_id"), table_name="staff_members")
    op.drop_table("staff_members")
