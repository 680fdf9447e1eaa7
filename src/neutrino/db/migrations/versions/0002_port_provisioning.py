"""per-role port provisioning (the firewall role's provisioning block)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 21:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('port_provisioning',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_port_provisioning_port_id_ports'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'entity', name=op.f('pk_port_provisioning'))
    )


def downgrade() -> None:
    op.drop_table('port_provisioning')
