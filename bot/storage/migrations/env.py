"""Alembic environment: the engine comes from the caller (bot.storage.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.storage.db import normalise_url
from bot.storage.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` CLI use
    from bot.config import load_settings

    engine = create_engine(normalise_url(load_settings().database_url))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.dbapi_connection if sqlite else None
    if raw is not None:
        # A batch-mode table rebuild drops the old table: with foreign keys on, that would
        # cascade into (or trip over) the rows that point at it. SQLite's own procedure for
        # schema changes: keys off outside the transaction, rebuild, check, keys back on.
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
            if raw is not None:
                broken = raw.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
        connection.commit()
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
