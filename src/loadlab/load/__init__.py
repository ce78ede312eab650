"""Driving load: Locust invocations, exact latency recording, resource sampling."""
