"""Writes: each request creates an order of 1 to 5 items in one unit of work."""

import random

from common import ORDER_KEYS, SCALE, LoadlabUser
from locust import task


def new_order() -> dict:
    products = random.sample(range(1, SCALE.products + 1), random.randint(1, 5))
    return {
        "customer_id": random.randint(1, SCALE.customers),
        "items": [{"product_id": p, "quantity": random.randint(1, 4)} for p in products],
    }


class WriteOrdersUser(LoadlabUser):
    @task
    def create(self) -> None:
        self.call("POST", "/orders", name="/orders", expect=201, keys=ORDER_KEYS, json=new_order())
