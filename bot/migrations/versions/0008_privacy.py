"""privacy: what deletion and declined consent must leave behind

Revision ID: 0008_privacy
Revises: 0007_reliability
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

revision: str = "0008_privacy"
down_revision: str | Sequence[str] | None = "0007_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
