"""allocation

Revision ID: 0003_allocation
Revises: 0002_issuance_ledger
Create Date: 2026-11-23 15:01:57.539184
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0003_allocation'
down_revision = '0002_issuance_ledger'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conventions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('commune_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=80), nullable=False),
    sa.Column('delivery_address', sa.String(length=300), nullable=False),
    sa.Column('signed_by_commune_on', sa.Date(), nullable=True),
    sa.Column('signed_by_commune_name', sa.String(length=200), nullable=False),
    sa.Column('signed_by_metropole_on', sa.Date(), nullable=True),
    sa.Column('signed_by_metropole_name', sa.String(length=200), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('referent_name', sa.String(length=200), nullable=False),
    sa.Column('referent_email', sa.String(length=254), nullable=False),
    sa.Column('referent_phone', sa.String(length=30), nullable=False),
    sa.Column('referent_designated_on', sa.Date(), nullable=True),
    sa.Column('abondements_suspended', sa.Boolean(), nullable=False),
    sa.Column('abondement_size_override', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['commune_id'], ['tenants.id'], name=op.f('fk_conventions_commune_id_tenants')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_conventions_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conventions')),
    sa.UniqueConstraint('programme_id', 'commune_id', name=op.f('uq_conventions_programme_id_commune_id'))
    )
    with op.batch_alter_table('conventions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conventions_commune_id'), ['commune_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conventions_programme_id'), ['programme_id'], unique=False)

    op.create_table('convention_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convention_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('summary', sa.String(length=1000), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=True),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_convention_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['convention_id'], ['conventions.id'], name=op.f('fk_convention_events_convention_id_conventions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_convention_events'))
    )
    with op.batch_alter_table('convention_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_convention_events_convention_id'), ['convention_id'], unique=False)

    op.create_table('hub_opinions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convention_id', sa.Integer(), nullable=False),
    sa.Column('hub_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('reseau', 'capacite', name='opinion_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('favourable', sa.Boolean(), nullable=False),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('evidence', sa.String(length=1000), nullable=False),
    sa.Column('given_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['convention_id'], ['conventions.id'], name=op.f('fk_hub_opinions_convention_id_conventions')),
    sa.ForeignKeyConstraint(['given_by_id'], ['users.id'], name=op.f('fk_hub_opinions_given_by_id_users')),
    sa.ForeignKeyConstraint(['hub_id'], ['tenants.id'], name=op.f('fk_hub_opinions_hub_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_opinions'))
    )
    with op.batch_alter_table('hub_opinions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_opinions_convention_id'), ['convention_id'], unique=False)

    op.create_table('sanctions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convention_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('restitution', 'suspension', 'levee_suspension', 'reduction', name='sanction_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['convention_id'], ['conventions.id'], name=op.f('fk_sanctions_convention_id_conventions')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_sanctions_decided_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sanctions'))
    )
    with op.batch_alter_table('sanctions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sanctions_convention_id'), ['convention_id'], unique=False)

    op.create_table('tranches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convention_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('amorcage', 'abondement', name='tranche_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('status', sa.Enum('demandee', 'confirmee', 'expediee', 'recue', 'refusee', name='tranche_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('requested_on', sa.Date(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_on', sa.Date(), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('shipped_on', sa.Date(), nullable=True),
    sa.Column('shipped_by_id', sa.Integer(), nullable=True),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('received_by_id', sa.Integer(), nullable=True),
    sa.Column('received_quantity', sa.Integer(), nullable=True),
    sa.Column('discrepancy_note', sa.String(length=1000), nullable=False),
    sa.Column('refusal_reason', sa.String(length=1000), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_tranches_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['convention_id'], ['conventions.id'], name=op.f('fk_tranches_convention_id_conventions')),
    sa.ForeignKeyConstraint(['received_by_id'], ['users.id'], name=op.f('fk_tranches_received_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_tranches_requested_by_id_users')),
    sa.ForeignKeyConstraint(['shipped_by_id'], ['users.id'], name=op.f('fk_tranches_shipped_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tranches'))
    )
    with op.batch_alter_table('tranches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tranches_convention_id'), ['convention_id'], unique=False)

    op.create_table('shipments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tranche_id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('first_carnet', sa.Integer(), nullable=False),
    sa.Column('last_carnet', sa.Integer(), nullable=False),
    sa.Column('missing', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_shipments_programme_id_programmes')),
    sa.ForeignKeyConstraint(['tranche_id'], ['tranches.id'], name=op.f('fk_shipments_tranche_id_tranches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments'))
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shipments_tranche_id'), ['tranche_id'], unique=False)

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commune_id', sa.Integer(), nullable=True))
    # Added without a foreign key on purpose: an SQLite batch rebuild of the
    # ledger table would drop its append-only triggers.

    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commune_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_passes_programme_commune_state', ['programme_id', 'commune_id', 'state'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_passes_commune_id_tenants'), 'tenants', ['commune_id'], ['id'])

    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('convention_ends_on', sa.Date(), nullable=False, server_default='2021-10-31'))
        batch_op.add_column(sa.Column('holiday_subdivision', sa.String(length=3), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('pentecost_worked', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_column('pentecost_worked')
        batch_op.drop_column('holiday_subdivision')
        batch_op.drop_column('convention_ends_on')

    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_passes_commune_id_tenants'), type_='foreignkey')
        batch_op.drop_index('ix_passes_programme_commune_state')
        batch_op.drop_column('commune_id')

    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shipments_tranche_id'))

    op.drop_table('shipments')
    with op.batch_alter_table('tranches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tranches_convention_id'))

    op.drop_table('tranches')
    with op.batch_alter_table('sanctions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sanctions_convention_id'))

    op.drop_table('sanctions')
    with op.batch_alter_table('hub_opinions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_opinions_convention_id'))

    op.drop_table('hub_opinions')
    with op.batch_alter_table('convention_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_convention_events_convention_id'))

    op.drop_table('convention_events')
    with op.batch_alter_table('conventions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conventions_programme_id'))
        batch_op.drop_index(batch_op.f('ix_conventions_commune_id'))

    op.drop_table('conventions')

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_column('commune_id')
    if op.get_bind().dialect.name == "sqlite":
        # The batch rebuild dropped the append-only triggers: put them back.
        for name, event in (("no_update", "UPDATE"), ("no_delete", "DELETE")):
            op.execute(f"DROP TRIGGER IF EXISTS ledger_entries_{name}")
            op.execute(f"CREATE TRIGGER ledger_entries_{name} BEFORE {event} ON ledger_entries "
                       f"BEGIN SELECT RAISE(ABORT, 'append-only: {event} on ledger_entries is "
                       "refused'); END")
