"""The system under test: PostgreSQL, PgBouncer and the two services, as recorded processes."""
