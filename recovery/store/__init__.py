"""Persistence: one schema on SQLite or PostgreSQL, and one module of queries per table group (``*_rows``)."""
