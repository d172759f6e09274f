"""passes: who handed each pass to its beneficiary (issue 18, scale)

The distinct-persons rule of convention art. 8 needs, for every scan, the
agent who handed the pass out. It was read from the ledger (the latest
DISTRIBUTION entry whose range covers the pass): a query that PostgreSQL can
only answer by walking the programme's entries — 180 ms per scan measured on
1.2 M entries. ``handed_by_id`` is written by custody with the DISTRIBUTION
entry, in the same UPDATE that hands the pass out; pass that may still be
scanned (distribué, scanné — undo —, bloqué — opposition lifted) are filled
from the ledger here.

Revision ID: 0016_pass_handed_by
Revises: 0009_revocation_moment
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_pass_handed_by'
down_revision = '0009_revocation_moment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handed_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_passes_handed_by_id_users'), 'users',
                                    ['handed_by_id'], ['id'])
    op.execute("""
        UPDATE passes SET handed_by_id = (
            SELECT e.actor_user_id FROM ledger_entries e
            WHERE e.programme_id = passes.programme_id AND e.nature = 'distribution'
              AND e.pass_first_id <= passes.id AND e.pass_last_id >= passes.id
            ORDER BY e.id DESC LIMIT 1)
        WHERE state IN ('distribue', 'scanne', 'bloque')""")


def downgrade() -> None:
    with op.batch_alter_table('passes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_passes_handed_by_id_users'), type_='foreignkey')
        batch_op.drop_column('handed_by_id')
