"""Storage: SQLAlchemy models, engine and migrations, ticket numbers, the hot-path SQL, and
locks held for a process's life (locks: one Telegram poller per bot)."""
