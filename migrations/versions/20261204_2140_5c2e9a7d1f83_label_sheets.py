"""label_sheets

Why: printing labels was a GET that created serials and counted them against the quota, so a
retried or re-opened request counted again. A label sheet is now made once (POST, with an
Idempotency-Key) and its PDF fetched as often as needed with the same serials.

Revision ID: 5c2e9a7d1f83
Revises: 9e4c2a7b5d10
Create Date: 2026-12-04 21:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '5c2e9a7d1f83'
down_revision = '9e4c2a7b5d10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'label_sheets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=80), nullable=True),
        sa.Column('request_sha256', sa.String(length=64), nullable=False),
        sa.Column('codes_json', sa.Text(), nullable=False),
        sa.Column('serials_per_code', sa.Integer(), nullable=False),
        sa.Column('template', sa.String(length=64), nullable=False),
        sa.Column('start_slot', sa.Integer(), nullable=False),
        sa.Column('labels', sa.Integer(), nullable=False),
        sa.Column('override_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_label_sheets')),
        sa.UniqueConstraint('idempotency_key', name=op.f('uq_label_sheets_idempotency_key')),
    )
    with op.batch_alter_table('label_serials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sheet_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_label_serials_sheet_id'), ['sheet_id'])
        batch_op.create_foreign_key(batch_op.f('fk_label_serials_sheet_id_label_sheets'), 'label_sheets',
                                    ['sheet_id'], ['id'])


def downgrade():
    with op.batch_alter_table('label_serials', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_label_serials_sheet_id_label_sheets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_label_serials_sheet_id'))
        batch_op.drop_column('sheet_id')
    op.drop_table('label_sheets')
