"""certificate_quota

Why: a certificate records its certified area and crop, and the label quota they give
(area × expected yield ÷ package size, from configuration at issue); printed labels are counted
against it.

Revision ID: a7b4d0f2e534
Revises: f6a3c9e1d423
Create Date: 2026-12-04 19:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a7b4d0f2e534'
down_revision = 'f6a3c9e1d423'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area_m2', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('crop', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('label_quota', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('labels_printed', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('labels_printed')
        batch_op.drop_column('label_quota')
        batch_op.drop_column('crop')
        batch_op.drop_column('area_m2')
