"""A refresh token names the token that took its place (``replaced_by``): a retry of a refresh within the grace
finds the successor it replaces there.

Revision ID: e9b3d6a4c1f7
Revises: d8f1b3e5a7c9
Create Date: 2026-12-08 00:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'e9b3d6a4c1f7'
down_revision = 'd8f1b3e5a7c9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("replaced_by", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("replaced_by")
