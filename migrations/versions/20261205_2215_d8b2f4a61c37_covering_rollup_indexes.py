"""covering indexes for rolling areas up live: a parcel's code in its area indexes

Why: where a county has no maintained roll-up sums (graded by village runs only, or loaded in bulk)
the console rolls its villages and farm parks up in one grouped query: every live parcel of the
areas joined to its current grade. Without ``code`` in the parcels' area indexes each of the
100,000 parcels of the bench county cost a table read for the join key besides the index read.
Each index replaces the one it extends (same leading columns), so writes keep the same index count.
(Widening ``ix_grades_current_parcel`` too, with ``strict_control`` and its condition's columns, let
SQLite answer the whole join from indexes: the bench county's overview right after a change took
162 / 208 ms p50 / p95 with it and 263 / 317 ms without. But every grade row a county run writes
carries that index: the 1,000,000-parcel county run measured 61.7 and 61.6 s with it, 59.6 s
without, against a 60 s target. On PostgreSQL, which needs no more than ``strict_control`` for an
index-only scan, the index INCLUDEs it: 394 / 452 ms without it, 182 / 205 ms with it.)

Revision ID: d8b2f4a61c37
Revises: c0a5e1d2f416
Create Date: 2026-12-05 22:15:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd8b2f4a61c37'
down_revision = 'c0a5e1d2f416'
branch_labels = None
depends_on = None


CURRENT = sa.text("subject_type = 'parcel' AND superseded_by IS NULL")
GRADE_COLUMNS = ['subject_code', 'rule_pack', 'grade', 'verdict', 'basis']


def _grade_index(include: list[str]) -> None:
    op.drop_index('ix_grades_current_parcel', table_name='grades')
    op.create_index('ix_grades_current_parcel', 'grades', GRADE_COLUMNS, postgresql_where=CURRENT,
                    postgresql_include=include)


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _grade_index(['strict_control'])
    op.drop_index('ix_parcels_village_live', table_name='parcels')
    op.drop_index('ix_parcels_farm_park_live', table_name='parcels')
    op.create_index('ix_parcels_village_live', 'parcels', ['village_code', 'deleted_at', 'area_m2', 'code'])
    op.create_index('ix_parcels_farm_park_live', 'parcels', ['farm_park_code', 'deleted_at', 'area_m2', 'code'])


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _grade_index([])
    op.drop_index('ix_parcels_farm_park_live', table_name='parcels')
    op.drop_index('ix_parcels_village_live', table_name='parcels')
    op.create_index('ix_parcels_farm_park_live', 'parcels', ['farm_park_code', 'deleted_at', 'area_m2'])
    op.create_index('ix_parcels_village_live', 'parcels', ['village_code', 'deleted_at', 'area_m2'])
