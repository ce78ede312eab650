"""Reads of one order with its customer, items and each item's product (three relations)."""

from common import ORDER_KEYS, LoadlabUser, random_order_id
from locust import task


class EagerReadUser(LoadlabUser):
    @task
    def order(self) -> None:
        self.call(
            "GET", f"/orders/{random_order_id()}", name="/orders/[id]", expect=200, keys=ORDER_KEYS
        )
