"""issuers

Why: the issuing institute's identity (names, address, contact, seal, co-issuer) is configured once
and kept as versions; certificates name the version they were issued under.

Revision ID: d4e1a7c9b201
Revises: e5714a7e0b1c
Create Date: 2026-12-04 19:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'd4e1a7c9b201'
down_revision = 'e5714a7e0b1c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'issuers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('ident', sa.String(length=32), nullable=False),
        sa.Column('name_zh', sa.String(length=200), nullable=False),
        sa.Column('name_en', sa.String(length=200), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=False),
        sa.Column('contact', sa.String(length=200), nullable=False),
        sa.Column('co_issuer', sa.JSON(), nullable=True),
        sa.Column('seal_png', sa.LargeBinary(), nullable=True),
        sa.Column('seal_sha256', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_issuers')),
        sa.UniqueConstraint('version', name=op.f('uq_issuers_version')),
    )


def downgrade():
    op.drop_table('issuers')
