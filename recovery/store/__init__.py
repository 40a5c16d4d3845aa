"""Persistence: one schema on SQLite or PostgreSQL, behind the ``Store`` port."""
