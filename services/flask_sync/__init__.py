"""Flask + sync SQLAlchemy (psycopg2), served by gunicorn."""
