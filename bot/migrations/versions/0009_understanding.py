"""understanding residents: service names and aliases in both languages, a default agency

Revision ID: 0009_understanding
Revises: 0008_privacy
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

revision: str = "0009_understanding"
down_revision: str | Sequence[str] | None = "0008_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
