"""Orders: placing one (debit + stock in one transaction), pick-up, cancel by the member or an admin, and
the job that cancels what was not collected in time. The state machine (``rules.TRANSITIONS``)::

    placed ──pick up (admin of the item's scope or the member's community)──> picked_up
    placed ──cancel (the member; an admin with a reason)──> cancelled   (refunded)
    placed ──the pick-up window passes (job)──> expired                  (refunded)

Concurrency: an order locks the member's row first (the ledger's ``lock_subject``), so one member's orders
are judged one at a time against his balance, limits and ceiling; last before the commit, it reserves stock with
a conditional ``UPDATE ... SET stock = stock - n WHERE stock >= n`` (CHECK stock >= 0 behind it), so stock never
goes negative whatever the concurrency, and the item's row, which every order of it updates, is locked only for
the end of the transaction (an order the reservation refuses rolls back whole). Every transition is a
compare-and-set on ``state = 'placed'`` and writes a ``MarketOrderEvent``; a refund is the ledger reversal of the
order's redemption entry, which the database allows once. Refunded points keep their original expiry
(``ledger.settlement``: a reversal of a debit undoes the debit, it is not a new credit; what expired at a
month's end since the order expires in the refund's transaction).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from points_service.db import attach_written, commit_keeping, core_execute, db, insert_unless_exists, utcnow
from points_service.domain import notifications
from points_service.domain.access import Principal, allowed, authorize, nodes_in_scope
from points_service.domain.audit import audit
from points_service.domain.errors import ServiceError, ValidationFailed
from points_service.domain.ledger.credit import insert_entry, lock_subject
from points_service.domain.ledger.settlement import expire_refunded
from points_service.domain.market import errors
from points_service.domain.market.catalogue import find_offered
from points_service.domain.market.rules import (
    code_from_scan,
    limit_period_key,
    month_key,
    new_pickup_code,
    pickup_deadline,
    refusal,
)
from points_service.domain.market.standing import standing_for
from points_service.domain.periods import Period
from points_service.domain.policy import Policy, policy_in_force
from points_service.models import (
    EntryKind,
    LedgerEntry,
    LedgerName,
    MarketItem,
    MarketOrder,
    MarketOrderEvent,
    Member,
    OrderState,
    Region,
    Role,
    SourceType,
    SubjectType,
)
from points_service.transactions import column_values, end_transaction, insert_row

log = logging.getLogger(__name__)

REDEMPTION_ITEM = "market.redemption"
MAX_QUANTITY = 10
REFUSALS = {"limit": errors.LimitReached, "ceiling": errors.MonthlyCeilingReached,
            "balance": errors.InsufficientPoints}


@dataclass(frozen=True)
class OrderRequest:
    item_id: int
    quantity: int = 1
    request_key: str | None = None  # the Idempotency-Key: a retried order is the same order


def place_order(actor: Principal, request: OrderRequest, *, at: datetime | None = None) -> MarketOrder:
    authorize(actor, "market.order")
    if not 1 <= request.quantity <= MAX_QUANTITY:
        raise ValidationFailed({"quantity": [f"数量应为 1–{MAX_QUANTITY}"]})
    at = at or utcnow()
    try:
        member = lock_subject(SubjectType.MEMBER, actor.member_id)
        order = _existing(member.id, request.request_key) or _place(actor, member, request, at)
    except (ServiceError, IntegrityError):
        end_transaction(db.session())  # refused before writing (too few points, no stock): COMMIT, else ROLLBACK
        raise
    commit_keeping(order, order.item, order.member, order.community)  # the answer shows them as written
    return order


def _existing(member_id: int, request_key: str | None) -> MarketOrder | None:
    if request_key is None:
        return None
    return db.session.scalar(sa.select(MarketOrder).where(MarketOrder.member_id == member_id,
                                                          MarketOrder.request_key == request_key))


def _place(actor: Principal, member: Member, request: OrderRequest, at: datetime) -> MarketOrder:
    if not member.is_active:  # deactivated while this request waited for his lock: his orders were just closed
        raise errors.MemberInactive()
    item = find_offered(member, request.item_id, at)
    policy = policy_in_force(at)
    period_key = limit_period_key(at, item.limit_period)
    standing = standing_for(member.id, item, at)
    reason = refusal(item.price, request.quantity, item.limit_per_member, standing, policy.redemption)
    if reason is not None:
        raise REFUSALS[reason]()
    if item.stock is not None and item.stock < request.quantity:
        raise errors.OutOfStock()  # as read, before writing anything; the reservation below decides
    order = _insert_order(MarketOrder(
        item_id=item.id, member_id=member.id, community_id=member.community_id, user_id=actor.user_id,
        request_key=request.request_key, quantity=request.quantity, points=item.price * request.quantity,
        state=OrderState.PLACED, limit_period_key=period_key, month_key=month_key(at), placed_at=at,
        pickup_deadline=pickup_deadline(at, policy.redemption)))
    _link_redemption(order, insert_entry(_redemption_entry(order, item, policy, at)).id)
    _event(order, None, OrderState.PLACED, actor.user_id, "", at)
    # Last: every order of the item updates its row, which stays locked until the commit.
    _reserve_stock(item, request.quantity)
    return order


def _reserve_stock(item: MarketItem, quantity: int) -> None:
    """Take ``quantity`` units if there are that many (unlimited items only count sales); the item then holds
    the stock and sales the UPDATE left."""
    reserved = db.session.execute(
        sa.update(MarketItem).where(MarketItem.id == item.id,
                                    sa.or_(MarketItem.stock.is_(None), MarketItem.stock >= quantity))
        .values(stock=MarketItem.stock - quantity, sold=MarketItem.sold + quantity)
        .returning(MarketItem.stock, MarketItem.sold)
        .execution_options(synchronize_session=False)).first()
    if reserved is None:
        raise errors.OutOfStock()
    set_committed_value(item, "stock", reserved.stock)
    set_committed_value(item, "sold", reserved.sold)


def _release_stock(order: MarketOrder) -> None:
    db.session.execute(
        sa.update(MarketItem).where(MarketItem.id == order.item_id)
        .values(stock=MarketItem.stock + order.quantity, sold=MarketItem.sold - order.quantity)
        .execution_options(synchronize_session=False))


def _insert_order(order: MarketOrder, attempts: int = 5) -> MarketOrder:
    """Insert with a fresh pick-up code, drawing again on the rare clash with another open order's code. The
    INSERT skips a row that clashes on any unique key (no SAVEPOINT to roll back to, no round trips for one)."""
    for _ in range(attempts):
        order.pickup_code = order.open_code = new_pickup_code()
        order_id = insert_unless_exists(MarketOrder, column_values(order), None)
        if order_id is not None:
            order.id = order_id
            return attach_written(order)
        if _existing(order.member_id, order.request_key) is not None:
            raise errors.OrderInProgress()  # the member's row lock makes this a bug's symptom, not a race
    raise errors.PickupCodesExhausted()


def _redemption_entry(order: MarketOrder, item: MarketItem, policy: Policy, at: datetime) -> LedgerEntry:
    return LedgerEntry(
        subject_type=SubjectType.MEMBER, subject_id=order.member_id, ledger=LedgerName.REDEEMABLE,
        kind=EntryKind.REDEMPTION, item_code=REDEMPTION_ITEM, units=order.quantity, points=-order.points,
        points_requested=-order.points, occurred_at=at, credited_at=at, policy_version=policy.version,
        source_type=SourceType.ORDER, source_id=str(order.id), actor_id=order.user_id,
        reason=f"积分超市兑换：{item.name} × {order.quantity}"[:200], idempotency_key=f"redemption:order:{order.id}")


def _refund_entry(order: MarketOrder, actor_id: int | None, at: datetime) -> LedgerEntry:
    debit = db.session.get(LedgerEntry, order.redemption_entry_id)
    return LedgerEntry(
        subject_type=debit.subject_type, subject_id=debit.subject_id, ledger=debit.ledger, kind=EntryKind.REVERSAL,
        item_code=debit.item_code, units=debit.units, points=-debit.points, points_requested=-debit.points,
        occurred_at=debit.occurred_at, credited_at=at, policy_version=debit.policy_version,
        source_type=SourceType.ORDER, source_id=str(order.id), actor_id=actor_id,
        reason=f"积分超市退还：{order.item.name}（{_CLOSING[order.state]}）"[:200],
        idempotency_key=f"refund:order:{order.id}", reverses_id=debit.id, reverses_kind=debit.kind)


_CLOSING = {OrderState.CANCELLED: "已取消", OrderState.EXPIRED: "逾期未取货", OrderState.PICKED_UP: "已取货",
            OrderState.PLACED: "待取货"}


def _link_redemption(order: MarketOrder, entry_id: int) -> None:
    """The order names its debit (written after it: the entry's key names the order), as a Core UPDATE: the
    order path sends its statements without the unit of work's flush."""
    core_execute(_link_statement(), {"order_id": order.id, "entry_id": entry_id})
    set_committed_value(order, "redemption_entry_id", entry_id)


@functools.cache
def _link_statement() -> sa.Update:
    orders = MarketOrder.__table__
    return (sa.update(orders).where(orders.c.id == sa.bindparam("order_id"))
            .values(redemption_entry_id=sa.bindparam("entry_id")))


def _event(order: MarketOrder, from_state, to_state, actor_id: int | None, reason: str, at: datetime) -> None:
    insert_row(MarketOrderEvent, {"order_id": order.id, "from_state": from_state, "to_state": to_state,
                                  "actor_id": actor_id, "reason": reason, "at": at})
    notifications.order_moved(order, to_state, reason)


def _close(order: MarketOrder, to: OrderState, actor_id: int | None, reason: str, at: datetime) -> None:
    """Compare-and-set placed -> ``to``: of two closers exactly one wins, the other gets 409."""
    reason = reason[:200]  # the columns' length, which a deactivation's reason with its code's name prefixed passes
    moved = db.session.execute(
        sa.update(MarketOrder).where(MarketOrder.id == order.id, MarketOrder.state == OrderState.PLACED)
        .values(state=to, open_code=None, closed_at=at, closed_by_id=actor_id, close_reason=reason)
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        raise errors.OrderClosed()
    db.session.refresh(order)
    _event(order, OrderState.PLACED, to, actor_id, reason, at)


def _refund(order: MarketOrder, actor_id: int | None, at: datetime) -> None:
    """Stock back and the debit reversed; the points it had spent keep their original expiry, so what of them
    expired at a month's end since the order is written as expired in the same transaction."""
    _release_stock(order)
    refund = insert_entry(_refund_entry(order, actor_id, at))
    order.refund_entry_id = refund.id
    expire_refunded(refund, db.session.get(LedgerEntry, order.redemption_entry_id).credited_at)


def _closing(order: MarketOrder, to: OrderState, actor: Principal | None, reason: str, at: datetime | None):
    at = at or utcnow()
    actor_id = actor.user_id if actor else None
    try:
        lock_subject(SubjectType.MEMBER, order.member_id)  # the same lock order as placing: member, then item
        _close(order, to, actor_id, reason, at)
        if to != OrderState.PICKED_UP:
            _refund(order, actor_id, at)
    except ServiceError:
        db.session.rollback()
        raise
    return order


def cancel_own_order(actor: Principal, order_id: int, *, at: datetime | None = None) -> MarketOrder:
    authorize(actor, "market.order")
    order = db.session.get(MarketOrder, order_id)
    if order is None or order.member_id != actor.member_id:
        raise errors.OrderNotFound()
    _closing(order, OrderState.CANCELLED, actor, "党员取消", at)
    db.session.commit()
    return order


def cancel_by_admin(actor: Principal, order_id: int, reason: str, *, at: datetime | None = None) -> MarketOrder:
    order = db.session.get(MarketOrder, order_id)
    if order is None or not allowed(actor, "market.hand_over", order):
        raise errors.OrderNotFound()  # another scope's order is not leaked
    _closing(order, OrderState.CANCELLED, actor, reason, at)
    audit("market.order_cancel", actor=actor, target=order, detail={"reason": reason})
    db.session.commit()
    return order


def order_for_desk(actor: Principal, order_id: int) -> MarketOrder:
    """One order an admin may hand over or cancel (the console's order page); 404 for any other."""
    authorize(actor, "market.desk")
    order = db.session.get(MarketOrder, order_id)
    if order is None or not allowed(actor, "market.hand_over", order):
        raise errors.OrderNotFound()
    return order


def pick_up(actor: Principal, code: str, *, at: datetime | None = None) -> MarketOrder:
    """Hand the order with this open code over; 404 for a wrong code or one outside the admin's scope."""
    authorize(actor, "market.desk")
    order = db.session.scalar(sa.select(MarketOrder).where(MarketOrder.open_code == code_from_scan(code)))
    if order is None or not allowed(actor, "market.hand_over", order):
        raise errors.PickupCodeInvalid()
    _closing(order, OrderState.PICKED_UP, actor, "", at)
    audit("market.pickup", actor=actor, target=order, detail={"member_id": order.member_id})
    db.session.commit()
    return order


def cancel_open_orders(member_id: int, actor: Principal, reason: str, at: datetime) -> int:
    """Cancel and refund every order the member still has open, as his deactivation does (flushes only: the
    deactivation commits). The member is locked as placing an order locks him, so none is placed meanwhile."""
    lock_subject(SubjectType.MEMBER, member_id)
    # By item: each refund releases its item's stock (a row lock), so two members' deactivations whose orders
    # share items take those rows in one order.
    orders = db.session.scalars(sa.select(MarketOrder).where(
        MarketOrder.member_id == member_id, MarketOrder.state == OrderState.PLACED)
        .order_by(MarketOrder.item_id, MarketOrder.id)).all()
    for order in orders:
        _close(order, OrderState.CANCELLED, actor.user_id, reason, at)
        _refund(order, actor.user_id, at)
    return len(orders)


def expire_uncollected(period: Period, policy: Policy, job_id: str = "market_order_expiry") -> dict:
    """The job: every order still placed whose pick-up deadline passed by the period's end is expired and
    refunded, each in its own transaction (one failure never undoes the others; a re-run finds them closed).
    An order that fails is logged, counted in ``failed`` and left placed: the next day's run tries it again,
    and the orders after it are expired all the same."""
    ids = list(db.session.scalars(sa.select(MarketOrder.id).where(
        MarketOrder.state == OrderState.PLACED, MarketOrder.pickup_deadline <= period.end).order_by(MarketOrder.id)))
    counts = {"expired": 0, "failed": 0, "closed": 0}
    reason = f"超过 {policy.redemption.pickup_window_days} 天未取货"
    for order_id in ids:
        counts[_expire_one(order_id, reason, period.end)] += 1
        db.session.commit()  # also when it failed: the job's claim, written in this transaction, is kept
    return {"expired": counts["expired"], "failed": counts["failed"]}


def _expire_one(order_id: int, reason: str, at: datetime) -> str:
    """Expire and refund one order in a SAVEPOINT, so that its failure rolls back its own writes only (a
    ROLLBACK would also undo the job's claim while no order has been committed yet)."""
    order = db.session.get(MarketOrder, order_id)
    lock_subject(SubjectType.MEMBER, order.member_id)  # the same lock order as placing: member, then item
    try:
        with db.session.begin_nested():
            _close(order, OrderState.EXPIRED, None, reason, at)
            _refund(order, None, at)
    except errors.OrderClosed:
        return "closed"  # collected or cancelled meanwhile
    except SQLAlchemyError:
        log.exception("market order %s could not be expired", order_id)
        return "failed"
    return "expired"


def own_orders(actor: Principal, state: OrderState | None = None) -> sa.Select:
    authorize(actor, "market.order")
    statement = sa.select(MarketOrder).where(MarketOrder.member_id == actor.member_id)
    if state is not None:
        statement = statement.where(MarketOrder.state == state)
    return statement.order_by(MarketOrder.id.desc())


def order_queue(actor: Principal, state: OrderState | None = OrderState.PLACED) -> sa.Select:
    """Orders an admin may hand over: items of his scopes, or members of his communities; oldest first."""
    authorize(actor, "market.desk")
    statement = sa.select(MarketOrder).join(MarketItem, MarketItem.id == MarketOrder.item_id)
    if not actor.is_admin:
        regions = nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)
        statement = statement.where(sa.or_(MarketItem.region_id.in_(regions), MarketOrder.community_id.in_(regions)))
    if state is not None:
        statement = statement.where(MarketOrder.state == state)
    return statement.order_by(MarketOrder.id)


def open_order_count(member_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder).where(
        MarketOrder.member_id == member_id, MarketOrder.state == OrderState.PLACED))
