"""SQLite persistence (sqlite-utils): the only package that speaks SQL."""
