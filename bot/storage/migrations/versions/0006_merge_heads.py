"""merge the outbox, digest, WhatsApp and cases branches into one head

They were written side by side on top of 0001 and touch different tables. One head again
means the next migration has a single parent and `alembic revision --autogenerate` works.

Revision ID: 0006_merge_heads
Revises: 0002_outbox, 0003b_digest_indexes, 0004_whatsapp, 0005_cases
Create Date: 2026-11-28 12:10:00
"""

from collections.abc import Sequence

revision: str = "0006_merge_heads"
down_revision: str | Sequence[str] | None = (
    "0002_outbox",
    "0003b_digest_indexes",
    "0004_whatsapp",
    "0005_cases",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
