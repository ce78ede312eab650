"""Reads of one order with its customer, items and each item's product (three relations)."""

from common import LoadlabUser
from locust import task


class EagerReadUser(LoadlabUser):
    @task
    def order(self) -> None:
        self.read_order()
