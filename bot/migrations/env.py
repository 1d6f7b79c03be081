"""Alembic environment: the engine comes from the caller (bot.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.db import normalise_url
from bot.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` CLI use
    from bot.config import load_settings

    engine = create_engine(normalise_url(load_settings().database_url))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
