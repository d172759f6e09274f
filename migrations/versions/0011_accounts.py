"""accounts: invitations, append-only action journal, session expiry (issue 13)

Revision ID: 0011
Revises: 0010_jobs
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0011'
down_revision = '0010_jobs'
branch_labels = None
depends_on = None

# The journal is append-only in the database itself (as the ledger, 0002).
APPEND_ONLY_TABLE = "journal_entries"


def _create_triggers() -> None:
    table = APPEND_ONLY_TABLE
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION pn_refuse_journal_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION pn_refuse_journal_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION pn_refuse_journal_change()")
    else:
        op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on {table} is refused'); END")
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on {table} is refused'); END")


def _drop_triggers() -> None:
    table = APPEND_ONLY_TABLE
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pn_refuse_journal_change()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def upgrade() -> None:
    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.Enum('mgp_agent', 'mgp_admin', 'referent', 'commune_agent', 'hub_agent', 'hub_admin', 'aptic_agent', 'aptic_admin', 'prescripteur_agent', 'operateur_agent', 'operateur_admin', name='invitation_role', native_enum=False, create_constraint=True, length=18), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('accepted_user_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', portal.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['users.id'], name=op.f('fk_invitations_accepted_user_id_users')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_tenant_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=60), nullable=False),
    sa.Column('target_id', sa.BigInteger(), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['actor_tenant_id'], ['tenants.id'], name=op.f('fk_journal_entries_actor_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_journal_entries_actor_user_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_journal_entries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_tenant_id'), ['tenant_id'], unique=False)
    _create_triggers()

    # New NOT NULL columns on sign-in sessions: everybody signs in again.
    op.execute("DELETE FROM auth_sessions")
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('auth_sessions', schema=None,
                              recreate='always' if sqlite else 'auto') as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', portal.models.base.UtcDateTime(timezone=True), nullable=False))
        batch_op.add_column(sa.Column('password_confirmed_at', portal.models.base.UtcDateTime(timezone=True), nullable=False))
        batch_op.create_index(batch_op.f('ix_auth_sessions_last_seen_at'), ['last_seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_last_seen_at'))
        batch_op.drop_column('password_confirmed_at')
        batch_op.drop_column('last_seen_at')
    _drop_triggers()
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_created_at'))
    op.drop_table('journal_entries')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_invitations_email'))
    op.drop_table('invitations')
