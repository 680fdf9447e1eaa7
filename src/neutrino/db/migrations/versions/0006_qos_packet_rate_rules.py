"""QoS packet rate rules (qos-pps, qos-pps-minimum): max_kpps and max_burst_kpps of packet_rate_limit
rules, min_kpps of minimum_packet_rate rules, as columns of qos_rules beside the bandwidth ones

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('qos_rules') as batch:
        batch.add_column(sa.Column('max_kpps', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('max_burst_kpps', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('min_kpps', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('qos_rules') as batch:
        batch.drop_column('min_kpps')
        batch.drop_column('max_burst_kpps')
        batch.drop_column('max_kpps')
