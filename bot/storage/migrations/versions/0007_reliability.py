"""identifier columns sized to what Telegram and Meta document, and other reliability fixes

Chat ids, user ids and message ids (and the keys built from them) become VARCHAR(256): Meta's
business-scoped user id is a country code, a period and up to 128 characters, a wamid is an
opaque base64 string; a longer value made every retry fail on PostgreSQL with
StringDataRightTruncation. On PostgreSQL widening a VARCHAR is a catalog change only; SQLite
(which never enforced the length) rebuilds the tables in batch mode.

Revision ID: 0007_reliability
Revises: 0006_merge_heads
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_reliability"
down_revision: str | Sequence[str] | None = "0006_merge_heads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_LEN = 256  # bot.storage.models.ID_LEN, frozen here as migrations must be

# (table, column, old length, nullable)
WIDENED: list[tuple[str, str, int, bool]] = [
    ("contacts", "external_id", 64, False),
    ("inbound_events", "event_key", 128, False),
    ("survey_responses", "response_key", 128, False),
    ("complaints", "source_key", 128, False),
    ("outbox", "chat_id", 64, False),
    ("outbox", "provider_message_id", 128, True),
    ("outbox", "dedupe_key", 128, True),
    ("staff_members", "chat_id", 64, False),
    ("whatsapp_identities", "user_id", 128, False),
    ("cases", "source_key", 128, False),
    ("cases", "chat_id", 64, True),
]


def _alter(widen: bool) -> None:
    tables: dict[str, list[tuple[str, int, bool]]] = {}
    for table, column, old, nullable in WIDENED:
        tables.setdefault(table, []).append((column, old, nullable))
    for table, columns in tables.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, old, nullable in columns:
                before, after = (old, ID_LEN) if widen else (ID_LEN, old)
                batch_op.alter_column(column, existing_type=sa.String(length=before),
                                      type_=sa.String(length=after), existing_nullable=nullable)


def upgrade() -> None:
    _alter(widen=True)


def downgrade() -> None:
    _alter(widen=False)
