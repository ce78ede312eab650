"""The headline: each request reads a user and adds one visit (1 SELECT + 1 UPDATE)."""

from common import USER_KEYS, LoadlabUser, random_user_id
from locust import task


class SelectUpdateUser(LoadlabUser):
    @task
    def visit(self) -> None:
        self.call(
            "POST",
            f"/users/{random_user_id()}/visit",
            name="/users/[id]/visit",
            expect=200,
            keys=USER_KEYS,
        )
