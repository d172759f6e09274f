"""habilitations: the moment a revocation takes effect (issue 14, items 2-3)

``revoked_at`` (UTC) is when the revocation takes effect; ``revoked_on``
stays as the date it states. Existing revocations take effect at 00:00,
Paris time, on their date (what the date used to mean).

Revision ID: 0009_revocation_moment
Revises: 0014 (numbered 0009 on its branch; applied after 0014)
"""
import datetime as dt
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0009_revocation_moment'
down_revision = '0014'
branch_labels = None
depends_on = None

PARIS = ZoneInfo("Europe/Paris")


def upgrade() -> None:
    with op.batch_alter_table('habilitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', portal.models.base.UtcDateTime(timezone=True),
                                      nullable=True))
    table = sa.table('habilitations', sa.column('id', sa.Integer),
                     sa.column('revoked_on', sa.Date),
                     sa.column('revoked_at', portal.models.base.UtcDateTime(timezone=True)))
    bind = op.get_bind()
    for row_id, revoked_on in bind.execute(sa.select(table.c.id, table.c.revoked_on).where(
            table.c.revoked_on.is_not(None))).all():
        moment = dt.datetime.combine(revoked_on, dt.time(), PARIS).astimezone(dt.timezone.utc)
        bind.execute(table.update().where(table.c.id == row_id).values(revoked_at=moment))


def downgrade() -> None:
    with op.batch_alter_table('habilitations', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
