"""SKM data the regulation needs: respondent profile, one questionnaire per visit, counted_at

- contacts.profile_*: the respondent profile of the official SKM questionnaire (PermenPANRB
  14/2017: gender, age band, education, occupation), each optional; profile_at says it was asked.
- survey_responses.profile_*: a snapshot of that profile when the questionnaire was answered.
- services.population / population_per: service users per period, for the Krejcie-Morgan
  minimum sample; services.survey_once_per: one questionnaire per resident per service per day
  (NULL) or per so many hours.
- survey_answers.counted_at: the questionnaire's first answer (its response's started_at), so
  a questionnaire crossing midnight counts in one week and period; the digest's covering
  index moves from answered_at to counted_at.

Revision ID: 0012_skm_data
Revises: 0011_web_desk
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.models

revision: str = "0012_skm_data"
down_revision: str | Sequence[str] | None = "0011_web_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROFILE = ("profile_gender", "profile_age", "profile_education", "profile_job")
DIGEST_COLUMNS = ["agency_id", "counted_at", "service_id", "element", "score"]


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        for name in PROFILE:
            batch.add_column(sa.Column(name, sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("profile_at", bot.storage.models.UTCDateTime(), nullable=True))
    with op.batch_alter_table("survey_responses") as batch:
        for name in PROFILE:
            batch.add_column(sa.Column(name, sa.String(length=16), nullable=True))
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("population", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("population_per", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("survey_once_per", sa.String(length=16), nullable=True))
    op.add_column("survey_answers",
                  sa.Column("counted_at", bot.storage.models.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE survey_answers SET counted_at = (SELECT r.started_at FROM survey_responses r"
        " WHERE r.id = survey_answers.response_id)"
    )
    op.execute("UPDATE survey_answers SET counted_at = answered_at WHERE counted_at IS NULL")
    op.drop_index("ix_survey_answers_digest", table_name="survey_answers")
    with op.batch_alter_table("survey_answers") as batch:
        batch.alter_column("counted_at", existing_type=bot.storage.models.UTCDateTime(), nullable=False)
    op.create_index("ix_survey_answers_digest", "survey_answers", DIGEST_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_survey_answers_digest", table_name="survey_answers")
    with op.batch_alter_table("survey_answers") as batch:
        batch.drop_column("counted_at")
    op.create_index("ix_survey_answers_digest", "survey_answers",
                    ["agency_id", "answered_at", "service_id", "element", "score"])
    with op.batch_alter_table("services") as batch:
        for name in ("survey_once_per", "population_per", "population"):
            batch.drop_column(name)
    with op.batch_alter_table("survey_responses") as batch:
        for name in reversed(PROFILE):
            batch.drop_column(name)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("profile_at")
        for name in reversed(PROFILE):
            batch.drop_column(name)
