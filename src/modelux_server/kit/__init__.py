"""Domain-free helpers: database sessions, ids, clock, pagination, secrets."""
