"""mandate

Revision ID: 0004_mandate
Revises: 0003_allocation
Create Date: 2026-11-23 15:10:48.428714
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0004_mandate'
down_revision = '0003_allocation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('beneficiaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_beneficiaries')),
    sa.UniqueConstraint('code', name=op.f('uq_beneficiaries_code'))
    )
    op.create_table('mandates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mandant_id', sa.Integer(), nullable=False),
    sa.Column('mandataire_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=80), nullable=False),
    sa.Column('accord_cadre_reference', sa.String(length=80), nullable=False),
    sa.Column('accord_cadre_ends_on', sa.Date(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('scope_distribution', sa.Boolean(), nullable=False),
    sa.Column('scope_contre_paiement', sa.Boolean(), nullable=False),
    sa.Column('advance_ceiling_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('accountant_consulted_on', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('brouillon', 'signe', 'termine', name='mandate_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('end_reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mandant_id'], ['tenants.id'], name=op.f('fk_mandates_mandant_id_tenants')),
    sa.ForeignKeyConstraint(['mandataire_id'], ['tenants.id'], name=op.f('fk_mandates_mandataire_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mandates'))
    )
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mandates_mandant_id'), ['mandant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mandates_mandataire_id'), ['mandataire_id'], unique=False)

    op.create_table('habilitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_on', sa.Date(), nullable=True),
    sa.Column('revocation_reason', sa.String(length=500), nullable=False),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_id'], ['users.id'], name=op.f('fk_habilitations_granted_by_id_users')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_habilitations_mandate_id_mandates')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_habilitations_revoked_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_habilitations_structure_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_habilitations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_habilitations'))
    )
    with op.batch_alter_table('habilitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_habilitations_mandate_id'), ['mandate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_habilitations_structure_id'), ['structure_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_habilitations_user_id'), ['user_id'], unique=False)

    op.create_table('reddition_closures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('statement_sha256', sa.String(length=64), nullable=False),
    sa.Column('ledger_heads', sa.JSON(), nullable=False),
    sa.Column('closed_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_reddition_closures_closed_by_id_users')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_reddition_closures_mandate_id_mandates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reddition_closures')),
    sa.UniqueConstraint('mandate_id', 'period_start', 'period_end', name=op.f('uq_reddition_closures_mandate_id_period_start_period_end'))
    )
    with op.batch_alter_table('reddition_closures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reddition_closures_mandate_id'), ['mandate_id'], unique=False)

    op.create_table('habilitation_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('commune_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('en_attente', 'accordee', 'refusee', name='request_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('habilitation_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['commune_id'], ['tenants.id'], name=op.f('fk_habilitation_requests_commune_id_tenants')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_habilitation_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['habilitation_id'], ['habilitations.id'], name=op.f('fk_habilitation_requests_habilitation_id_habilitations')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_habilitation_requests_requested_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_habilitation_requests_structure_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_habilitation_requests_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_habilitation_requests'))
    )
    with op.batch_alter_table('habilitation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_habilitation_requests_commune_id'), ['commune_id'], unique=False)

    op.create_table('distributions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('commune_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('habilitation_id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('beneficiary_id', sa.Integer(), nullable=False),
    sa.Column('carnet_id', sa.Integer(), nullable=False),
    sa.Column('pass_count', sa.Integer(), nullable=False),
    sa.Column('pass_first_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pass_last_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target_public', sa.String(length=40), nullable=False),
    sa.Column('needs', sa.JSON(), nullable=False),
    sa.Column('request_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['beneficiary_id'], ['beneficiaries.id'], name=op.f('fk_distributions_beneficiary_id_beneficiaries')),
    sa.ForeignKeyConstraint(['carnet_id'], ['carnets.id'], name=op.f('fk_distributions_carnet_id_carnets')),
    sa.ForeignKeyConstraint(['commune_id'], ['tenants.id'], name=op.f('fk_distributions_commune_id_tenants')),
    sa.ForeignKeyConstraint(['habilitation_id'], ['habilitations.id'], name=op.f('fk_distributions_habilitation_id_habilitations')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_distributions_mandate_id_mandates')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_distributions_programme_id_programmes')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_distributions_structure_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_distributions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_distributions')),
    sa.UniqueConstraint('request_token', name=op.f('uq_distributions_request_token'))
    )
    with op.batch_alter_table('distributions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distributions_commune_id'), ['commune_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_distributions_mandate_id'), ['mandate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_distributions_programme_id'), ['programme_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_distributions_structure_id'), ['structure_id'], unique=False)

    op.create_table('questionnaire_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('distribution_id', sa.Integer(), nullable=False),
    sa.Column('question', sa.String(length=40), nullable=False),
    sa.Column('answer', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['distribution_id'], ['distributions.id'], name=op.f('fk_questionnaire_answers_distribution_id_distributions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_answers')),
    sa.UniqueConstraint('distribution_id', 'question', name=op.f('uq_questionnaire_answers_distribution_id_question'))
    )
    with op.batch_alter_table('questionnaire_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_questionnaire_answers_distribution_id'), ['distribution_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('questionnaire_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_questionnaire_answers_distribution_id'))

    op.drop_table('questionnaire_answers')
    with op.batch_alter_table('distributions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_distributions_structure_id'))
        batch_op.drop_index(batch_op.f('ix_distributions_programme_id'))
        batch_op.drop_index(batch_op.f('ix_distributions_mandate_id'))
        batch_op.drop_index(batch_op.f('ix_distributions_commune_id'))

    op.drop_table('distributions')
    with op.batch_alter_table('habilitation_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_habilitation_requests_commune_id'))

    op.drop_table('habilitation_requests')
    with op.batch_alter_table('reddition_closures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reddition_closures_mandate_id'))

    op.drop_table('reddition_closures')
    with op.batch_alter_table('habilitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_habilitations_user_id'))
        batch_op.drop_index(batch_op.f('ix_habilitations_structure_id'))
        batch_op.drop_index(batch_op.f('ix_habilitations_mandate_id'))

    op.drop_table('habilitations')
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mandates_mandataire_id'))
        batch_op.drop_index(batch_op.f('ix_mandates_mandant_id'))

    op.drop_table('mandates')
    op.drop_table('beneficiaries')
