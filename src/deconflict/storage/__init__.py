"""Storage: one SQLAlchemy Core schema, SQLite by default and PostgreSQL in production."""
