"""The seed is deterministic and self-consistent in the real database."""

from __future__ import annotations

import psycopg2

from loadlab.stack import seed
from tests.conftest import TEST_SCALE, Stack


def test_same_scale_gives_the_same_rows() -> None:
    assert seed.rows(seed.Scale.of(0.05)) == seed.rows(seed.Scale.of(0.05))
    assert seed.rows(seed.Scale.of(0.05)) != seed.rows(seed.Scale.of(0.06))


def test_default_scale_matches_the_issue() -> None:
    scale = seed.Scale.of(1.0)
    assert (scale.users, scale.customers, scale.products, scale.orders) == (
        10_000,
        1_000,
        500,
        10_000,
    )


def test_loaded_seed_is_consistent(fresh: Stack) -> None:
    scale = seed.Scale.of(TEST_SCALE)
    conn = psycopg2.connect(fresh.database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        assert cur.fetchone() == (scale.users,)
        cur.execute(
            "SELECT min(n), max(n) FROM (SELECT count(*) n FROM order_items GROUP BY order_id) c"
        )
        assert cur.fetchone() == (1, 5)
        cur.execute(
            """SELECT count(*) FROM orders o WHERE total_cents <> (
                 SELECT sum(quantity * unit_price_cents) FROM order_items WHERE order_id = o.id)"""
        )
        assert cur.fetchone() == (0,)
        cur.execute("SELECT nextval('users_id_seq')")
        assert cur.fetchone() == (scale.users + 1,)
    conn.close()
