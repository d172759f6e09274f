"""jobs: print job heartbeats and attempts (dead-worker detection), scheduled duty runs

Revision ID: 0010_jobs
Revises: 0008_autre_commune
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0010_jobs'
down_revision = '0008_autre_commune'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('duty_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('duty', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('message', sa.String(length=2000), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_runs')),
    sa.UniqueConstraint('duty', 'period', name=op.f('uq_duty_runs_duty_period'))
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', portal.models.base.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('heartbeat_at')

    op.drop_table('duty_runs')
