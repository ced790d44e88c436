"""Relational storage: SQLite (embedded default) and PostgreSQL, one schema, one behaviour."""
