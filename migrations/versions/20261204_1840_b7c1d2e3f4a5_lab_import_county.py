"""lab_import_county

Why: a lab import belongs to its importer's county (issue 19, items 1 and 7). Readers see the
imports of their county only, and a result held for a bag code not yet synced links only to a
sample the importer may see. NULL: the importer was province-wide.

Revision ID: b7c1d2e3f4a5
Revises: 7c2e4b9d1a05
Create Date: 2026-12-04 18:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7c1d2e3f4a5'
down_revision = '7c2e4b9d1a05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lab_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('county_code', sa.String(length=12), nullable=True))
        batch_op.create_index('ix_lab_imports_county_code', ['county_code'], unique=False)
    # Earlier imports take their importer's county (created_by is 'user:<username>').
    op.execute("UPDATE lab_imports SET county_code = (SELECT u.county_code FROM users u"
               " WHERE 'user:' || u.username = lab_imports.created_by)")


def downgrade():
    with op.batch_alter_table('lab_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_imports_county_code')
        batch_op.drop_column('county_code')
