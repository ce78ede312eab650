"""The error contract: `{"error": code, "detail": text}` with the same status in both services."""

from __future__ import annotations

from http import HTTPStatus

from sqlalchemy import exc as sa_exc

from services.common.schemas import ErrorOut, to_json


class ApiError(Exception):
    """An expected failure that becomes a 4xx/5xx JSON response."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    def body(self) -> bytes:
        return to_json(ErrorOut(error=self.code, detail=self.detail))


MAX_BODY_BYTES = 64 * 1024


def body_too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")


def http_error(status: int, method: str, path: str) -> ApiError:
    """Map a framework-level HTTP error to the same JSON in both services."""
    if status == 404:
        return ApiError(404, "not_found", f"no route for {method} {path}")
    if status == 405:
        return ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
    if status == 413:
        return body_too_large()
    phrase = HTTPStatus(status).phrase
    return ApiError(status, phrase.lower().replace(" ", "_"), phrase)


def database_error(exc: BaseException) -> ApiError | None:
    """503 for a database that cannot be reached or a pool with no free connection.

    Anything else from the database (a constraint violation, bad SQL) stays a bug: None.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return ApiError(503, "pool_timeout", "no database connection free within the pool timeout")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | OSError):
        return ApiError(503, "database_unavailable", "the database cannot be reached")
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return ApiError(503, "database_unavailable", "the database connection was lost")
    return None
