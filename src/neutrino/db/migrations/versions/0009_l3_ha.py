"""L3 HA (l3-ha): per-project HA networks, VRRP router ids, per-agent HA ports and their states

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ha_router_networks',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ha_router_networks_network_id_networks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_ha_router_networks')),
    sa.UniqueConstraint('network_id', name=op.f('uq_ha_router_networks_network_id'))
    )
    op.create_table('ha_router_vrid_allocations',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('vr_id', sa.Integer(), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'],
                            name=op.f('fk_ha_router_vrid_allocations_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'],
                            name=op.f('fk_ha_router_vrid_allocations_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', 'vr_id', name=op.f('pk_ha_router_vrid_allocations')),
    sa.UniqueConstraint('router_id', name=op.f('uq_ha_router_vrid_allocations_router_id'))
    )
    op.create_table('ha_router_agent_port_bindings',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('l3_agent_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['l3_agent_id'], ['agents.id'],
                            name=op.f('fk_ha_router_agent_port_bindings_l3_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'],
                            name=op.f('fk_ha_router_agent_port_bindings_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'],
                            name=op.f('fk_ha_router_agent_port_bindings_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_ha_router_agent_port_bindings')),
    sa.UniqueConstraint('router_id', 'l3_agent_id', name=op.f('uq_ha_router_agent_port_bindings_router_id_l3_agent_id'))
    )
    op.create_index(op.f('ix_ha_router_agent_port_bindings_router_id'), 'ha_router_agent_port_bindings',
                    ['router_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ha_router_agent_port_bindings_router_id'), table_name='ha_router_agent_port_bindings')
    op.drop_table('ha_router_agent_port_bindings')
    op.drop_table('ha_router_vrid_allocations')
    op.drop_table('ha_router_networks')
