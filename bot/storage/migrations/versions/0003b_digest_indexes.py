"""covering indexes for the weekly digest's GROUP BY

Revision ID: 0003b_digest_indexes
Revises: 0003_staff_digest
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003b_digest_indexes"
down_revision: str | Sequence[str] | None = "0003_staff_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_survey_answers_digest", "survey_answers",
                    ["agency_id", "answered_at", "service_id", "element", "score"])


def downgrade() -> None:
    op.drop_index("ix_survey_answers_digest", table_name="survey_answers")
