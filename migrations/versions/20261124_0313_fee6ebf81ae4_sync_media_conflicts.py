"""sync_media_conflicts

Why: the sync server keeps conflicts (both bodies), idempotent push receipts, the cursor epoch and resumable media offsets in the database.

Revision ID: fee6ebf81ae4
Revises: fd19ac926f39
Create Date: 2026-11-24 03:13:57.522949

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'fee6ebf81ae4'
down_revision = 'fd19ac926f39'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media_blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('received_bytes', sa.BigInteger(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_media_blobs'))
    )
    op.create_table('sync_conflicts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_type', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=True),
    sa.Column('server_version', sa.Integer(), nullable=True),
    sa.Column('server_record_id', sa.String(length=36), nullable=True),
    sa.Column('server_body', sa.JSON(), nullable=True),
    sa.Column('incoming_body', sa.JSON(), nullable=False),
    sa.Column('incoming_hash', sa.String(length=64), nullable=False),
    sa.Column('hard_fields', sa.JSON(), nullable=False),
    sa.Column('soft_fields', sa.JSON(), nullable=False),
    sa.Column('provisional', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('resolved_values', sa.JSON(), nullable=True),
    sa.Column('resolved_version', sa.Integer(), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('county_code', sa.String(length=12), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_conflicts')),
    sa.UniqueConstraint('record_id', 'kind', 'incoming_hash', name=op.f('uq_sync_conflicts_record_id_kind_incoming_hash'))
    )
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_conflicts_record_id'), ['record_id'], unique=False)
        batch_op.create_index('ix_sync_conflicts_status_county', ['status', 'county_code'], unique=False)

    op.create_table('sync_idempotency',
    sa.Column('actor_key', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=36), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('actor_key', 'key', name=op.f('pk_sync_idempotency'))
    )
    with op.batch_alter_table('sync_idempotency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_idempotency_created_at'), ['created_at'], unique=False)

    op.create_table('sync_meta',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sync_meta'))
    )
    op.create_table('sample_media',
    sa.Column('sample_id', sa.String(length=36), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_sample_media_sample_id_samples')),
    sa.PrimaryKeyConstraint('sample_id', 'sha256', name=op.f('pk_sample_media'))
    )
    with op.batch_alter_table('sample_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sample_media_sha256'), ['sha256'], unique=False)


def downgrade():
    with op.batch_alter_table('sample_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sample_media_sha256'))

    op.drop_table('sample_media')
    op.drop_table('sync_meta')
    with op.batch_alter_table('sync_idempotency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_idempotency_created_at'))

    op.drop_table('sync_idempotency')
    with op.batch_alter_table('sync_conflicts', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_conflicts_status_county')
        batch_op.drop_index(batch_op.f('ix_sync_conflicts_record_id'))

    op.drop_table('sync_conflicts')
    op.drop_table('media_blobs')
