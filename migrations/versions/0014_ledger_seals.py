"""ledger sealed off the request path: ledger_seals (issue 18)

Entries are written without their place in the chain (no head lock on the
request path): each carries its own ``entry_mac``; the sealer chains them
later in ``ledger_seals`` (programme, seq → entry, prev_mac, mac). The
chain links of the entries sealed so far move to ``ledger_seals`` unchanged
(same seq, prev_mac, mac: the MACs stay valid), then ``seq``, ``prev_mac``
and ``mac`` leave ``ledger_entries``.

``ledger_unsealed`` lists the entries waiting for their seal: an AFTER
INSERT trigger on ``ledger_entries`` adds each new entry (whatever code
wrote it), the sealer deletes it in the transaction that writes its seal.

``ledger_seals`` is append-only like the entries (the same triggers). The
SQLite batch rebuild of ``ledger_entries`` drops its triggers: they are
created again here.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa
import portal.models.base


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_triggers(table: str) -> None:
    """The append-only triggers of migration 0002, for one table (the
    PostgreSQL function pn_refuse_ledger_change() exists since 0002)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION pn_refuse_ledger_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION pn_refuse_ledger_change()")
    else:
        op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on {table} is refused'); END")
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on {table} is refused'); END")


def _drop_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def _create_queue_trigger() -> None:
    """Every new entry is queued for the sealer, with the database's clock
    (seconds since 1970) to tell how long it waited."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION pn_queue_ledger_entry() RETURNS trigger AS $$
            BEGIN
                INSERT INTO ledger_unsealed (entry_id, programme_id, queued_at)
                VALUES (NEW.id, NEW.programme_id, extract(epoch FROM clock_timestamp()));
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute("CREATE TRIGGER ledger_entries_queue AFTER INSERT ON ledger_entries "
                   "FOR EACH ROW EXECUTE FUNCTION pn_queue_ledger_entry()")
    else:
        op.execute("CREATE TRIGGER ledger_entries_queue AFTER INSERT ON ledger_entries BEGIN "
                   "INSERT INTO ledger_unsealed (entry_id, programme_id, queued_at) VALUES "
                   "(NEW.id, NEW.programme_id, (julianday('now') - 2440587.5) * 86400.0); END")


def _drop_queue_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_queue ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS pn_queue_ledger_entry()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_queue")


def upgrade() -> None:
    op.create_table('ledger_unsealed',
    sa.Column('entry_id', BigId, nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_ledger_unsealed'))
    )
    with op.batch_alter_table('ledger_unsealed', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_unsealed_programme_entry', ['programme_id', 'entry_id'],
                              unique=False)
    op.create_table('ledger_seals',
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', BigId, nullable=False),
    sa.Column('prev_mac', sa.String(length=64), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.Column('sealed_at', portal.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_ledger_seals_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_ledger_seals_programme_id_programmes')),
    sa.PrimaryKeyConstraint('programme_id', 'seq', name=op.f('pk_ledger_seals')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_ledger_seals_entry_id'))
    )
    op.execute("INSERT INTO ledger_seals (programme_id, seq, entry_id, prev_mac, mac, sealed_at) "
               "SELECT programme_id, seq, id, prev_mac, mac, created_at FROM ledger_entries")
    _drop_triggers('ledger_entries')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_mac', sa.String(length=64), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_ledger_entries_programme_id_seq'), type_='unique')
        batch_op.drop_column('seq')
        batch_op.drop_column('prev_mac')
        batch_op.drop_column('mac')
    _create_triggers('ledger_entries')
    _create_triggers('ledger_seals')
    _create_queue_trigger()


def downgrade() -> None:
    bind = op.get_bind()
    unsealed = bind.execute(sa.text(
        "SELECT count(*) FROM ledger_entries e WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_seals s WHERE s.entry_id = e.id)")).scalar()
    if unsealed:
        raise RuntimeError(f"{unsealed} ledger entries are not sealed yet: run "
                           "`flask --app wsgi ledger seal` before downgrading")
    _drop_queue_trigger()
    _drop_triggers('ledger_seals')
    _drop_triggers('ledger_entries')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('prev_mac', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('seq', sa.BIGINT(), nullable=True))
    op.execute("UPDATE ledger_entries SET "
               "seq = (SELECT s.seq FROM ledger_seals s WHERE s.entry_id = ledger_entries.id), "
               "prev_mac = (SELECT s.prev_mac FROM ledger_seals s "
               "WHERE s.entry_id = ledger_entries.id), "
               "mac = (SELECT s.mac FROM ledger_seals s WHERE s.entry_id = ledger_entries.id)")
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BIGINT(), nullable=False)
        batch_op.alter_column('prev_mac', existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.alter_column('mac', existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_ledger_entries_programme_id_seq'),
                                          ['programme_id', 'seq'])
        batch_op.drop_column('entry_mac')
    _create_triggers('ledger_entries')
    op.drop_table('ledger_seals')
    op.drop_table('ledger_unsealed')
