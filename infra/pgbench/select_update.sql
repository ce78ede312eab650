-- The select_update scenario's transaction without the web stack: the SELECT ... FOR UPDATE
-- and the UPDATE by id that POST /users/{id}/visit runs (services/common/queries.py), on a
-- user drawn as the Locust file draws it. pgbench runs it as `loadlab run --ceiling` asks.
\set id random(1, :users)
BEGIN;
SELECT id, name, email, visits, last_seen, created_at FROM users WHERE id = :id FOR UPDATE;
UPDATE users SET visits = visits + 1, last_seen = now() WHERE id = :id;
COMMIT;
