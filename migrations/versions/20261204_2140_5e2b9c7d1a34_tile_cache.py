"""tile cache and the parcels' size index

Why: the vector tiles of a 1 M-parcel county (issue 15's speed targets). ``tile_cache`` keeps
rendered tiles by layer/z/x/y/scope with the data version they were built from
(``fieldsvc/tiles/cache.py``). ``ix_parcels_tile_size`` indexes the larger side of a parcel's
bounding box (degrees), the test by which a low-zoom tile leaves out parcels under its minimum size:
a county-wide tile then reads the few parcels big enough to draw instead of walking all of them in
the spatial index. The same expression on both engines (a CASE, which PostgreSQL and SQLite both
index), so the query matches it on either.

Revision ID: 5e2b9c7d1a34
Revises: e5c1a7b93f20
Create Date: 2026-12-04 21:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5e2b9c7d1a34'
down_revision = 'e5c1a7b93f20'
branch_labels = None
depends_on = None

SIZE = ("CASE WHEN max_lon - min_lon >= max_lat - min_lat THEN max_lon - min_lon "
        "ELSE max_lat - min_lat END")


def upgrade():
    op.create_table(
        'tile_cache',
        sa.Column('layer', sa.String(length=16), nullable=False),
        sa.Column('z', sa.Integer(), nullable=False),
        sa.Column('x', sa.Integer(), nullable=False),
        sa.Column('y', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=40), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('layer', 'z', 'x', 'y', 'scope', name=op.f('pk_tile_cache')),
    )
    op.execute(f"CREATE INDEX ix_parcels_tile_size ON parcels (({SIZE}))")


def downgrade():
    op.execute("DROP INDEX ix_parcels_tile_size")
    op.drop_table('tile_cache')
