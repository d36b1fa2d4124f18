"""The index: SQLite through SQLAlchemy Core, schema managed by Alembic migrations."""
