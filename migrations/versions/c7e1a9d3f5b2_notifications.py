"""Notifications: subscribe-message grants, the in-app inbox and the WeChat delivery outbox.

Revision ID: c7e1a9d3f5b2
Revises: b7e3f1a2c4d8
Create Date: 2026-12-06 09:11:10.652246

"""
import sqlalchemy as sa
from alembic import op

import points_service.db  # noqa: F401  (custom column types: UTCDateTime, Points)

# revision identifiers, used by Alembic.
revision = 'c7e1a9d3f5b2'
down_revision = 'b7e3f1a2c4d8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notification_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('template_key', sa.String(length=40), nullable=False),
    sa.Column('available', sa.Integer(), nullable=False),
    sa.Column('granted_total', sa.Integer(), nullable=False),
    sa.Column('last_granted_at', points_service.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint('available >= 0', name=op.f('ck_notification_grants_available_not_negative')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_notification_grants_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_grants')),
    sa.UniqueConstraint('member_id', 'template_key', name='uq_notification_grants_member_template')
    )
    op.create_table('notification_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('source_key', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('body', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=200), nullable=False),
    sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('read_at', points_service.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_notification_messages_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_messages')),
    sa.UniqueConstraint('source_key', 'member_id', name='uq_notification_messages_source_member')
    )
    with op.batch_alter_table('notification_messages', schema=None) as batch_op:
        batch_op.create_index('ix_notification_messages_member_created', ['member_id', 'id'], unique=False)
        batch_op.create_index('ix_notification_messages_member_unread', ['member_id', 'read_at'], unique=False)

    op.create_table('notification_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('template_key', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('page', sa.String(length=200), nullable=False),
    sa.Column('state', sa.Enum('pending', 'sending', 'sent', 'failed', 'permanent_failed', name='state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('lease_until', points_service.db.UTCDateTime(), nullable=True),
    sa.Column('duplicate_possible', sa.Boolean(), nullable=False),
    sa.Column('last_errcode', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=False),
    sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', points_service.db.UTCDateTime(), nullable=True),
    sa.Column('updated_at', points_service.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_notification_deliveries_attempts_not_negative')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_notification_deliveries_member_id_members')),
    sa.ForeignKeyConstraint(['message_id'], ['notification_messages.id'], name=op.f('fk_notification_deliveries_message_id_notification_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('message_id', name=op.f('uq_notification_deliveries_message_id'))
    )
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_deliveries_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_notification_deliveries_state_due', ['state', 'next_attempt_at'], unique=False)



def downgrade():
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_deliveries_state_due')
        batch_op.drop_index(batch_op.f('ix_notification_deliveries_member_id'))

    op.drop_table('notification_deliveries')
    with op.batch_alter_table('notification_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_messages_member_unread')
        batch_op.drop_index('ix_notification_messages_member_created')

    op.drop_table('notification_messages')
    op.drop_table('notification_grants')
