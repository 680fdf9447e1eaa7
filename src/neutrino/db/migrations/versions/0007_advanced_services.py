"""advanced services: flavors and service profiles (flavors, l3-flavors), metering labels and rules
(metering, metering_source_and_destination_fields), network logs (logging), local IPs (local_ip),
NDP proxies (l3-ndp-proxy, l3-ext-ndp-proxy), QoS policies of floating IPs and router gateways
(qos-fip, qos-gateway-ip), default statefulness of security groups
(security-groups-default-statefulness)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:36:12
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flavors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=1024), nullable=False),
    sa.Column('service_type', sa.String(length=36), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flavors'))
    )
    op.create_table('logs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('resource_type', sa.String(length=36), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=True),
    sa.Column('target_id', sa.String(length=36), nullable=True),
    sa.Column('event', sa.String(length=255), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logs'))
    )
    with op.batch_alter_table('logs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logs_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logs_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logs_target_id'), ['target_id'], unique=False)

    op.create_table('meteringlabels',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=1024), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meteringlabels'))
    )
    with op.batch_alter_table('meteringlabels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meteringlabels_project_id'), ['project_id'], unique=False)

    op.create_table('serviceprofiles',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=1024), nullable=False),
    sa.Column('driver', sa.String(length=1024), nullable=False),
    sa.Column('metainfo', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_serviceprofiles'))
    )
    op.create_table('sg_default_statefulness',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('stateful', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sg_default_statefulness')),
    sa.UniqueConstraint('project_id', name=op.f('uq_sg_default_statefulness_project_id'))
    )
    op.create_table('flavorserviceprofilebindings',
    sa.Column('flavor_id', sa.String(length=36), nullable=False),
    sa.Column('service_profile_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['flavors.id'], name=op.f('fk_flavorserviceprofilebindings_flavor_id_flavors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_profile_id'], ['serviceprofiles.id'], name=op.f('fk_flavorserviceprofilebindings_service_profile_id_serviceprofiles')),
    sa.PrimaryKeyConstraint('flavor_id', 'service_profile_id', name=op.f('pk_flavorserviceprofilebindings'))
    )
    with op.batch_alter_table('flavorserviceprofilebindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flavorserviceprofilebindings_service_profile_id'), ['service_profile_id'], unique=False)

    op.create_table('meteringlabelrules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('metering_label_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('source_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('destination_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['metering_label_id'], ['meteringlabels.id'], name=op.f('fk_meteringlabelrules_metering_label_id_meteringlabels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meteringlabelrules'))
    )
    with op.batch_alter_table('meteringlabelrules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meteringlabelrules_metering_label_id'), ['metering_label_id'], unique=False)

    op.create_table('local_ips',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('local_port_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('local_ip_address', sa.String(length=64), nullable=False),
    sa.Column('ip_mode', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['local_port_id'], ['ports.id'], name=op.f('fk_local_ips_local_port_id_ports')),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_local_ips_network_id_networks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_local_ips'))
    )
    with op.batch_alter_table('local_ips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_local_ips_local_port_id'), ['local_port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_local_ips_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_local_ips_project_id'), ['project_id'], unique=False)

    op.create_table('local_ip_associations',
    sa.Column('local_ip_id', sa.String(length=36), nullable=False),
    sa.Column('fixed_port_id', sa.String(length=36), nullable=False),
    sa.Column('fixed_ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['fixed_port_id'], ['ports.id'], name=op.f('fk_local_ip_associations_fixed_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['local_ip_id'], ['local_ips.id'], name=op.f('fk_local_ip_associations_local_ip_id_local_ips'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('local_ip_id', 'fixed_port_id', name=op.f('pk_local_ip_associations')),
    sa.UniqueConstraint('fixed_port_id', 'fixed_ip', name=op.f('uq_local_ip_associations_fixed_port_id_fixed_ip'))
    )
    with op.batch_alter_table('local_ip_associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_local_ip_associations_fixed_port_id'), ['fixed_port_id'], unique=False)

    op.create_table('ndp_proxies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_ndp_proxies_port_id_ports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_ndp_proxies_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ndp_proxies')),
    sa.UniqueConstraint('router_id', 'ip_address', name=op.f('uq_ndp_proxies_router_id_ip_address'))
    )
    with op.batch_alter_table('ndp_proxies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ndp_proxies_port_id'), ['port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ndp_proxies_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ndp_proxies_router_id'), ['router_id'], unique=False)

    with op.batch_alter_table('floatingips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qos_policy_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_floatingips_qos_policy_id'), ['qos_policy_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_floatingips_qos_policy_id_qos_policies'), 'qos_policies', ['qos_policy_id'], ['id'])

    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flavor_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('qos_policy_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('enable_ndp_proxy', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_routers_flavor_id'), ['flavor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routers_qos_policy_id'), ['qos_policy_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_routers_flavor_id_flavors'), 'flavors', ['flavor_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_routers_qos_policy_id_qos_policies'), 'qos_policies', ['qos_policy_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_routers_qos_policy_id_qos_policies'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_routers_flavor_id_flavors'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_routers_qos_policy_id'))
        batch_op.drop_index(batch_op.f('ix_routers_flavor_id'))
        batch_op.drop_column('enable_ndp_proxy')
        batch_op.drop_column('qos_policy_id')
        batch_op.drop_column('flavor_id')

    with op.batch_alter_table('floatingips', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_floatingips_qos_policy_id_qos_policies'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_floatingips_qos_policy_id'))
        batch_op.drop_column('qos_policy_id')

    op.drop_table('ndp_proxies')
    op.drop_table('local_ip_associations')
    op.drop_table('local_ips')
    op.drop_table('meteringlabelrules')
    op.drop_table('flavorserviceprofilebindings')
    op.drop_table('sg_default_statefulness')
    op.drop_table('serviceprofiles')
    op.drop_table('meteringlabels')
    op.drop_table('logs')
    op.drop_table('flavors')
