"""parcel_imports

Why: a GeoJSON import re-sent after its answer was lost got 422 "duplicate code"; the SHA-256 of
each committed import's body and its answer are kept, so the same file again gets that answer
(idempotent by content hash, as lab imports are).

Revision ID: c3a5e8f1d2b7
Revises: b7e19d2f4a60
Create Date: 2026-12-04 19:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c3a5e8f1d2b7'
down_revision = 'b7e19d2f4a60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('parcel_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('county_code', sa.String(length=12), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer_json', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel_imports')),
    sa.UniqueConstraint('sha256', name=op.f('uq_parcel_imports_sha256'))
    )


def downgrade():
    op.drop_table('parcel_imports')
