"""audit_truncate_guard

Why: the append-only triggers on audit_events and entity_versions fire per row, and TRUNCATE fires
no row triggers, so on PostgreSQL one statement could empty the whole history. A statement-level
BEFORE TRUNCATE trigger refuses it. (SQLite has no TRUNCATE; its DELETE is refused per row.)

Revision ID: b7e19d2f4a60
Revises: a7b4d0f2e534
Create Date: 2026-12-04 19:40:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e19d2f4a60'
down_revision = 'a7b4d0f2e534'
branch_labels = None
depends_on = None

TABLES = ("audit_events", "entity_versions")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:  # fieldsvc_append_only() raises; it was made by the foundation revision
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION fieldsvc_append_only()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
