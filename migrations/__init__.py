"""Alembic migrations of the dtindex index; installed as the `dtindex_migrations` package."""
