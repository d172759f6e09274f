"""onboarding: commanditaires, public fields of mediation places, applications

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('commanditaire_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('collectivite', sa.Enum('metropole', 'departement', 'commune', 'epci', 'region', 'autre', name='collectivite', native_enum=False, create_constraint=True, length=11), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=True),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_commanditaire_profiles_created_by_id_users')),
    sa.ForeignKeyConstraint(['issuer_id'], ['tenants.id'], name=op.f('fk_commanditaire_profiles_issuer_id_tenants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_commanditaire_profiles_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commanditaire_profiles')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_commanditaire_profiles_tenant_id'))
    )
    with op.batch_alter_table('commanditaire_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commanditaire_profiles_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('lieux_mediation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('typologie', sa.String(length=60), nullable=False),
    sa.Column('telephone', sa.String(length=20), nullable=False),
    sa.Column('courriels', sa.String(length=254), nullable=False),
    sa.Column('site_web', sa.String(length=254), nullable=False),
    sa.Column('horaires', sa.String(length=500), nullable=False),
    sa.Column('presentation_resume', sa.String(length=280), nullable=False),
    sa.Column('updated_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_lieux_mediation_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lieux_mediation')),
    sa.UniqueConstraint('structure_id', name=op.f('uq_lieux_mediation_structure_id'))
    )
    op.create_table('lieu_candidatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('contact_name', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('contact_phone', sa.String(length=30), nullable=False),
    sa.Column('submitted_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('invited_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_lieu_candidatures_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lieu_candidatures')),
    sa.UniqueConstraint('structure_id', name=op.f('uq_lieu_candidatures_structure_id'))
    )


def downgrade() -> None:
    op.drop_table('lieu_candidatures')
    op.drop_table('lieux_mediation')
    with op.batch_alter_table('commanditaire_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commanditaire_profiles_issuer_id'))
    op.drop_table('commanditaire_profiles')
