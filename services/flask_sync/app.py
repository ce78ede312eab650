"""Flask app factory. The engine is made here, per process, never at import time."""

from __future__ import annotations

from flask import Flask, Response, g, request
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException

from services.common import instrument, queries
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
)


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def create_app(settings: ServiceSettings | None = None) -> Flask:
    """A Flask app bound to its own engine and pool."""
    settings = settings or ServiceSettings()  # type: ignore[call-arg]
    engine = create_engine(settings.url_for("psycopg2"), **settings.engine_kwargs())
    instrument.install(engine)
    make_session = sessionmaker(engine, expire_on_commit=settings.expire_on_commit)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["loadlab_engine"] = engine

    @app.before_request
    def _start_measuring() -> None:
        g.cost_token = instrument.start()

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
        error = http_error(exc.code or 500, request.method, request.path)
        return _json(error.body(), error.status)

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
        page = parse_order_page(request.args.items(multi=True))
        with make_session() as session:
            orders = session.scalars(queries.order_page(page)).all()
            body = OrderPageOut(
                orders=[OrderSummaryOut.model_validate(o) for o in orders],
                next_after_id=queries.next_after_id(orders, page.limit),
            )
            return _json(to_json(body))

    @app.post("/orders")
    def create_order() -> Response:
        data = parse_order_create(request.get_data(cache=False))
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
