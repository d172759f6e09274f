"""Custody of pass: the ONE module that writes a pass's state and holder.

Every transition goes through ``move`` (or ``issue_passes`` for creation),
which updates the pass with a conditional UPDATE (only rows still in the
expected position change, so two concurrent moves cannot both succeed) and
appends the matching ledger entries in the same transaction. Any other
write of ``Pass.state`` raises (see ``_guard_state_writes``) and a test
scans the code base for direct UPDATEs.

Allowed transitions follow the issuer's life cycle (DOMAIN.md):
émis → activé (payment reference recorded) → livré (commune) → réparti
(structure, art. 7) → distribué (beneficiary, art. 8) → scanné →
mis en contre-paiement (art. 5: "consommé") → payé; and the exits
bloqué (opposition), annulé, restitué (art. 11), expiré (avoir).
"""
from __future__ import annotations

from types import EllipsisType
from typing import cast
import contextvars
import datetime as dt
from dataclasses import dataclass
from itertools import groupby

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.domain import ledger
from portal.domain.errors import Conflict
from portal.domain.ledger import Actor
from portal.models import Pass, Programme, utcnow
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature as N

# nature → (states a pass may leave, state it enters)
TRANSITIONS: dict[N, tuple[frozenset[S], S]] = {
    N.ACTIVATION: (frozenset({S.EMIS}), S.ACTIVE),
    N.LIVRAISON: (frozenset({S.ACTIVE, S.RESTITUE}), S.LIVRE),
    N.REPARTITION: (frozenset({S.LIVRE}), S.REPARTI),
    N.REPRISE: (frozenset({S.REPARTI}), S.LIVRE),
    N.DISTRIBUTION: (frozenset({S.REPARTI}), S.DISTRIBUE),
    N.SCAN: (frozenset({S.DISTRIBUE}), S.SCANNE),
    N.ANNULATION_SCAN: (frozenset({S.SCANNE}), S.DISTRIBUE),
    N.CONTRE_PAIEMENT: (frozenset({S.SCANNE}), S.CONTRE_PAIEMENT),
    N.PAIEMENT: (frozenset({S.CONTRE_PAIEMENT}), S.PAYE),
    # Issue 17: the bank returned the transfer; the statement is to be paid again.
    N.RETOUR_PAIEMENT: (frozenset({S.PAYE}), S.CONTRE_PAIEMENT),
    N.BLOCAGE: (frozenset({S.ACTIVE, S.LIVRE, S.REPARTI, S.DISTRIBUE}), S.BLOQUE),
    N.ANNULATION: (frozenset({S.EMIS, S.ACTIVE, S.LIVRE, S.REPARTI, S.BLOQUE, S.RESTITUE}),
                   S.ANNULE),
    N.RESTITUTION: (frozenset({S.LIVRE, S.REPARTI}), S.RESTITUE),
    N.EXPIRATION: (frozenset({S.ACTIVE, S.LIVRE, S.REPARTI, S.DISTRIBUE, S.BLOQUE, S.RESTITUE}),
                   S.EXPIRE),
}

_PASSES = cast(sa.Table, Pass.__table__)   # Core statements on the scan hot path
_in_custody = contextvars.ContextVar("in_custody", default=False)


@event.listens_for(Pass.state, "set", propagate=True)
@event.listens_for(Pass.holder_id, "set", propagate=True)
def _guard_state_writes(target, value, oldvalue, initiator):
    if not _in_custody.get():
        raise RuntimeError("Pass.state / Pass.holder_id are written only by portal.domain.custody")


@dataclass(frozen=True)
class Run:
    """A contiguous run of pass ids sharing one position (state, holder) and commune."""
    first_id: int
    last_id: int
    state: S
    holder_id: int | None
    serial_first: str
    serial_last: str
    commune_id: int | None = None

    @property
    def count(self) -> int:
        return self.last_id - self.first_id + 1


def runs_of(rows) -> list[Run]:
    """Group (id, state, holder_id, serial[, commune_id]) rows sorted by id into runs."""
    runs: list[Run] = []

    def commune(row):
        return row[4] if len(row) > 4 else None

    for (state, holder, commune_id), grouped in groupby(rows,
                                                        key=lambda r: (r[1], r[2], commune(r))):
        group = list(grouped)
        start = group[0]
        prev = start
        for row in group[1:]:
            if row[0] != prev[0] + 1:
                runs.append(Run(start[0], prev[0], S(state), holder, start[3], prev[3], commune_id))
                start = row
            prev = row
        runs.append(Run(start[0], prev[0], S(state), holder, start[3], prev[3], commune_id))
    return runs


def _commune_change(nature: N, to_holder_id: int | None) -> dict:
    """A livraison gives the pass to a commune; a restitution takes it back."""
    if nature is N.LIVRAISON:
        return {"commune_id": to_holder_id}
    if nature is N.RESTITUTION:
        return {"commune_id": None}
    return {}


