"""export jobs: large exports prepared by a worker (issue 16)

Revision ID: 0015_export_jobs
Revises: 0016_pass_handed_by (numbered 0015 on its branch; main's 0016 landed first)
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0015_export_jobs'
down_revision = '0016_pass_handed_by'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('fmt', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('active_key', sa.String(length=120), nullable=True),
    sa.Column('status', sa.Enum('en_attente', 'en_cours', 'termine', 'echec', name='export_job_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('heartbeat_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_export_jobs_created_by_id_users')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_export_jobs_programme_id_programmes')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_export_jobs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_jobs')),
    sa.UniqueConstraint('active_key', name=op.f('uq_export_jobs_active_key'))
    )
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_jobs_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_jobs_tenant_id'))
    op.drop_table('export_jobs')
