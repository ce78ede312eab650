"""Flask on gunicorn's gevent worker, psycopg2 made cooperative (psycogreen)."""
