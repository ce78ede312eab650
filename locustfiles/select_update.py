"""The headline: each request reads a user and adds one visit (1 SELECT + 1 UPDATE)."""

from common import LoadlabUser
from locust import task


class SelectUpdateUser(LoadlabUser):
    @task
    def visit(self) -> None:
        self.visit_user()
