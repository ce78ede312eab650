"""Plain Locust users as Locust's documentation writes them, for an app loadlab did not
write (Datasette, from PyPI, serving a SQLite table of 100 rows): HttpUser and FastHttpUser,
`name=` grouping, `catch_response`. Nothing of loadlab's is imported."""

import random

from locust import FastHttpUser, HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0)

    @task(3)
    def a_row(self):
        self.client.get(f"/data/things/{random.randint(1, 100)}.json", name="/data/things/[id]")

    @task
    def a_missing_table(self):
        self.client.get("/data/nothing.json")  # Datasette answers 404


class Checker(FastHttpUser):
    wait_time = constant(0)

    @task(3)
    def versions(self):
        with self.client.get("/-/versions.json", catch_response=True) as response:
            if "python" in response.json():
                response.success()
            else:
                response.failure("no python version")

    @task
    def a_page_of_ten(self):
        # Asks for 5 and insists on 10: every answer is this check's failure.
        with self.client.get(
            "/data/things.json?_size=5", name="/data/things?_size", catch_response=True
        ) as response:
            rows = len(response.json()["rows"])
            if rows != 10:
                response.failure(f"expected 10 rows, got {rows}")
