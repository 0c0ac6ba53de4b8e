"""grading_run_estimation

Why: a whole-county run fits a variogram per analyte (DESIGN §5 revised); the run records the
models it used (method, variogram parameters, projection), and an incremental re-grade
re-estimates with the latest run's models.

Revision ID: e5714a7e0b1c
Revises: b7c1d2e3f4a5
Create Date: 2026-12-04 19:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e5714a7e0b1c'
down_revision = 'b7c1d2e3f4a5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grading_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimation', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('grading_runs', schema=None) as batch_op:
        batch_op.drop_column('estimation')
