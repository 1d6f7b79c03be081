"""Storage: SQLAlchemy models, engine and migrations, ticket numbers, the hot-path SQL."""
