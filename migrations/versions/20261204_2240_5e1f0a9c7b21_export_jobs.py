"""export jobs

Why: a console export above the configured row count runs as a background job (never a request
timeout); the job row records the requester, their role and county (the scope the rows are read
under and the download is checked against), its progress and the file it wrote.

Revision ID: 5e1f0a9c7b21
Revises: 5c2e9a7d1f83
Create Date: 2026-12-04 22:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '5e1f0a9c7b21'
down_revision = '5c2e9a7d1f83'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'export_jobs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('resource', sa.String(length=16), nullable=False),
        sa.Column('fmt', sa.String(length=8), nullable=False),
        sa.Column('lang', sa.String(length=4), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('requester', sa.String(length=80), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('county_code', sa.String(length=12), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('path', sa.Text(), nullable=True),
        sa.Column('size_bytes', sa.BigInteger(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_export_jobs_user_id', 'export_jobs', ['user_id'])
    op.create_index('ix_export_jobs_county_code', 'export_jobs', ['county_code'])
    op.create_index('ix_export_jobs_state', 'export_jobs', ['state'])


def downgrade():
    op.drop_index('ix_export_jobs_state', table_name='export_jobs')
    op.drop_index('ix_export_jobs_county_code', table_name='export_jobs')
    op.drop_index('ix_export_jobs_user_id', table_name='export_jobs')
    op.drop_table('export_jobs')
