"""parcels' R*Tree filled by the import, not by a trigger per row

Why: on SQLite the ``parcels_rtree_insert`` trigger put each new parcel's box into the R*Tree
between two rows of the import's ``executemany``, interleaving R*Tree node pages with the
table's and its seven indexes' pages: ~25 µs a parcel more than the same boxes added by one
``INSERT … SELECT`` after the rows (measured on 100,000 parcels of ``bench/places.py``: 48 → 25
µs of SQLite CPU a parcel). Every parcel is inserted by ``places.services._insert_parcels``,
which now fills the R*Tree itself; edits and deletes keep their triggers.

Revision ID: b2d9e4f17a35
Revises: a4c7e2f9b613
Create Date: 2026-12-06 04:10:00

"""
from alembic import op

revision = 'b2d9e4f17a35'
down_revision = 'a4c7e2f9b613'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER parcels_rtree_insert")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TRIGGER parcels_rtree_insert AFTER INSERT ON parcels BEGIN "
                   "INSERT INTO parcels_rtree (id, min_lon, max_lon, min_lat, max_lat) "
                   "VALUES (NEW.id, NEW.min_lon, NEW.max_lon, NEW.min_lat, NEW.max_lat); END")
