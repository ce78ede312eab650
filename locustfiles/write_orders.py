"""Writes: each request creates an order of 1 to 5 items in one unit of work."""

from common import LoadlabUser
from locust import task


class WriteOrdersUser(LoadlabUser):
    @task
    def create(self) -> None:
        self.create_order()
