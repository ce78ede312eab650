"""A weighted mix of reads and writes; choose a side with Locust tags (`--tags read`)."""

import random

from common import (
    ORDER_KEYS,
    PAGE_KEYS,
    USER_KEYS,
    LoadlabUser,
    random_order_id,
    random_user_id,
)
from locust import tag, task
from write_orders import new_order


class MixedUser(LoadlabUser):
    @tag("read")
    @task(5)
    def user(self) -> None:
        self.call(
            "GET", f"/users/{random_user_id()}", name="/users/[id]", expect=200, keys=USER_KEYS
        )

    @tag("read")
    @task(3)
    def order(self) -> None:
        self.call(
            "GET", f"/orders/{random_order_id()}", name="/orders/[id]", expect=200, keys=ORDER_KEYS
        )

    @tag("read")
    @task(2)
    def page(self) -> None:
        status = random.choice(["pending", "paid", "shipped", "cancelled"])
        self.call(
            "GET",
            f"/orders?status={status}&limit=20",
            name="/orders?status=[s]",
            expect=200,
            keys=PAGE_KEYS,
        )

    @tag("write")
    @task(3)
    def visit(self) -> None:
        self.call(
            "POST",
            f"/users/{random_user_id()}/visit",
            name="/users/[id]/visit",
            expect=200,
            keys=USER_KEYS,
        )

    @tag("write")
    @task(1)
    def create(self) -> None:
        self.call("POST", "/orders", name="/orders", expect=201, keys=ORDER_KEYS, json=new_order())
