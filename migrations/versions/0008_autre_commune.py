"""scan anomalies: a pass of another commune (issue 12)

Scans outside the programme's perimeter are now refused; a pass confié to one
commune and used at a place of another commune inside the perimeter is
accepted and flagged ``autre_commune``.

Revision ID: 0008_autre_commune
Revises: 0007_security
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_autre_commune'
down_revision = '0007_security'
branch_labels = None
depends_on = None

OLD = ('double_scan', 'carnet_en_rafale', 'hors_perimetre')
NEW = OLD + ('autre_commune',)
NAME = 'ck_scan_anomalies_anomaly_kind'


def _replace_check(values) -> None:
    condition = "kind IN (%s)" % ", ".join(f"'{v}'" for v in values)
    # scan_anomalies has no trigger: an SQLite batch rebuild loses nothing.
    with op.batch_alter_table('scan_anomalies', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(op.f(NAME), sa.text(condition))


def upgrade() -> None:
    _replace_check(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM scan_anomalies WHERE kind = 'autre_commune'")
    _replace_check(OLD)
