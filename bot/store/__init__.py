"""The tables (SQLModel) and the async database (SQLite or PostgreSQL): the source of truth.
"""

__all__ = ["db", "models"]
