"""Alembic migrations for the bot's tables."""
