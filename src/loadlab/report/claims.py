"""What the source article claims, quoted so reports can show our figures beside it.

These are claims, not results: they come from `seeds/000_caf037058c97b154.txt` ("200
concurrent HTTP requests, each performing 1 SELECT + 1 UPDATE ... PostgreSQL 16, same
pool_size=20", on a 4-core machine).
"""

from typing import Any

SOURCE = "shared/seeds/000_caf037058c97b154.txt"
CONDITIONS = (
    "200 concurrent requests, 1 SELECT + 1 UPDATE each, PostgreSQL 16, pool_size=20, 4 cores"
)

HEADLINE: dict[str, Any] = {
    "scenario": "select_update",
    "variants": {
        "flask_sync": {"p50": 45.0, "p95": 312.0, "p99": 1840.0, "errors": 12},
        "fastapi_async": {"p50": 52.0, "p95": 89.0, "p99": 142.0, "errors": 0},
    },
}
