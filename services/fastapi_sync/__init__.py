"""FastAPI with plain def endpoints on sync SQLAlchemy, in Starlette's thread pool."""
