"""A team's own Locust file, as `run --locustfile` takes it: plain Locust, nothing of
loadlab's imported; loadlab attaches its recorder, gates and report around it."""

import random

from locust import FastHttpUser, constant, task


class ReadsUsers(FastHttpUser):
    wait_time = constant(0)

    @task
    def read_user(self) -> None:
        self.client.get(f"/users/{random.randint(1, 100)}", name="/users/[id]")
