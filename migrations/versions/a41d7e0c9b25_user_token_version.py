"""A token version per account: access tokens carry it, and bumping it (logout, a revoked refresh family) makes
every access token issued before fail at once.

Revision ID: a41d7e0c9b25
Revises: a41c7e2d9b15
Create Date: 2026-12-04 21:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'a41d7e0c9b25'
down_revision = 'a41c7e2d9b15'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
