"""Plain Locust, as its documentation writes it: the yardstick of `loadlab bench`.

The headline's request (POST /users/{id}/visit on a seeded user) with nothing of loadlab's:
no answer checks, no recorder, no warm-up. What loadlab's generator costs beyond this is
what it takes from the stack it measures.
"""

import os
import random

from locust import FastHttpUser, constant, task

USERS = max(1, round(10_000 * float(os.environ.get("LOADLAB_SCALE", "1"))))


class Visit(FastHttpUser):
    wait_time = constant(0)

    @task
    def visit(self) -> None:
        self.client.post(f"/users/{random.randint(1, USERS)}/visit", name="/users/[id]/visit")
