"""label_serials

Why: each printed label gets its own serial in its QR, so the page can say when that label was
first checked and how often, and warn when one label is scanned more than one label could be.

Revision ID: f6a3c9e1d423
Revises: e5f2b8d0c312
Create Date: 2026-12-04 19:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'f6a3c9e1d423'
down_revision = 'e5f2b8d0c312'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'label_serials',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('certificate_id', sa.Integer(), nullable=False),
        sa.Column('serial', sa.String(length=8), nullable=False),
        sa.Column('printed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('printed_by', sa.String(length=120), nullable=False),
        sa.Column('checks', sa.Integer(), server_default='0', nullable=False),
        sa.Column('days', sa.Integer(), server_default='0', nullable=False),
        sa.Column('first_checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_checked_on', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'],
                                name=op.f('fk_label_serials_certificate_id_certificates')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_label_serials')),
        sa.UniqueConstraint('certificate_id', 'serial', name=op.f('uq_label_serials_certificate_id_serial')),
    )
    op.create_index(op.f('ix_label_serials_certificate_id'), 'label_serials', ['certificate_id'])


def downgrade():
    op.drop_index(op.f('ix_label_serials_certificate_id'), table_name='label_serials')
    op.drop_table('label_serials')
