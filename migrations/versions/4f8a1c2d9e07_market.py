"""积分超市: items, orders, order events and stock adjustments; ledger entries may come from an order.

Revision ID: 4f8a1c2d9e07
Revises: 9e4f2b7c1d60
Create Date: 2026-12-04 21:20:00
"""
import sqlalchemy as sa
from alembic import op

import points_service.db
from points_service.models.append_only import append_only_ddl

revision = '4f8a1c2d9e07'
down_revision = '9e4f2b7c1d60'
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("market_order_events", "market_stock_adjustments")
OLD_SOURCES = ("checkin", "record", "report", "job", "admin")
NEW_SOURCES = (*OLD_SOURCES, "order")
ORDER_STATES = ("placed", "picked_up", "cancelled", "expired")
ENTRY_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _state(name: str) -> sa.Enum:
    return sa.Enum(*ORDER_STATES, name=name, native_enum=False, create_constraint=True, length=16)


def _source_types(values) -> None:
    """Swap the CHECK of ledger_entries.source_type. SQLite rebuilds the table, which drops its triggers."""
    dialect = op.get_bind().dialect.name
    check = "source_type IN (" + ", ".join(f"'{value}'" for value in values) + ")"
    if dialect == "postgresql":
        op.drop_constraint(op.f("ck_ledger_entries_source_type"), "ledger_entries", type_="check")
        op.create_check_constraint("source_type", "ledger_entries", check)
        return
    with op.batch_alter_table("ledger_entries", recreate="always") as batch_op:
        batch_op.drop_constraint(op.f("ck_ledger_entries_source_type"), type_="check")
        batch_op.create_check_constraint("source_type", check)
    for statement in append_only_ddl("ledger_entries", dialect):
        op.execute(statement)


def upgrade():
    _source_types(NEW_SOURCES)
    op.create_table('market_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('picture', sa.String(length=80), nullable=True),
    sa.Column('price', points_service.db.Points(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=True),
    sa.Column('sold', sa.Integer(), nullable=False),
    sa.Column('limit_per_member', sa.Integer(), nullable=True),
    sa.Column('limit_period', sa.Enum('month', 'quarter', 'year', name='limit_period', native_enum=False,
                                      create_constraint=True, length=8), nullable=False),
    sa.Column('visible_from', points_service.db.UTCDateTime(), nullable=True),
    sa.Column('visible_until', points_service.db.UTCDateTime(), nullable=True),
    sa.Column('on_shelf', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', points_service.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('stock IS NULL OR stock >= 0', name=op.f('ck_market_items_stock_not_negative')),
    sa.CheckConstraint('price > 0', name=op.f('ck_market_items_price_positive')),
    sa.CheckConstraint('sold >= 0', name=op.f('ck_market_items_sold_not_negative')),
    sa.CheckConstraint('limit_per_member IS NULL OR limit_per_member >= 1', name=op.f('ck_market_items_limit_positive')),
    sa.CheckConstraint('visible_until IS NULL OR visible_from IS NULL OR visible_until > visible_from',
                       name=op.f('ck_market_items_visible_window')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_market_items_created_by_id_users')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_market_items_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_items'))
    )
    op.create_index(op.f('ix_market_items_region_id'), 'market_items', ['region_id'], unique=False)
    op.create_table('market_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('points', points_service.db.Points(), nullable=False),
    sa.Column('state', _state('state'), nullable=False),
    sa.Column('pickup_code', sa.String(length=8), nullable=False),
    sa.Column('open_code', sa.String(length=8), nullable=True),
    sa.Column('limit_period_key', sa.String(length=12), nullable=False),
    sa.Column('month_key', sa.String(length=12), nullable=False),
    sa.Column('placed_at', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('pickup_deadline', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', points_service.db.UTCDateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('close_reason', sa.String(length=200), nullable=False),
    sa.Column('redemption_entry_id', ENTRY_ID, nullable=True),
    sa.Column('refund_entry_id', ENTRY_ID, nullable=True),
    sa.CheckConstraint('quantity >= 1', name=op.f('ck_market_orders_quantity_positive')),
    sa.CheckConstraint('points > 0', name=op.f('ck_market_orders_points_positive')),
    sa.CheckConstraint("(state = 'placed') = (open_code IS NOT NULL)",
                       name=op.f('ck_market_orders_open_code_while_placed')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_market_orders_closed_by_id_users')),
    sa.ForeignKeyConstraint(['community_id'], ['regions.id'], name=op.f('fk_market_orders_community_id_regions')),
    sa.ForeignKeyConstraint(['item_id'], ['market_items.id'], name=op.f('fk_market_orders_item_id_market_items')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_market_orders_member_id_members')),
    sa.ForeignKeyConstraint(['redemption_entry_id'], ['ledger_entries.id'],
                            name=op.f('fk_market_orders_redemption_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['refund_entry_id'], ['ledger_entries.id'],
                            name=op.f('fk_market_orders_refund_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_market_orders_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_orders')),
    sa.UniqueConstraint('member_id', 'request_key', name='uq_market_orders_member_request'),
    sa.UniqueConstraint('open_code', name=op.f('uq_market_orders_open_code')),
    sa.UniqueConstraint('redemption_entry_id', name=op.f('uq_market_orders_redemption_entry_id')),
    sa.UniqueConstraint('refund_entry_id', name=op.f('uq_market_orders_refund_entry_id'))
    )
    op.create_index(op.f('ix_market_orders_item_id'), 'market_orders', ['item_id'], unique=False)
    op.create_index(op.f('ix_market_orders_community_id'), 'market_orders', ['community_id'], unique=False)
    op.create_index('ix_market_orders_member_item', 'market_orders', ['member_id', 'item_id', 'limit_period_key'],
                    unique=False)
    op.create_index('ix_market_orders_state_deadline', 'market_orders', ['state', 'pickup_deadline'], unique=False)
    op.create_table('market_order_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('from_state', _state('from_state'), nullable=True),
    sa.Column('to_state', _state('to_state'), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('at', points_service.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_market_order_events_actor_id_users')),
    sa.ForeignKeyConstraint(['order_id'], ['market_orders.id'],
                            name=op.f('fk_market_order_events_order_id_market_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_order_events'))
    )
    op.create_index(op.f('ix_market_order_events_order_id'), 'market_order_events', ['order_id'], unique=False)
    op.create_table('market_stock_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('stock_after', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('at', points_service.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_market_stock_adjustments_actor_id_users')),
    sa.ForeignKeyConstraint(['item_id'], ['market_items.id'],
                            name=op.f('fk_market_stock_adjustments_item_id_market_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_stock_adjustments'))
    )
    op.create_index(op.f('ix_market_stock_adjustments_item_id'), 'market_stock_adjustments', ['item_id'], unique=False)
    for table in APPEND_ONLY_TABLES:
        for statement in append_only_ddl(table, op.get_bind().dialect.name):
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in ("market_stock_adjustments", "market_order_events", "market_orders", "market_items"):
        op.drop_table(table)
    if dialect == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    _source_types(OLD_SOURCES)
