"""ports: NUMA affinity policy and device profile (port-numa-affinity-policy, port-device-profile);
default security group rules: the template new groups take their rules from
(security-groups-default-rules), seeded with Neutron's four legacy rules

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:30:00
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ports') as batch:
        batch.add_column(sa.Column('numa_affinity_policy', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('device_profile', sa.String(length=255), nullable=True))
    table = op.create_table('default_security_group_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=8), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('remote_address_group_id', sa.String(length=36), nullable=True),
    sa.Column('used_in_default_sg', sa.Boolean(), nullable=False),
    sa.Column('used_in_non_default_sg', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_default_security_group_rules'))
    )
    # What every group got before the template existed: all egress in any group; ingress from the
    # group's own members in a project's default group only.
    legacy = []
    for ethertype in ('IPv4', 'IPv6'):
        legacy.append({'direction': 'egress', 'ethertype': ethertype, 'remote_group_id': None,
                       'used_in_default_sg': True, 'used_in_non_default_sg': True,
                       'description': 'Legacy default SG rule for egress traffic'})
        legacy.append({'direction': 'ingress', 'ethertype': ethertype, 'remote_group_id': 'PARENT',
                       'used_in_default_sg': True, 'used_in_non_default_sg': False,
                       'description': 'Legacy default SG rule for ingress traffic'})
    op.bulk_insert(table, [{'id': str(uuid.uuid4()), 'protocol': None, 'port_range_min': None,
                            'port_range_max': None, 'remote_ip_prefix': None, 'remote_address_group_id': None,
                            **row} for row in legacy])


def downgrade() -> None:
    op.drop_table('default_security_group_rules')
    with op.batch_alter_table('ports') as batch:
        batch.drop_column('device_profile')
        batch.drop_column('numa_affinity_policy')
