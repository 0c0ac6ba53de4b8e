"""a parcel grade's basis as a column, and an index of the current parcel grades

Why: a map tile of thousands of parcels tells measured and estimated grades apart (issue 15: parcels
by grade, measured and estimated told apart); read from each grade's explanation JSON that is a parse
of several kilobytes per parcel (an estimate's explanation holds its neighbours and fitted models).
The grading pass writes the column with every parcel grade; this backfills the rows already there:
``not_assessed`` where the verdict judged nothing, ``estimated`` where the explanation says so, else
``measured`` (what ``grading.basis.basis_of`` reads). Area grades keep null.
``ix_grades_current_parcel`` holds what the tile reads of a parcel's current grade (grade, verdict,
basis), so the look-up is answered from the index: a z13 tile of the surveyed 1 M-parcel bench county,
~2,400 look-ups, spent about half as much server time on them (PostgreSQL, after VACUUM).

Revision ID: 7a3c5e9b2d14
Revises: 5e1f0a9c7b21
Create Date: 2026-12-05 01:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '7a3c5e9b2d14'
down_revision = '5e1f0a9c7b21'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('grades', sa.Column('basis', sa.String(length=16), nullable=True))  # (no table rebuild on SQLite)
    if op.get_bind().dialect.name == 'postgresql':
        said = "explanation->>'basis'"
    else:
        said = "json_extract(explanation, '$.basis')"
    op.execute("UPDATE grades SET basis = CASE WHEN verdict IN ('not_assessed', 'not_graded') THEN 'not_assessed' "
               f"WHEN {said} = 'estimated' THEN 'estimated' ELSE 'measured' END WHERE subject_type = 'parcel'")
    current = sa.text("subject_type = 'parcel' AND superseded_by IS NULL")
    op.create_index('ix_grades_current_parcel', 'grades', ['subject_code', 'rule_pack', 'grade', 'verdict', 'basis'],
                    postgresql_where=current, sqlite_where=current)


def downgrade():
    op.drop_index('ix_grades_current_parcel', table_name='grades')
    with op.batch_alter_table('grades') as batch:
        batch.drop_column('basis')
