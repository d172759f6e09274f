"""issuance and ledger

Revision ID: 0002_issuance_ledger
Revises: 0001_foundation
Create Date: 2026-11-23 14:48:50.335080
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0002_issuance_ledger'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


# The ledger is append-only in the database itself, not only in the ORM.
APPEND_ONLY_TABLES = ("ledger_entries", "ledger_anchors")


def _create_append_only_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION pn_refuse_ledger_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
        """)
        for table in APPEND_ONLY_TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION pn_refuse_ledger_change()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION pn_refuse_ledger_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on {table} is refused'); END")
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on {table} is refused'); END")


def _drop_append_only_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pn_refuse_ledger_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def upgrade() -> None:
    op.create_table('programmes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('commanditaire_id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=6), nullable=False),
    sa.Column('face_value_cents', sa.Integer(), nullable=False),
    sa.Column('pass_per_carnet', sa.Integer(), nullable=False),
    sa.Column('total_stock', sa.Integer(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('tolerance_until', sa.Date(), nullable=False),
    sa.Column('target_publics', sa.JSON(), nullable=False),
    sa.Column('amorcage_size', sa.Integer(), nullable=False),
    sa.Column('abondement_size', sa.Integer(), nullable=False),
    sa.Column('abondement_threshold_pct', sa.Integer(), nullable=False),
    sa.Column('request_window_start', sa.Date(), nullable=False),
    sa.Column('request_window_end', sa.Date(), nullable=False),
    sa.Column('delivery_working_days', sa.Integer(), nullable=False),
    sa.Column('partial_last_tranche', sa.Boolean(), nullable=False),
    sa.Column('allow_partial_carnet', sa.Boolean(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['commanditaire_id'], ['tenants.id'], name=op.f('fk_programmes_commanditaire_id_tenants')),
    sa.ForeignKeyConstraint(['issuer_id'], ['tenants.id'], name=op.f('fk_programmes_issuer_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programmes')),
    sa.UniqueConstraint('prefix', name=op.f('uq_programmes_prefix'))
    )
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programmes_commanditaire_id'), ['commanditaire_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_programmes_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('ledger_anchors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=False),
    sa.Column('head_mac', sa.String(length=64), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_ledger_anchors_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_anchors')),
    sa.UniqueConstraint('programme_id', 'period', name=op.f('uq_ledger_anchors_programme_id_period'))
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('nature', sa.Enum('emission', 'activation', 'livraison', 'repartition', 'reprise', 'distribution', 'scan', 'annulation_scan', 'contre_paiement', 'paiement', 'blocage', 'annulation', 'restitution', 'expiration', name='ledger_nature', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_tenant_id', sa.Integer(), nullable=True),
    sa.Column('from_state', sa.Enum('emis', 'active', 'livre', 'reparti', 'distribue', 'scanne', 'contre_paiement', 'paye', 'bloque', 'annule', 'restitue', 'expire', name='ledger_from_state', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('from_holder_id', sa.Integer(), nullable=True),
    sa.Column('to_state', sa.Enum('emis', 'active', 'livre', 'reparti', 'distribue', 'scanne', 'contre_paiement', 'paye', 'bloque', 'annule', 'restitue', 'expire', name='ledger_to_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('to_holder_id', sa.Integer(), nullable=True),
    sa.Column('pass_first_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pass_last_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('serial_first', sa.String(length=24), nullable=False),
    sa.Column('serial_last', sa.String(length=24), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('ref_type', sa.String(length=40), nullable=False),
    sa.Column('ref_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('prev_mac', sa.String(length=64), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_tenant_id'], ['tenants.id'], name=op.f('fk_ledger_entries_actor_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_ledger_entries_actor_user_id_users')),
    sa.ForeignKeyConstraint(['from_holder_id'], ['tenants.id'], name=op.f('fk_ledger_entries_from_holder_id_tenants')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_ledger_entries_programme_id_programmes')),
    sa.ForeignKeyConstraint(['to_holder_id'], ['tenants.id'], name=op.f('fk_ledger_entries_to_holder_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('programme_id', 'seq', name=op.f('uq_ledger_entries_programme_id_seq'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_programme_created', ['programme_id', 'created_at'], unique=False)
        batch_op.create_index('ix_ledger_entries_programme_pass', ['programme_id', 'pass_first_id'], unique=False)

    op.create_table('ledger_heads',
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_ledger_heads_programme_id_programmes')),
    sa.PrimaryKeyConstraint('programme_id', name=op.f('pk_ledger_heads'))
    )
    op.create_table('pass_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('carnet_count', sa.Integer(), nullable=False),
    sa.Column('first_carnet_number', sa.Integer(), nullable=False),
    sa.Column('last_carnet_number', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=2), nullable=False),
    sa.Column('ordered_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ordered_by_id', sa.Integer(), nullable=True),
    sa.Column('payment_reference', sa.String(length=60), nullable=True),
    sa.Column('payment_recorded_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('payment_recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('activated_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('activated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['activated_by_id'], ['users.id'], name=op.f('fk_pass_orders_activated_by_id_users')),
    sa.ForeignKeyConstraint(['ordered_by_id'], ['users.id'], name=op.f('fk_pass_orders_ordered_by_id_users')),
    sa.ForeignKeyConstraint(['payment_recorded_by_id'], ['users.id'], name=op.f('fk_pass_orders_payment_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_pass_orders_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pass_orders'))
    )
    with op.batch_alter_table('pass_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pass_orders_programme_id'), ['programme_id'], unique=False)

    op.create_table('programme_perimeter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_programme_perimeter_programme_id_programmes')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_programme_perimeter_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_perimeter')),
    sa.UniqueConstraint('programme_id', 'tenant_id', name=op.f('uq_programme_perimeter_programme_id_tenant_id'))
    )
    with op.batch_alter_table('programme_perimeter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_perimeter_programme_id'), ['programme_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_programme_perimeter_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('carnets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['pass_orders.id'], name=op.f('fk_carnets_order_id_pass_orders')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_carnets_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carnets')),
    sa.UniqueConstraint('programme_id', 'number', name=op.f('uq_carnets_programme_id_number'))
    )
    with op.batch_alter_table('carnets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carnets_order_id'), ['order_id'], unique=False)

    op.create_table('print_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('first_carnet', sa.Integer(), nullable=False),
    sa.Column('last_carnet', sa.Integer(), nullable=False),
    sa.Column('commune_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('en_attente', 'en_cours', 'termine', 'echec', name='print_job_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('finished_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_print_jobs_created_by_id_users')),
    sa.ForeignKeyConstraint(['issuer_id'], ['tenants.id'], name=op.f('fk_print_jobs_issuer_id_tenants')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_print_jobs_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_jobs'))
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_jobs_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('passes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('carnet_id', sa.Integer(), nullable=False),
    sa.Column('index_in_carnet', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=24), nullable=False),
    sa.Column('key_id', sa.String(length=2), nullable=False),
    sa.Column('state', sa.Enum('emis', 'active', 'livre', 'reparti', 'distribue', 'scanne', 'contre_paiement', 'paye', 'bloque', 'annule', 'restitue', 'expire', name='pass_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('state_changed_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['carnet_id'], ['carnets.id'], name=op.f('fk_passes_carnet_id_carnets')),
    sa.ForeignKeyConstraint(['holder_id'], ['tenants.id'], name=op.f('fk_passes_holder_id_tenants')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_passes_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passes')),
    sa.UniqueConstraint('carnet_id', 'index_in_carnet', name=op.f('uq_passes_carnet_id_index_in_carnet')),
    sa.UniqueConstraint('serial', name=op.f('uq_passes_serial'))
    )
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passes_carnet_id'), ['carnet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_passes_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index('ix_passes_programme_state_holder', ['programme_id', 'state', 'holder_id'], unique=False)


    _create_append_only_triggers()

def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_jobs_issuer_id'))

    op.drop_table('print_jobs')
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.drop_index('ix_passes_programme_state_holder')
        batch_op.drop_index(batch_op.f('ix_passes_holder_id'))
        batch_op.drop_index(batch_op.f('ix_passes_carnet_id'))

    op.drop_table('passes')
    with op.batch_alter_table('carnets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carnets_order_id'))

    op.drop_table('carnets')
    with op.batch_alter_table('programme_perimeter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_perimeter_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_programme_perimeter_programme_id'))

    op.drop_table('programme_perimeter')
    with op.batch_alter_table('pass_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pass_orders_programme_id'))

    op.drop_table('pass_orders')
    op.drop_table('ledger_heads')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_programme_pass')
        batch_op.drop_index('ix_ledger_entries_programme_created')

    op.drop_table('ledger_entries')
    op.drop_table('ledger_anchors')
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programmes_issuer_id'))
        batch_op.drop_index(batch_op.f('ix_programmes_commanditaire_id'))

    op.drop_table('programmes')
