"""land_labels

Why: land labels (a soil passport for any graded subject, pass or fail) share the certificates'
code space and table, told apart by ``kind``; their page shows the history of the subject's
conclusion, kept per label as it changes.

Revision ID: e5f2b8d0c312
Revises: d4e1a7c9b201
Create Date: 2026-12-04 19:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e5f2b8d0c312'
down_revision = 'd4e1a7c9b201'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='certificate'))
    op.create_table(
        'land_label_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('certificate_id', sa.Integer(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('grade', sa.String(length=32), nullable=True),
        sa.Column('verdict', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'],
                                name=op.f('fk_land_label_changes_certificate_id_certificates')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_land_label_changes')),
    )
    op.create_index(op.f('ix_land_label_changes_certificate_id'), 'land_label_changes', ['certificate_id'])


def downgrade():
    op.drop_index(op.f('ix_land_label_changes_certificate_id'), table_name='land_label_changes')
    op.drop_table('land_label_changes')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('kind')
