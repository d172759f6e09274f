"""Exact rollups of custody, for dashboards, monthly reports and open data.

Two tables, written only here and only by the ledger's sealer
(``portal.domain.ledger.seal_batch``), from the batch of entries it seals,
in the same transaction as their seals (issue 18: nothing of it on the
request path; the programme's ledger head is locked then, so the writes of
one programme are serialised). Readers call ``ledger.settle`` first to see
every committed movement:

* ``position_counts`` — pass per (programme, commune, state, holder), the
  same figures as ``SELECT … count(*) FROM passes GROUP BY …``;
* ``flow_counts`` — ledger movements per (programme, commune, Paris day,
  nature), the same figures as a sum over ``ledger_entries``.

Writes are upserts (``INSERT … ON CONFLICT DO UPDATE SET count = count +
:n``) on both PostgreSQL and SQLite. ``recount_*`` recompute both from the
source tables (tests compare; ``rebuild`` repairs after a manual fix).
``0`` stands for "no commune" / "no holder".
"""
from __future__ import annotations

from typing import cast
import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.formatting import PARIS
from portal.models import FlowCount, LedgerEntry, Pass, PositionCount
from portal.models.issuance import PassState
from portal.models.ledger import FUND_NATURES, Nature


# Pass "en circulation" in a commune: delivered and not yet paid, restituted,
# cancelled or expired (same set as portal.domain.reddition.CIRCULATION).
CIRCULATION = frozenset({PassState.LIVRE, PassState.REPARTI, PassState.DISTRIBUE,
                         PassState.SCANNE, PassState.CONTRE_PAIEMENT, PassState.BLOQUE})


def circulation_delta(from_state, to_state, count: int) -> int:
    return ((count if to_state is not None and PassState(to_state) in CIRCULATION else 0)
            - (count if from_state is not None and PassState(from_state) in CIRCULATION else 0))


_POSITIONS = cast(sa.Table, PositionCount.__table__)
_FLOWS = cast(sa.Table, FlowCount.__table__)


_UPSERTS: dict[tuple[str, str], sa.sql.Executable] = {}


def _upsert(session: Session, which: str):
    """``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` on either
    table, built once per dialect (Core, no ORM bulk machinery: every scan
    comes here)."""
    dialect = session.get_bind().dialect.name
    stmt = _UPSERTS.get((dialect, which))
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        if which == "positions":
            stmt = insert(_POSITIONS)
            stmt = stmt.on_conflict_do_update(
                index_elements=["programme_id", "commune_id", "state", "holder_id"],
                set_={"count": _POSITIONS.c.count + stmt.excluded.count})
        else:
            stmt = insert(_FLOWS)
            stmt = stmt.on_conflict_do_update(
                index_elements=["programme_id", "commune_id", "day", "nature"],
                set_={"count": _FLOWS.c.count + stmt.excluded.count,
                      "amount_cents": _FLOWS.c.amount_cents + stmt.excluded.amount_cents,
                      "circulation": _FLOWS.c.circulation + stmt.excluded.circulation})
        _UPSERTS[(dialect, which)] = stmt
    return stmt


def add_positions(session: Session, programme_id: int,
                  deltas: dict[tuple[int | None, PassState, int | None], int]) -> None:
    """``deltas``: (commune_id, state, holder_id) → pass entering (+) or leaving (−)."""
    rows = [{"programme_id": programme_id, "commune_id": commune or 0,
             "state": PassState(state), "holder_id": holder or 0, "count": n}
            for (commune, state, holder), n in sorted(
                deltas.items(), key=lambda item: (item[0][0] or 0, PassState(item[0][1]).value,
                                                  item[0][2] or 0)) if n]
    if not rows:
        return
    session.execute(_upsert(session, "positions"), rows)


def add_flow(session: Session, programme_id: int, commune_id: int | None, nature: Nature,
             at: dt.datetime, count: int, amount_cents: int, circulation: int = 0) -> None:
    day = at.astimezone(PARIS).date()
    session.execute(_upsert(session, "flows"), {
        "programme_id": programme_id, "commune_id": commune_id or 0, "day": day,
        "nature": Nature(nature), "count": count, "amount_cents": amount_cents,
        "circulation": circulation})


