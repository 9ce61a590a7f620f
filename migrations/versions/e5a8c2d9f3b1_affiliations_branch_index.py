"""Affiliations by branch: an organization's members at past instants (its monthly members' points) are found
from the branch side.

Revision ID: e5a8c2d9f3b1
Revises: b7e3c1f04a92
Create Date: 2026-12-06 16:00:00
"""
from alembic import op

revision = 'e5a8c2d9f3b1'
down_revision = 'b7e3c1f04a92'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_affiliations_branch_id', 'affiliations', ['branch_id'], unique=False)


def downgrade():
    op.drop_index('ix_affiliations_branch_id', table_name='affiliations')
