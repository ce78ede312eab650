"""The statements both services execute, and the pure steps around them.

Each service only adds the I/O (a plain call or an `await`), so both run the same SQL and the
same number of statements per endpoint; `loadlab verify` checks that.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Select, select, text
from sqlalchemy.orm import joinedload

from services.common.errors import ApiError
from services.common.models import Customer, Order, OrderItem, Product, User
from services.common.schemas import OrderCreateIn
from services.common.validation import OrderPageQuery

PING = text("SELECT 1")


def user_by_id(user_id: int) -> Select[User]:
    return select(User).where(User.id == user_id)


def user_for_visit(user_id: int) -> Select[User]:
    # The row lock makes the read-modify-write in Python safe: concurrent visits to one user
    # queue on the lock instead of overwriting each other's increment.
    return select(User).where(User.id == user_id).with_for_update()


def order_with_relations(order_id: int) -> Select[Order]:
    # Three relations (customer, items, each item's product) in one joined SELECT.
    return (
        select(Order)
        .where(Order.id == order_id)
        .options(
            joinedload(Order.customer),
            joinedload(Order.items).joinedload(OrderItem.product),
        )
    )


def order_page(query: OrderPageQuery) -> Select[Order]:
    stmt = select(Order).options(joinedload(Order.customer)).where(Order.id > query.after_id)
    if query.status is not None:
        stmt = stmt.where(Order.status == query.status)
    return stmt.order_by(Order.id).limit(query.limit)


def next_after_id(orders: Sequence[Order], limit: int) -> int | None:
    """Keyset cursor for the next page, None on the last one."""
    return orders[-1].id if len(orders) == limit else None


def customer_by_id(customer_id: int) -> Select[Customer]:
    return select(Customer).where(Customer.id == customer_id)


def products_by_ids(product_ids: Sequence[int]) -> Select[Product]:
    return select(Product).where(Product.id.in_(product_ids))


def missing_user(user_id: int) -> ApiError:
    return ApiError(404, "not_found", f"user {user_id} does not exist")


def missing_order(order_id: int) -> ApiError:
    return ApiError(404, "not_found", f"order {order_id} does not exist")


def visit(user: User) -> None:
    """The headline write: one more visit, seen now."""
    user.visits += 1
    user.last_seen = datetime.now(UTC)


def build_order(
    data: OrderCreateIn, customer: Customer | None, products: Sequence[Product]
) -> Order:
    """A new order with its items and server-computed total, or a 422 naming what is unknown."""
    if customer is None:
        raise ApiError(422, "unknown_reference", f"customer {data.customer_id} does not exist")
    by_id = {product.id: product for product in products}
    unknown = [item.product_id for item in data.items if item.product_id not in by_id]
    if unknown:
        raise ApiError(422, "unknown_reference", f"product {unknown[0]} does not exist")
    items = [
        OrderItem(
            product=by_id[item.product_id],
            quantity=item.quantity,
            unit_price_cents=by_id[item.product_id].price_cents,
        )
        for item in data.items
    ]
    return Order(
        customer=customer,
        status=data.status,
        total_cents=sum(item.quantity * item.unit_price_cents for item in items),
        created_at=datetime.now(UTC),
        items=items,
    )