def add_entries(session: Session, programme_id: int, entries) -> None:
    """Add a batch of ledger entries (rows with the entry's fields) to both
    rollups. Each entry moves ``count`` pass from (commune, from_state,
    from_holder) to (commune, to_state, to_holder), where the commune is the
    entry's — except a livraison, which brings pass from no commune (pass
    leave a commune only by restitution, which sets none), and a
    restitution, which takes them back to none (``custody._commune_change``)."""
    deltas: dict = defaultdict(int)
    flows: dict = defaultdict(lambda: [0, 0, 0])
    for e in entries:
        nature = Nature(e.nature)
        if nature in FUND_NATURES:
            continue    # money, not pass (issue 17): as in ``recount_flows``
        commune = e.commune_id
        if e.from_state is not None:
            from_commune = None if nature is Nature.LIVRAISON else commune
            deltas[(from_commune, PassState(e.from_state), e.from_holder_id)] -= e.count
        to_commune = None if nature is Nature.RESTITUTION else commune
        deltas[(to_commune, PassState(e.to_state), e.to_holder_id)] += e.count
        flow = flows[(commune or 0, e.created_at.astimezone(PARIS).date(), nature)]
        flow[0] += e.count
        flow[1] += e.amount_cents
        flow[2] += circulation_delta(e.from_state, e.to_state, e.count)
    add_positions(session, programme_id, deltas)
    if flows:
        session.execute(_upsert(session, "flows"), [
            {"programme_id": programme_id, "commune_id": c, "day": d, "nature": n, "count": k,
             "amount_cents": a, "circulation": r}
            for (c, d, n), (k, a, r) in sorted(flows.items(), key=lambda i: (i[0][0], i[0][1],
                                                                             i[0][2].value))])


# ---------------------------------------------------------------- recounts

def positions(session: Session, programme_id: int) -> dict[tuple[int, PassState, int], int]:
    from portal.domain import ledger
    ledger.settle(session, programme_id)
    rows = session.execute(sa.select(PositionCount.commune_id, PositionCount.state,
                                     PositionCount.holder_id, PositionCount.count)
                           .where(PositionCount.programme_id == programme_id))
    return {(c, PassState(s), h): int(n) for c, s, h, n in rows if n}


def recount_positions(session: Session, programme_id: int) -> dict[tuple[int, PassState, int], int]:
    rows = session.execute(
        sa.select(Pass.commune_id, Pass.state, Pass.holder_id, sa.func.count())
        .where(Pass.programme_id == programme_id)
        .group_by(Pass.commune_id, Pass.state, Pass.holder_id))
    return {(c or 0, PassState(s), h or 0): int(n) for c, s, h, n in rows}


def flows(session: Session, programme_id: int
          ) -> dict[tuple[int, dt.date, Nature], tuple[int, int, int]]:
    from portal.domain import ledger
    ledger.settle(session, programme_id)
    rows = session.execute(sa.select(FlowCount.commune_id, FlowCount.day, FlowCount.nature,
                                     FlowCount.count, FlowCount.amount_cents,
                                     FlowCount.circulation)
                           .where(FlowCount.programme_id == programme_id))
    return {(c, d, Nature(n)): (int(k), int(a), int(r)) for c, d, n, k, a, r in rows}


def recount_flows(session: Session, programme_id: int
                  ) -> dict[tuple[int, dt.date, Nature], tuple[int, int, int]]:
    totals: dict = defaultdict(lambda: [0, 0, 0])
    rows = session.execute(
        sa.select(LedgerEntry.commune_id, LedgerEntry.created_at, LedgerEntry.nature,
                  LedgerEntry.count, LedgerEntry.amount_cents, LedgerEntry.from_state,
                  LedgerEntry.to_state)
        .where(LedgerEntry.programme_id == programme_id,
               LedgerEntry.nature.not_in(FUND_NATURES))   # money, not pass (issue 17)
        .execution_options(yield_per=10_000))
    for commune, at, nature, count, cents, from_state, to_state in rows:
        key = (commune or 0, at.astimezone(PARIS).date(), Nature(nature))
        totals[key][0] += count
        totals[key][1] += cents
        totals[key][2] += circulation_delta(from_state, to_state, count)
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def rebuild(session: Session, programme_id: int) -> None:
    """Recompute both rollups of a programme from the pass and the ledger,
    once every entry is sealed (the sealer would count the waiting ones again)."""
    from portal.domain import ledger
    ledger.seal(session, programme_id, commit=False)
    session.execute(sa.delete(PositionCount).where(PositionCount.programme_id == programme_id))
    session.execute(sa.delete(FlowCount).where(FlowCount.programme_id == programme_id))
    pos = recount_positions(session, programme_id)
    if pos:
        session.execute(sa.insert(PositionCount), [
            {"programme_id": programme_id, "commune_id": c, "state": s, "holder_id": h,
             "count": n} for (c, s, h), n in pos.items()])
    fl = recount_flows(session, programme_id)
    if fl:
        session.execute(sa.insert(FlowCount), [
            {"programme_id": programme_id, "commune_id": c, "day": d, "nature": n,
             "count": k, "amount_cents": a, "circulation": r}
            for (c, d, n), (k, a, r) in fl.items()])
