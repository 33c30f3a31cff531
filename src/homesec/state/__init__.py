"""Clip state persistence: one SQLAlchemy schema on Postgres or SQLite, Alembic migrations."""
