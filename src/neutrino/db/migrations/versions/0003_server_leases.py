"""server leases (background jobs run in one server process across every host)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 22:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('server_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_server_leases'))
    )


def downgrade() -> None:
    op.drop_table('server_leases')
