"""FastAPI, the article's hybrid: async ORM writes, raw asyncpg reads."""
