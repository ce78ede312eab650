"""FastAPI + async SQLAlchemy (asyncpg), served by uvicorn."""
