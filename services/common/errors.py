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


# SQLSTATE classes that mean "the database is not available now": connection exceptions
# (08), insufficient resources such as too many connections (53), operator intervention such
# as a shutdown, a server still starting up or a cancelled statement (57), failed
# authentication (28) and a missing database (3D). Both drivers report these codes; only
# psycopg2 also makes them OperationalError, so the code, not the class, decides.
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "28", "3D")


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and code:
            return code
    return None


def _raw_driver_error(exc: BaseException, unavailable: ApiError) -> ApiError | None:
    """A driver's own exception, not wrapped by SQLAlchemy (fastapi_hybrid's raw reads):
    asyncpg's server errors carry their SQLSTATE; its InterfaceError means the connection is
    closed or was never made."""
    code = getattr(exc, "sqlstate", None)
    if isinstance(code, str) and code:
        return unavailable if code.startswith(UNAVAILABLE_SQLSTATE_CLASSES) else None
    if any(cls.__name__ == "InterfaceError" for cls in type(exc).__mro__):
        return unavailable
    return None


def database_error(exc: BaseException) -> ApiError | None:
    """503 for a database that cannot be reached or a pool with no free connection.

    Anything else from the database (a constraint violation, bad SQL, a deadlock) stays a
    bug: None, so the service answers 500 and logs it.
    """
    # asyncio's TimeoutError (an OSError): a raw pool's acquire(timeout=) ran out.
    if isinstance(exc, sa_exc.TimeoutError | TimeoutError):
        return ApiError(503, "pool_timeout", "no database connection free within the pool timeout")
    unavailable = ApiError(503, "database_unavailable", "the database cannot be reached")
    if isinstance(exc, OSError):
        return unavailable
    if not isinstance(exc, sa_exc.DBAPIError):
        return _raw_driver_error(exc, unavailable)
    if exc.connection_invalidated:
        return ApiError(503, "database_unavailable", "the database connection was lost")
    code = _sqlstate(exc)
    if code is not None:
        return unavailable if code.startswith(UNAVAILABLE_SQLSTATE_CLASSES) else None
    # No SQLSTATE: the driver lost or never had a connection (refused, reset, closed).
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return unavailable
    return None
