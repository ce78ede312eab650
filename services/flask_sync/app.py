"""Flask app factory. The engine is made here, per process, never at import time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from services.common import edge, instrument, queries
from services.common.errors import MAX_BODY_BYTES, ApiError, database_error, http_error
from services.common.schemas import (
    HealthOut,
    OrderOut,
    OrderPageOut,
    OrderSummaryOut,
    UserOut,
    to_json,
)
from services.common.settings import ServiceSettings
from services.common.validation import (
    parse_id,
    parse_order_create,
    parse_order_page,
    query_pairs,
)


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def _path() -> str:
    """The path as sent, percent-decoded as UTF-8 (werkzeug's request.path drops the leading
    slashes of //users/1; Starlette's keeps them)."""
    return request.environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")


def _read_body() -> bytes:
    try:
        return request.get_data(cache=False)
    except HTTPException:
        raise  # 413 over MAX_CONTENT_LENGTH
    except Exception as exc:
        # The server could not read the body it was sent (gunicorn: a bad chunk size, a
        # connection closed before Content-Length bytes): the client's fault, not a 500.
        raise edge.bad_request() from exc


class RequestGuard:
    """WSGI middleware applying services/common/edge.py's limits before Flask routes (and
    outside the cost headers, as uvicorn's guard is). gunicorn counts the header lines."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = [(k, v) for k, v in environ.items() if k.startswith("HTTP_")]
        target = environ.get("RAW_URI", "").encode("latin-1")
        version = environ.get("SERVER_PROTOCOL", "").removeprefix("HTTP/")
        method = environ["REQUEST_METHOD"]
        error = edge.refusal(method, version, target, headers, header_count=None)
        if error is None:
            # No WebSocket here, so an Upgrade header is ignored (RFC 9110 7.8 allows it), as
            # uvicorn does with --ws none; werkzeug would answer it 400 on an HTTP route.
            environ.pop("HTTP_UPGRADE", None)
            return self.app(environ, start_response)
        # werkzeug's Response leaves the body out for HEAD.
        return _json(error.body(), error.status)(environ, start_response)


class ProfiledSession(Session):
    """Each execute, scalars and scalar (the sync session's scalars does not go through its
    execute) and each flush (the commit's writes) timed whole, beside the driver time the
    cursor events see, as the async service's session does (instrument.orm_call)."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        with instrument.orm_call():
            return super().execute(*args, **kwargs)

    def scalars(self, *args: Any, **kwargs: Any) -> Any:
        with instrument.orm_call():
            return super().scalars(*args, **kwargs)

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        with instrument.orm_call():
            return super().scalar(*args, **kwargs)

    def flush(self, *args: Any, **kwargs: Any) -> None:
        with instrument.orm_call():
            super().flush(*args, **kwargs)


def create_app(settings: ServiceSettings | None = None) -> Flask:
    """A Flask app bound to its own engine and pool."""
    settings = settings or ServiceSettings()  # type: ignore[call-arg]
    engine = create_engine(
        settings.url_for("psycopg2"),
        connect_args={"application_name": settings.service_name},
        **settings.engine_kwargs(),
    )
    instrument.install(engine)
    make_session = sessionmaker(
        engine, class_=ProfiledSession, expire_on_commit=settings.expire_on_commit
    )

    app = Flask(__name__, static_folder=None)  # no /static route: the contract's routes only
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # The contract's routes, before any is added: OPTIONS is a 405 like any method a route
    # does not take, and /users//1 is no route (werkzeug would merge the slashes).
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False
    app.wsgi_app = RequestGuard(app.wsgi_app)  # type: ignore[method-assign]
    app.extensions["loadlab_engine"] = engine

    @app.before_request
    def _start_measuring() -> None:
        g.cost_token = instrument.start()

    @app.before_request
    def _no_leading_empty_segment() -> None:
        # werkzeug strips a path's leading slashes before it matches (merge_slashes or not),
        # so //users/1 would be /users/1 here and no route at all in FastAPI.
        if _path().startswith("//"):
            raise NotFound()

    @app.after_request
    def _send_cost(response: Response) -> Response:
        token = g.pop("cost_token", None)
        if token is not None:
            response.headers.update(instrument.headers())
            instrument.stop(token)
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return _json(exc.body(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        error = http_error(exc.code or 500, request.method, _path())
        response = _json(error.body(), error.status)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        error = database_error(exc)
        if error is None:
            raise exc  # a bug: let Flask log it and answer 500
        return _json(error.body(), error.status)

    @app.get("/healthz")
    def healthz() -> Response:
        with engine.connect() as conn:
            conn.execute(queries.PING)
        return _json(to_json(HealthOut(status="ok")))

    @app.get("/users/<user_id>")
    def get_user(user_id: str) -> Response:
        uid = parse_id(user_id, "user id")
        with make_session() as session:
            user = session.scalars(queries.user_by_id(uid)).one_or_none()
            if user is None:
                raise queries.missing_user(uid)
            return _json(to_json(UserOut.model_validate(user)))

    @app.post("/users/<user_id>/visit")
    def visit_user(user_id: str) -> Response:
        uid = parse_id(user_id, "user id")
        with make_session() as session:
            with session.begin():
                user = session.scalars(queries.user_for_visit(uid)).one_or_none()
                if user is None:
                    raise queries.missing_user(uid)
                if settings.nested_session:  # the deadlock pattern (ServiceSettings)
                    with make_session() as nested:
                        nested.execute(queries.PING)
                queries.visit(user)
            return _json(to_json(UserOut.model_validate(user)))

    @app.get("/orders/<order_id>")
    def get_order(order_id: str) -> Response:
        oid = parse_id(order_id, "order id")
        with make_session() as session:
            order = session.scalars(queries.order_with_relations(oid)).unique().one_or_none()
            if order is None:
                raise queries.missing_order(oid)
            return _json(to_json(OrderOut.model_validate(order)))

    @app.get("/orders")
    def list_orders() -> Response:
        page = parse_order_page(query_pairs(request.query_string))
        with make_session() as session:
            orders = session.scalars(queries.order_page(page)).all()
            body = OrderPageOut(
                orders=[OrderSummaryOut.model_validate(o) for o in orders],
                next_after_id=queries.next_after_id(orders, page.limit),
            )
            return _json(to_json(body))

    @app.post("/orders")
    def create_order() -> Response:
        data = parse_order_create(_read_body())
        with make_session() as session:
            with session.begin():
                customer = session.scalars(queries.customer_by_id(data.customer_id)).one_or_none()
                products = session.scalars(
                    queries.products_by_ids([item.product_id for item in data.items])
                ).all()
                order = queries.build_order(data, customer, products)
                session.add(order)
            return _json(to_json(OrderOut.model_validate(order)), 201)

    return app
