"""console: parcel area indexes carry deleted_at and area_m2

Why: the console's county overview and certificate candidates count every village's and farm
park's live parcels and sum their area (and the overview counts the county's live parcels). With
indexes on the area code alone each of those read 100,000 table rows for ``deleted_at`` and
``area_m2``; these read the index alone. Each replaces the index it extends (same leading
columns), so lookups by village, farm park or county keep theirs and writes keep the same count.

Revision ID: c0a5e1d2f416
Revises: 7a3c5e9b2d14
Create Date: 2026-12-05 01:30:00

"""
from alembic import op

revision = 'c0a5e1d2f416'
down_revision = '7a3c5e9b2d14'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_parcels_county_village', table_name='parcels')
    op.drop_index('ix_parcels_village_code', table_name='parcels')
    op.drop_index('ix_parcels_farm_park_code', table_name='parcels')
    op.create_index('ix_parcels_county_village_live', 'parcels', ['county_code', 'village_code', 'deleted_at'])
    op.create_index('ix_parcels_village_live', 'parcels', ['village_code', 'deleted_at', 'area_m2'])
    op.create_index('ix_parcels_farm_park_live', 'parcels', ['farm_park_code', 'deleted_at', 'area_m2'])


def downgrade():
    op.drop_index('ix_parcels_farm_park_live', table_name='parcels')
    op.drop_index('ix_parcels_village_live', table_name='parcels')
    op.drop_index('ix_parcels_county_village_live', table_name='parcels')
    op.create_index('ix_parcels_farm_park_code', 'parcels', ['farm_park_code'])
    op.create_index('ix_parcels_village_code', 'parcels', ['village_code'])
    op.create_index('ix_parcels_county_village', 'parcels', ['county_code', 'village_code'])
