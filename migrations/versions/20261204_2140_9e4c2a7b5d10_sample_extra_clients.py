"""sample extra answers and the client of each version

Why: issue 17. Answers to the uploaded form extension's questions (``extra``, DESIGN §4.3) are
part of a sample's content whichever client sent them (sync push or ODK Collect), so they are
versioned, merged field by field and pulled like the other fields: two nullable columns on
``samples``. ``sample_clients`` keeps who made each sample version (the device id and the
client's User-Agent), for sync pushes as ``openrosa_submissions`` already does for Collect.

Revision ID: 9e4c2a7b5d10
Revises: 5e2b9c7d1a34
Create Date: 2026-12-04 21:40:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '9e4c2a7b5d10'
down_revision = '5e2b9c7d1a34'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra', sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column('extension_version', sa.Integer(), nullable=True))
    op.create_table(
        'sample_clients',
        sa.Column('sample_id', sa.String(length=36), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('device_id', sa.String(length=128), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=True),
        sa.Column('device_pk', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sample_id', 'version'),
    )


def downgrade():
    op.drop_table('sample_clients')
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_column('extension_version')
        batch_op.drop_column('extra')
