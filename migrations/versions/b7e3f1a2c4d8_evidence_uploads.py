"""Photo evidence uploads: who uploaded which stored file, so that only its owner may cite it in a self-report.

Revision ID: b7e3f1a2c4d8
Revises: a41d7e0c9b25
Create Date: 2026-12-06 09:30:00
"""
import sqlalchemy as sa
from alembic import op

import points_service.db

revision = 'b7e3f1a2c4d8'
down_revision = 'a41d7e0c9b25'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('evidence_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=20), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_evidence_uploads_size_positive')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_evidence_uploads_member_id_members')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_evidence_uploads_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_uploads')),
    sa.UniqueConstraint('name', name=op.f('uq_evidence_uploads_name'))
    )
    op.create_index('ix_evidence_uploads_user_created', 'evidence_uploads', ['user_id', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_evidence_uploads_user_created', table_name='evidence_uploads')
    op.drop_table('evidence_uploads')
