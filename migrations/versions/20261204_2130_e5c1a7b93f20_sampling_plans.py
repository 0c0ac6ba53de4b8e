"""sampling_plans

Why: an official sends "where to sample next" to a device as planned points (DESIGN §4.6,
change kind ``planned_point`` in the pull). ``sampling_plans`` keeps every list sent (a new list
replaces, never overwrites); ``planned_points`` one row per parcel with its suggested point and a
change ``seq`` for the pull; a sample on the parcel closes it.

Revision ID: e5c1a7b93f20
Revises: 3d7a61c0b2e9
Create Date: 2026-12-04 21:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e5c1a7b93f20'
down_revision = '3d7a61c0b2e9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sampling_plans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device_pk', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('county_code', sa.String(length=12), nullable=True),
        sa.Column('parcels', sa.JSON(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['device_pk'], ['devices.id'], name=op.f('fk_sampling_plans_device_pk_devices')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sampling_plans')),
        sa.UniqueConstraint('device_pk', 'number', name=op.f('uq_sampling_plans_device_pk_number')),
    )
    op.create_index(op.f('ix_sampling_plans_device_pk'), 'sampling_plans', ['device_pk'])
    op.create_index(op.f('ix_sampling_plans_county_code'), 'sampling_plans', ['county_code'])
    op.create_table(
        'planned_points',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('device_pk', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('parcel_code', sa.String(length=64), nullable=False),
        sa.Column('village_code', sa.String(length=12), nullable=True),
        sa.Column('county_code', sa.String(length=12), nullable=True),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=False),
        sa.Column('reason', sa.String(length=24), nullable=False),
        sa.Column('sigma', sa.JSON(), nullable=True),
        sa.Column('nearest_sample_m', sa.Float(), nullable=True),
        sa.Column('prior_samples', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('closed_by_sample', sa.String(length=36), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['device_pk'], ['devices.id'], name=op.f('fk_planned_points_device_pk_devices')),
        sa.ForeignKeyConstraint(['plan_id'], ['sampling_plans.id'], name=op.f('fk_planned_points_plan_id_sampling_plans')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_planned_points')),
        sa.UniqueConstraint('plan_id', 'parcel_code', name=op.f('uq_planned_points_plan_id_parcel_code')),
    )
    op.create_index('ix_planned_points_device_seq', 'planned_points', ['device_pk', 'seq'])
    op.create_index('ix_planned_points_parcel_status', 'planned_points', ['parcel_code', 'status'])
    op.create_index('ix_planned_points_lon_lat', 'planned_points', ['lon', 'lat'])


def downgrade():
    op.drop_index('ix_planned_points_lon_lat', table_name='planned_points')
    op.drop_index('ix_planned_points_parcel_status', table_name='planned_points')
    op.drop_index('ix_planned_points_device_seq', table_name='planned_points')
    op.drop_table('planned_points')
    op.drop_index(op.f('ix_sampling_plans_county_code'), table_name='sampling_plans')
    op.drop_index(op.f('ix_sampling_plans_device_pk'), table_name='sampling_plans')
    op.drop_table('sampling_plans')
