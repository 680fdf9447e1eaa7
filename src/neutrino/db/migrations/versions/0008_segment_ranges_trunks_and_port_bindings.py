"""network segment ranges (network-segment-range: the admin's ranges tenant segments are allocated
from; the configured ranges are written as default rows by the servers); trunks and their subports
(trunk); ports' inactive bindings (binding-extended)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 00:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _standard() -> list[sa.Column]:
    return [sa.Column('id', sa.String(length=36), nullable=False),
            sa.Column('project_id', sa.String(length=255), nullable=False),
            sa.Column('name', sa.String(length=255), nullable=False),
            sa.Column('description', sa.String(length=255), nullable=False),
            sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('updated_at', sa.DateTime(), nullable=False),
            sa.Column('revision_number', sa.Integer(), nullable=False)]


def upgrade() -> None:
    op.create_table('network_segment_ranges',
    *_standard(),
    sa.Column('default', sa.Boolean(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=False),
    sa.Column('minimum', sa.Integer(), nullable=False),
    sa.Column('maximum', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_segment_ranges'))
    )
    op.create_index('ix_network_segment_ranges_type', 'network_segment_ranges',
                    ['network_type', 'physical_network'], unique=False)
    op.create_index(op.f('ix_network_segment_ranges_project_id'), 'network_segment_ranges', ['project_id'],
                    unique=False)
    op.create_table('trunks',
    *_standard(),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_trunks_port_id_ports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trunks')),
    sa.UniqueConstraint('port_id', name=op.f('uq_trunks_port_id'))
    )
    op.create_index(op.f('ix_trunks_project_id'), 'trunks', ['project_id'], unique=False)
    op.create_table('subports',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('trunk_id', sa.String(length=36), nullable=False),
    sa.Column('segmentation_type', sa.String(length=32), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_subports_port_id_ports')),
    sa.ForeignKeyConstraint(['trunk_id'], ['trunks.id'], name=op.f('fk_subports_trunk_id_trunks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_subports')),
    sa.UniqueConstraint('trunk_id', 'segmentation_type', 'segmentation_id',
                        name=op.f('uq_subports_trunk_id_segmentation_type_segmentation_id'))
    )
    op.create_index(op.f('ix_subports_trunk_id'), 'subports', ['trunk_id'], unique=False)
    op.create_table('port_bindings',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('vnic_type', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('vif_type', sa.String(length=64), nullable=False),
    sa.Column('vif_details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_port_bindings_port_id_ports'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'host', name=op.f('pk_port_bindings'))
    )


def downgrade() -> None:
    op.drop_table('port_bindings')
    op.drop_index(op.f('ix_subports_trunk_id'), table_name='subports')
    op.drop_table('subports')
    op.drop_index(op.f('ix_trunks_project_id'), table_name='trunks')
    op.drop_table('trunks')
    op.drop_index(op.f('ix_network_segment_ranges_project_id'), table_name='network_segment_ranges')
    op.drop_index('ix_network_segment_ranges_type', table_name='network_segment_ranges')
    op.drop_table('network_segment_ranges')
