"""operateurs

Revision ID: 0005_operateurs
Revises: 0004_mandate
Create Date: 2026-11-23 15:01:35.129335
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0005_operateurs'
down_revision = '0004_mandate'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=12), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_tokens_created_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_api_tokens_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_structure_id'), 'api_tokens', ['structure_id'], unique=False)
    op.create_table('bank_details',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=False),
    sa.Column('bic', sa.String(length=11), nullable=False),
    sa.Column('status', sa.Enum('en_attente', 'valide', 'refuse', name='bank_review', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('submitted_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_bank_details_reviewed_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_bank_details_structure_id_tenants')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_bank_details_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_details'))
    )
    op.create_index(op.f('ix_bank_details_structure_id'), 'bank_details', ['structure_id'], unique=False)
    op.create_table('idempotency_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_idempotency_records_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('structure_id', 'key', name=op.f('uq_idempotency_records_structure_id_key'))
    )
    op.create_table('operateur_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('qualification', sa.Enum('en_attente', 'qualifie', 'suspendu', 'dequalifie', name='qualification', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('qualification_changed_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('qualification_reason', sa.String(length=500), nullable=False),
    sa.Column('commune_approved_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('commune_approved_by_id', sa.Integer(), nullable=True),
    sa.Column('is_public_body', sa.Boolean(), nullable=False),
    sa.Column('legal_representative', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['commune_approved_by_id'], ['users.id'], name=op.f('fk_operateur_profiles_commune_approved_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_operateur_profiles_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operateur_profiles')),
    sa.UniqueConstraint('structure_id', name=op.f('uq_operateur_profiles_structure_id'))
    )
    op.create_table('operateur_services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('price_pass', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_operateur_services_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operateur_services'))
    )
    op.create_index(op.f('ix_operateur_services_structure_id'), 'operateur_services', ['structure_id'], unique=False)
    op.create_table('qualification_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('qualification', sa.Enum('en_attente', 'qualifie', 'suspendu', 'dequalifie', name='qualification_event', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('decided_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_qualification_events_decided_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_qualification_events_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qualification_events'))
    )
    op.create_index(op.f('ix_qualification_events_structure_id'), 'qualification_events', ['structure_id'], unique=False)
    op.create_table('statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('status', sa.Enum('brouillon', 'valide', 'paye', name='statement_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('validated_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('validated_by_id', sa.Integer(), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('bank_reference', sa.String(length=100), nullable=False),
    sa.Column('paid_recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['paid_recorded_by_id'], ['users.id'], name=op.f('fk_statements_paid_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_statements_structure_id_tenants')),
    sa.ForeignKeyConstraint(['validated_by_id'], ['users.id'], name=op.f('fk_statements_validated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statements')),
    sa.UniqueConstraint('structure_id', 'period', name=op.f('uq_statements_structure_id_period'))
    )
    op.create_index(op.f('ix_statements_structure_id'), 'statements', ['structure_id'], unique=False)
    op.create_table('credit_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('pass_count', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_credit_notes_created_by_id_users')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_credit_notes_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('programme_id', name=op.f('uq_credit_notes_programme_id'))
    )
    op.create_table('scan_anomalies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('double_scan', 'carnet_en_rafale', 'hors_perimetre', name='anomaly_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('dedup_key', sa.String(length=120), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('structure_id', sa.Integer(), nullable=True),
    sa.Column('pass_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('serial', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('reviewed_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], name=op.f('fk_scan_anomalies_pass_id_passes')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_scan_anomalies_programme_id_programmes')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_scan_anomalies_reviewed_by_id_users')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_scan_anomalies_structure_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_anomalies')),
    sa.UniqueConstraint('kind', 'dedup_key', name=op.f('uq_scan_anomalies_kind_dedup_key'))
    )
    op.create_index(op.f('ix_scan_anomalies_programme_id'), 'scan_anomalies', ['programme_id'], unique=False)
    op.create_table('scans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pass_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('carnet_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=24), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('service_name', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('api_token_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('camera', 'douchette', 'saisie', 'photo', 'page_pass', 'api', 'hors_ligne', name='scan_channel', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('previous_holder_id', sa.Integer(), nullable=True),
    sa.Column('scanned_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['api_token_id'], ['api_tokens.id'], name=op.f('fk_scans_api_token_id_api_tokens')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_scans_cancelled_by_id_users')),
    sa.ForeignKeyConstraint(['carnet_id'], ['carnets.id'], name=op.f('fk_scans_carnet_id_carnets')),
    sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], name=op.f('fk_scans_pass_id_passes')),
    sa.ForeignKeyConstraint(['previous_holder_id'], ['tenants.id'], name=op.f('fk_scans_previous_holder_id_tenants')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_scans_programme_id_programmes')),
    sa.ForeignKeyConstraint(['service_id'], ['operateur_services.id'], name=op.f('fk_scans_service_id_operateur_services')),
    sa.ForeignKeyConstraint(['structure_id'], ['tenants.id'], name=op.f('fk_scans_structure_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_scans_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scans'))
    )
    op.create_index('ix_scans_carnet_scanned', 'scans', ['carnet_id', 'scanned_at'], unique=False)
    op.create_index(op.f('ix_scans_programme_id'), 'scans', ['programme_id'], unique=False)
    op.create_index('ix_scans_structure_scanned', 'scans', ['structure_id', 'scanned_at'], unique=False)
    op.create_index('uq_scans_live_pass', 'scans', ['pass_id'], unique=True, sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
    op.create_table('statement_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('pass_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('serial', sa.String(length=24), nullable=False),
    sa.Column('occurred_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('corrects_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrects_line_id'], ['statement_lines.id'], name=op.f('fk_statement_lines_corrects_line_id_statement_lines')),
    sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], name=op.f('fk_statement_lines_pass_id_passes')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_statement_lines_programme_id_programmes')),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_statement_lines_scan_id_scans')),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_statement_lines_statement_id_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_lines')),
    sa.UniqueConstraint('scan_id', name=op.f('uq_statement_lines_scan_id'))
    )
    op.create_index(op.f('ix_statement_lines_statement_id'), 'statement_lines', ['statement_id'], unique=False)
    with op.batch_alter_table('programmes') as batch:
        for name in ('blocking_proposed', 'distribution_blocked', 'cost_acknowledged'):
            batch.add_column(sa.Column(f'{name}_at', portal.models.base.UtcDateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column(f'{name}_by_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(op.f(f'fk_programmes_{name}_by_id_users'), 'users', [f'{name}_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('programmes') as batch:
        for name in ('cost_acknowledged', 'distribution_blocked', 'blocking_proposed'):
            batch.drop_constraint(op.f(f'fk_programmes_{name}_by_id_users'), type_='foreignkey')
            batch.drop_column(f'{name}_by_id')
            batch.drop_column(f'{name}_at')
    op.drop_index(op.f('ix_statement_lines_statement_id'), table_name='statement_lines')
    op.drop_table('statement_lines')
    op.drop_index('uq_scans_live_pass', table_name='scans', sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
    op.drop_index('ix_scans_structure_scanned', table_name='scans')
    op.drop_index(op.f('ix_scans_programme_id'), table_name='scans')
    op.drop_index('ix_scans_carnet_scanned', table_name='scans')
    op.drop_table('scans')
    op.drop_index(op.f('ix_scan_anomalies_programme_id'), table_name='scan_anomalies')
    op.drop_table('scan_anomalies')
    op.drop_table('credit_notes')
    op.drop_index(op.f('ix_statements_structure_id'), table_name='statements')
    op.drop_table('statements')
    op.drop_index(op.f('ix_qualification_events_structure_id'), table_name='qualification_events')
    op.drop_table('qualification_events')
    op.drop_index(op.f('ix_operateur_services_structure_id'), table_name='operateur_services')
    op.drop_table('operateur_services')
    op.drop_table('operateur_profiles')
    op.drop_table('idempotency_records')
    op.drop_index(op.f('ix_bank_details_structure_id'), table_name='bank_details')
    op.drop_table('bank_details')
    op.drop_index(op.f('ix_api_tokens_structure_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
