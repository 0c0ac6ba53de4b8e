"""planned points indexed by status first

Why: every sync push (and every edit of samples) asks whether its samples' parcels hold an open
planned point (``grading.plans.close_for_samples``). Usually no point is open at all: a county's
plans are few and most of their points are closed. With the index led by ``parcel_code`` that
question went through the 500 samples of a push to their parcels (~1 ms a push, 2 µs a record,
~2 % of a push); led by ``status`` one probe answers "none open" (~0.05 ms), and the readers that
ask for the open points of some parcels (pull, map tiles, closing) search the same index.
Replaces ``ix_planned_points_parcel_status`` (same columns, the other order).

Revision ID: a4c7e2f9b613
Revises: d8b2f4a61c37
Create Date: 2026-12-06 01:20:00

"""
from alembic import op

revision = 'a4c7e2f9b613'
down_revision = 'd8b2f4a61c37'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_planned_points_parcel_status', table_name='planned_points')
    op.create_index('ix_planned_points_status_parcel', 'planned_points', ['status', 'parcel_code'])


def downgrade():
    op.drop_index('ix_planned_points_status_parcel', table_name='planned_points')
    op.create_index('ix_planned_points_parcel_status', 'planned_points', ['parcel_code', 'status'])
