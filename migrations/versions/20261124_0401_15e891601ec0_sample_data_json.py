"""sample_data_json

Why: a pull splices each sample's stored canonical data text instead of rebuilding it per row.

Revision ID: 15e891601ec0
Revises: a459d5a58a1f
Create Date: 2026-11-24 04:01:50.171529

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '15e891601ec0'
down_revision = 'a459d5a58a1f'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no backfill: rows written before this (or by hand) have NULL and a pull builds
    # their text from the columns.
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_json', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_column('data_json')
