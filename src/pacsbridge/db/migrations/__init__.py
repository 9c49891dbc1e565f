"""Alembic migrations; one per schema change (see docs/architecture.md)."""