def move(session: Session, programme: Programme, *, nature: N, criteria, to_holder_id: int | None,
         actor: Actor, expected_holder_id: int | None | EllipsisType = ..., ref_type: str = "",
         ref_id: int | None = None, reason: str = "", now: dt.datetime | None = None,
         expected_count: int | None = None) -> int:
    """Move the pass of ``programme`` matching ``criteria`` (SQL expressions
    on ``Pass``) with ``nature``. Every selected pass must be in a state the
    nature allows (and with ``expected_holder_id`` if given), else nothing
    moves and ``Conflict`` is raised. Returns the number of pass moved."""
    allowed, to_state = TRANSITIONS[nature]
    now = now or utcnow()
    rows = session.execute(
        sa.select(Pass.id, Pass.state, Pass.holder_id, Pass.serial, Pass.commune_id)
        .where(Pass.programme_id == programme.id, *criteria).order_by(Pass.id)).all()
    if not rows:
        raise Conflict("Aucun pass ne correspond à cette opération.")
    if expected_count is not None and len(rows) != expected_count:
        raise Conflict(f"{expected_count} pass attendus, {len(rows)} trouvés : opération refusée.")
    for _id, state, holder, serial, _commune in rows:
        if state not in allowed:
            raise Conflict(f"Le pass {serial} est « {S(state).label} » : "
                           f"{nature.label} impossible.")
        if expected_holder_id is not ... and holder != expected_holder_id:
            raise Conflict(f"Le pass {serial} n'est pas détenu par cette structure ou cette "
                           "commune : opération refusée.")
    runs = runs_of(rows)
    token = _in_custody.set(True)
    try:
        for run in runs:
            result = cast(sa.CursorResult, session.execute(
                sa.update(Pass)
                .where(Pass.id.between(run.first_id, run.last_id), Pass.state == run.state,
                       Pass.holder_id.is_(None) if run.holder_id is None
                       else Pass.holder_id == run.holder_id)
                .values(state=to_state, holder_id=to_holder_id, state_changed_at=now,
                        **_commune_change(nature, to_holder_id),
                        **({"handed_by_id": actor.user_id} if nature is N.DISTRIBUTION else {}))
                .execution_options(synchronize_session=False)))
            if result.rowcount != run.count:
                raise Conflict("Ces pass viennent d'être modifiés par une autre opération. "
                               "Rechargez la page et recommencez.")
            ledger.append(session, programme_id=programme.id, nature=nature, actor=actor,
                          from_state=run.state, from_holder_id=run.holder_id,
                          to_state=to_state, to_holder_id=to_holder_id,
                          pass_first_id=run.first_id, pass_last_id=run.last_id,
                          serial_first=run.serial_first, serial_last=run.serial_last,
                          count=run.count, amount_cents=run.count * programme.face_value_cents,
                          ref_type=ref_type, ref_id=ref_id, reason=reason, created_at=now,
                          commune_id=to_holder_id if nature is N.LIVRAISON else run.commune_id)
    finally:
        _in_custody.reset(token)
    session.expire_all()
    return len(rows)


def insert_passes(session: Session, programme: Programme, rows: list[dict], *, holder_id: int,
                  actor: Actor, ref_type: str, ref_id: int, now: dt.datetime | None = None
                  ) -> int:
    """Create pass in state émis held by the issuer, with their EMISSION
    entries. ``rows`` hold carnet_id, index_in_carnet, serial, key_id, in
    serial order. Used by ``portal.domain.issuance`` only."""
    now = now or utcnow()
    common = dict(programme_id=programme.id, state=S.EMIS, holder_id=holder_id,
                  state_changed_at=now)
    token = _in_custody.set(True)
    try:
        created = _insert_pass_rows(session, rows, common)
    finally:
        _in_custody.reset(token)
    if len(created) != len(rows):
        raise RuntimeError(f"{len(created)} pass created instead of {len(rows)}")
    triples = [(pid, S.EMIS, holder_id, serial) for pid, serial in created]
    for run in runs_of(triples):
        ledger.append(session, programme_id=programme.id, nature=N.EMISSION, actor=actor,
                      from_state=None, from_holder_id=None, to_state=S.EMIS,
                      to_holder_id=holder_id, pass_first_id=run.first_id,
                      pass_last_id=run.last_id, serial_first=run.serial_first,
                      serial_last=run.serial_last, count=run.count,
                      amount_cents=run.count * programme.face_value_cents,
                      ref_type=ref_type, ref_id=ref_id, created_at=now)
    return len(created)


# Columns that vary from pass to pass; the others are the same for a whole insert.
_PASS_ROW_COLUMNS = ("carnet_id", "index_in_carnet", "serial", "key_id")


