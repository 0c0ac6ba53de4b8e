"""map tiles

Why: vector tiles need a spatial index of parcels on each engine, and the ``areas`` layer its
outlines kept. PostgreSQL: the PostGIS extension, ``parcels.geom`` (EPSG:3857, so ``ST_AsMVTGeom``
needs no per-tile reprojection) kept by a trigger from ``geometry_json``, backfilled, with a GiST
index. SQLite: a ``parcels_rtree`` R*Tree of the bounding-box columns, kept by triggers,
backfilled. Both: an index of sample points, and ``area_outlines``.

Revision ID: 3d7a61c0b2e9
Revises: c3a5e8f1d2b7
Create Date: 2026-12-04 18:30:00

"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

# revision identifiers, used by Alembic.
revision = '3d7a61c0b2e9'
down_revision = 'c3a5e8f1d2b7'
branch_labels = None
depends_on = None

PG_GEOM = "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON({}), 4326), 3857)"
SQLITE_TRIGGERS = (
    "CREATE TRIGGER parcels_rtree_insert AFTER INSERT ON parcels BEGIN "
    "INSERT INTO parcels_rtree (id, min_lon, max_lon, min_lat, max_lat) "
    "VALUES (NEW.id, NEW.min_lon, NEW.max_lon, NEW.min_lat, NEW.max_lat); END",
    "CREATE TRIGGER parcels_rtree_update AFTER UPDATE OF min_lon, max_lon, min_lat, max_lat ON parcels BEGIN "
    "UPDATE parcels_rtree SET min_lon = NEW.min_lon, max_lon = NEW.max_lon, min_lat = NEW.min_lat, "
    "max_lat = NEW.max_lat WHERE id = NEW.id; END",
    "CREATE TRIGGER parcels_rtree_delete AFTER DELETE ON parcels BEGIN "
    "DELETE FROM parcels_rtree WHERE id = OLD.id; END",
)


def upgrade():
    op.create_table(
        'area_outlines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('county_code', sa.String(length=12), nullable=False),
        sa.Column('geometry_json', sa.Text(), nullable=False),
        sa.Column('min_lon', sa.Float(), nullable=False),
        sa.Column('min_lat', sa.Float(), nullable=False),
        sa.Column('max_lon', sa.Float(), nullable=False),
        sa.Column('max_lat', sa.Float(), nullable=False),
        sa.Column('source_seq', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_area_outlines')),
        sa.UniqueConstraint('kind', 'code', name=op.f('uq_area_outlines_kind_code')),
    )
    op.create_index('ix_area_outlines_county_bbox', 'area_outlines', ['county_code', 'min_lon', 'max_lon'])
    op.create_index('ix_samples_lon_lat', 'samples', ['lon', 'lat'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        op.add_column('parcels', sa.Column('geom', Geometry('GEOMETRY', srid=3857, spatial_index=False),
                                           nullable=True))
        op.execute(f"UPDATE parcels SET geom = {PG_GEOM.format('geometry_json')}")
        op.execute("CREATE INDEX ix_parcels_geom ON parcels USING gist (geom)")
        op.execute(f"""CREATE FUNCTION parcels_set_geom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.geom := {PG_GEOM.format('NEW.geometry_json')}; RETURN NEW; END $$""")
        op.execute("CREATE TRIGGER parcels_geom BEFORE INSERT OR UPDATE OF geometry_json ON parcels "
                   "FOR EACH ROW EXECUTE FUNCTION parcels_set_geom()")
    else:
        op.execute("CREATE VIRTUAL TABLE parcels_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat)")
        op.execute("INSERT INTO parcels_rtree (id, min_lon, max_lon, min_lat, max_lat) "
                   "SELECT id, min_lon, max_lon, min_lat, max_lat FROM parcels")
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER parcels_geom ON parcels")
        op.execute("DROP FUNCTION parcels_set_geom()")
        op.execute("DROP INDEX ix_parcels_geom")
        op.drop_column('parcels', 'geom')
        op.execute("DROP EXTENSION IF EXISTS postgis")
    else:
        for name in ("parcels_rtree_insert", "parcels_rtree_update", "parcels_rtree_delete"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE parcels_rtree")
    op.drop_index('ix_samples_lon_lat', table_name='samples')
    op.drop_index('ix_area_outlines_county_bbox', table_name='area_outlines')
    op.drop_table('area_outlines')
