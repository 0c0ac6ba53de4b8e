"""openrosa_collect

Why: ODK Collect as samplers use it (issue 17): each received instance with the sample version it
made, Collect's device id and User-Agent (edits by ``deprecatedID`` find their base here); uploaded
XLSForm extensions, versioned; and the device token kept encrypted for Collect's settings QR.

Revision ID: 7c2e4b9d1a05
Revises: 15e891601ec0
Create Date: 2026-12-04 18:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '7c2e4b9d1a05'
down_revision = '15e891601ec0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'openrosa_submissions',
        sa.Column('instance_id', sa.String(length=64), nullable=False),
        sa.Column('sample_id', sa.String(length=36), nullable=False),
        sa.Column('sample_version', sa.Integer(), nullable=True),
        sa.Column('deprecated_id', sa.String(length=64), nullable=True),
        sa.Column('form_version', sa.String(length=64), nullable=True),
        sa.Column('collect_device_id', sa.String(length=128), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=True),
        sa.Column('device_pk', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('extra', sa.JSON(), nullable=True),
        sa.Column('extension_version', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('instance_id'),
    )
    with op.batch_alter_table('openrosa_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_openrosa_submissions_sample_id'), ['sample_id'], unique=False)
    op.create_table(
        'form_extensions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('questions', sa.JSON(), nullable=False),
        sa.Column('xform_json', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version'),
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collect_key', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('collect_key')
    op.drop_table('form_extensions')
    with op.batch_alter_table('openrosa_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_openrosa_submissions_sample_id'))
    op.drop_table('openrosa_submissions')