def _insert_pass_rows(session: Session, rows: list[dict], common: dict) -> list[tuple[int, str]]:
    """Insert the pass ``rows`` (+ ``common`` values); returns their (id, serial)
    sorted by id. PostgreSQL: one INSERT … SELECT FROM unnest(<one array per
    column>), since psycopg parses every multi-row VALUES statement of an
    executemany (155 000 pass: 12 s instead of 32). Elsewhere: an executemany
    with RETURNING. Ids come back with their serials: no order is relied on."""
    table = _PASSES
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY
        arrays = [sa.bindparam(f"p_{name}", [row[name] for row in rows],
                               type_=ARRAY(table.c[name].type)) for name in _PASS_ROW_COLUMNS]
        source = sa.func.unnest(*arrays).table_valued(*_PASS_ROW_COLUMNS).render_derived()
        select = sa.select(*(source.c[name] for name in _PASS_ROW_COLUMNS),
                           *(sa.literal(value, table.c[name].type)
                             for name, value in common.items()))
        result = session.execute(
            sa.insert(table).from_select([*_PASS_ROW_COLUMNS, *common], select)
            .returning(table.c.id, table.c.serial))
    else:
        for row in rows:
            row.update(common)
        result = session.execute(sa.insert(table).returning(table.c.id, table.c.serial), rows)
    return sorted(result.tuples().all())


def state_counts(session: Session, programme_id: int) -> dict[tuple[S, int | None], int]:
    """Pass per position read from the pass table (compared with the ledger)."""
    rows = session.execute(
        sa.select(Pass.state, Pass.holder_id, sa.func.count())
        .where(Pass.programme_id == programme_id).group_by(Pass.state, Pass.holder_id))
    return {(S(state), holder): int(n) for state, holder, n in rows}


# ---------------------------------------------------------------- scanning (issue 6)

# The conditional UPDATE of a scan, built once (issue 18: building it cost
# more than sending it).
_CONSUME = (_PASSES.update()
            .where(_PASSES.c.id == sa.bindparam("pass_id"), _PASSES.c.state == S.DISTRIBUE)
            .values(state=S.SCANNE, holder_id=sa.bindparam("structure_id"),
                    state_changed_at=sa.bindparam("now"))
            .returning(_PASSES.c.commune_id))


def scan_pass(session: Session, programme: Programme, *, pass_id: int, serial: str,
              previous_holder_id: int | None, structure_id: int, actor: Actor,
              record_consumption, now: dt.datetime | None = None) -> int:
    """Consume one pass: distribué → scanné, held by the opérateur.

    Exactly once (ENGINEERING.md, measured): a conditional UPDATE that only
    changes a pass still ``distribue``; the loser of a race updates 0 rows
    and gets ``Conflict`` (a pass still ``distribue`` cannot have changed
    holder). ``record_consumption(previous_holder_id)`` inserts
    the consumption row (guarded by its own UNIQUE index) and returns its id.
    The ledger entry is one INSERT without any lock (sealed and counted in
    the rollups later by ``ledger.seal``). Returns the consumption id."""
    now = now or utcnow()
    previous = previous_holder_id     # as read with the pass, in this transaction
    token = _in_custody.set(True)
    try:
        result = session.execute(_CONSUME, {"pass_id": pass_id, "structure_id": structure_id,
                                            "now": now})
        updated = result.first()
    finally:
        _in_custody.reset(token)
    if updated is None:
        raise Conflict("Ce pass vient d'être utilisé.", reason="deja_utilise")
    consumption_id = record_consumption(previous)
    ledger.append(session, programme_id=programme.id, nature=N.SCAN, actor=actor,
                  from_state=S.DISTRIBUE, from_holder_id=previous, to_state=S.SCANNE,
                  to_holder_id=structure_id, pass_first_id=pass_id, pass_last_id=pass_id,
                  serial_first=serial, serial_last=serial, count=1,
                  amount_cents=programme.face_value_cents, ref_type="scan",
                  ref_id=consumption_id, created_at=now, commune_id=updated.commune_id)
    return consumption_id


def unscan_pass(session: Session, programme: Programme, *, pass_id: int, serial: str,
                structure_id: int, back_to_holder_id: int | None, actor: Actor, scan_id: int,
                reason: str, now: dt.datetime | None = None) -> None:
    """Undo a scan made by mistake: scanné → distribué, back to its previous
    holder (nature ANNULATION_SCAN), conditional like every move."""
    now = now or utcnow()
    token = _in_custody.set(True)
    try:
        result = session.execute(
            sa.update(Pass).where(Pass.id == pass_id, Pass.state == S.SCANNE,
                                  Pass.holder_id == structure_id)
            .values(state=S.DISTRIBUE, holder_id=back_to_holder_id, state_changed_at=now)
            .returning(Pass.commune_id)
            .execution_options(synchronize_session=False))
        updated = result.first()
    finally:
        _in_custody.reset(token)
    if updated is None:
        raise Conflict("Ce pass n'est plus « scanné » : l'annulation est impossible.")
    ledger.append(session, programme_id=programme.id, nature=N.ANNULATION_SCAN, actor=actor,
                  from_state=S.SCANNE, from_holder_id=structure_id, to_state=S.DISTRIBUE,
                  to_holder_id=back_to_holder_id, pass_first_id=pass_id, pass_last_id=pass_id,
                  serial_first=serial, serial_last=serial, count=1,
                  amount_cents=programme.face_value_cents, ref_type="scan", ref_id=scan_id,
                  reason=reason, created_at=now, commune_id=updated.commune_id)
    session.expire_all()
