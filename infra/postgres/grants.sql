-- What the services' role, loadlab_app, may do: read and write the application tables and
-- draw their ids, nothing else (no DDL, no COPY ... TO PROGRAM, no other database, no
-- temporary tables). Run by `loadlab up` and the compose seed job after schema.sql, as the
-- superuser, once loadlab_app exists; safe to run again.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO loadlab_app', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO loadlab_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, customers, products, orders, order_items
    TO loadlab_app;
GRANT USAGE ON SEQUENCE users_id_seq, customers_id_seq, products_id_seq, orders_id_seq,
    order_items_id_seq TO loadlab_app;
