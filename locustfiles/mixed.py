"""A weighted mix of reads and writes; choose a side with Locust tags (`--tags read`)."""

from common import LoadlabUser
from locust import tag, task


class MixedUser(LoadlabUser):
    @tag("read")
    @task(5)
    def user(self) -> None:
        self.read_user()

    @tag("read")
    @task(3)
    def order(self) -> None:
        self.read_order()

    @tag("read")
    @task(2)
    def page(self) -> None:
        self.read_order_page()

    @tag("write")
    @task(3)
    def visit(self) -> None:
        self.visit_user()

    @tag("write")
    @task(1)
    def create(self) -> None:
        self.create_order()
