"""Dashboard figures of every tenant (issue 7), read from the exact rollups
(``portal.domain.rollups``) and a few bounded queries — never a scan of the
whole pass table.

Vocabulary (DOMAIN.md, #APTIC help centre; convention art. 5, 9):

* **reçus** (held) — pass whose commune is the commune (amorçage +
  abondements − restitutions), as in ``allocation.consumption``;
* **répartis** — pass now with a prescripteur structure (art. 7);
* **remis** (handed out, "injectés") — distribué, scanné, mis en
  contre-paiement or payé;
* **scannés** — scanné, mis en contre-paiement or payé;
* **mis en contre-paiement** ("consommés", art. 5) — mis en contre-paiement
  or payé;
* carnets **émis** — carnets of activated orders; **injectés** — at least one
  pass handed out; **non injectés** — émis − injectés; **entamés** — at least
  one pass scanned or beyond.

Projections (art. 5, 6): the pace is the consumption (mises en
contre-paiement) of the last ``PACE_DAYS`` days, linear; the date a commune
reaches the abondement threshold is today + missing / pace; the shared
stock runs out at today + available / (pass committed in tranches over the
last ``PACE_DAYS`` days). No pace → ``None`` ("non estimable").
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import allocation, ledger
from portal.models import (Convention, Distribution, FlowCount, Pass, PassOrder, PositionCount,
                           Programme, QuestionnaireAnswer, Tenant, Tranche, TrancheStatus)
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature

PACE_DAYS = 90
HANDED_OUT = frozenset({S.DISTRIBUE, S.SCANNE, S.CONTRE_PAIEMENT, S.PAYE})
SCANNED = frozenset({S.SCANNE, S.CONTRE_PAIEMENT, S.PAYE})
CONSUMED = frozenset(allocation.CONSUMED_STATES)


@dataclass
class CommuneFigures:
    commune_id: int
    name: str
    held: int = 0
    livre: int = 0
    reparti: int = 0
    handed_out: int = 0
    scanned: int = 0
    consumed: int = 0
    pace_per_day: float = 0.0
    to_threshold: int = 0
    threshold_on: dt.date | None = None
    threshold_reached: bool = False

    @property
    def ratio_pct(self) -> float:
        return 100.0 * self.consumed / self.held if self.held else 0.0

    def as_row(self) -> dict:
        return {"commune": self.name, "held": self.held, "reparti": self.reparti,
                "handed_out": self.handed_out, "scanned": self.scanned,
                "consumed": self.consumed, "ratio": self.ratio_pct,
                "to_threshold": self.to_threshold,
                "threshold_on": ("atteint" if self.threshold_reached else
                                 self.threshold_on or "non estimable")}


@dataclass
class Carnets:
    emis: int
    injectes: int
    entames: int

    @property
    def non_injectes(self) -> int:
        return self.emis - self.injectes


@dataclass
class Deadline:
    label: str
    on: dt.date
    days_left: int


@dataclass
class MetropoleDashboard:
    programme: Programme
    today: dt.date
    stock: allocation.Stock
    communes: list[CommuneFigures]
    carnets: Carnets
    stock_pace_per_day: float
    stock_runs_out_on: dt.date | None
    deadlines: list[Deadline]
    late_tranches: list[Tranche]
    by_state: dict[S, int] = field(default_factory=dict)
    pass_stock: PassStock | None = None

    @property
    def total(self) -> CommuneFigures:
        return total_of(self.communes)


def total_of(lines: list[CommuneFigures]) -> CommuneFigures:
    t = CommuneFigures(0, "Total")
    for c in lines:
        for key in ("held", "livre", "reparti", "handed_out", "scanned", "consumed"):
            setattr(t, key, getattr(t, key) + getattr(c, key))
    return t


# ---------------------------------------------------------------- building blocks

def states_by_commune(session: Session, programme_id: int,
                      commune_id: int | None = None) -> dict[int, dict[S, int]]:
    """Pass per commune id (0: none) and state, from ``position_counts``."""
    ledger.settle(session, programme_id)
    query = (sa.select(PositionCount.commune_id, PositionCount.state,
                       sa.func.sum(PositionCount.count))
             .where(PositionCount.programme_id == programme_id)
             .group_by(PositionCount.commune_id, PositionCount.state))
    if commune_id is not None:
        query = query.where(PositionCount.commune_id == commune_id)
    result: dict[int, dict[S, int]] = defaultdict(lambda: defaultdict(int))
    for commune, state, n in session.execute(query):
        if n:
            result[commune][S(state)] += int(n)
    return result


def states_by_holder(session: Session, programme_id: int, commune_id: int
                     ) -> dict[int, dict[S, int]]:
    ledger.settle(session, programme_id)
    result: dict[int, dict[S, int]] = defaultdict(lambda: defaultdict(int))
    for holder, state, n in session.execute(
            sa.select(PositionCount.holder_id, PositionCount.state, PositionCount.count)
            .where(PositionCount.programme_id == programme_id,
                   PositionCount.commune_id == commune_id)):
        if n:
            result[holder][S(state)] += int(n)
    return result


def flow_since(session: Session, programme_id: int, nature: Nature, since: dt.date,
               until: dt.date | None = None) -> dict[int, int]:
    """Pass moved with ``nature`` per commune from ``since`` (inclusive) to
    ``until`` (exclusive), from ``flow_counts``."""
    ledger.settle(session, programme_id)
    where = [FlowCount.programme_id == programme_id, FlowCount.nature == nature,
             FlowCount.day >= since]
    if until is not None:
        where.append(FlowCount.day < until)
    return {c: int(n) for c, n in session.execute(
        sa.select(FlowCount.commune_id, sa.func.sum(FlowCount.count)).where(*where)
        .group_by(FlowCount.commune_id))}


def _figures(commune_id: int, name: str, states: dict[S, int]) -> CommuneFigures:
    return CommuneFigures(
        commune_id, name, held=sum(states.values()), livre=states.get(S.LIVRE, 0),
        reparti=states.get(S.REPARTI, 0),
        handed_out=sum(n for s, n in states.items() if s in HANDED_OUT),
        scanned=sum(n for s, n in states.items() if s in SCANNED),
        consumed=sum(n for s, n in states.items() if s in CONSUMED))


def project(figures: CommuneFigures, programme: Programme, pace_count: int,
            today: dt.date) -> CommuneFigures:
    """Convention art. 5: when will the commune reach the threshold at the recent pace?"""
    c = allocation.Consumption(figures.held, figures.consumed)
    figures.to_threshold = c.to_threshold(programme.abondement_threshold_pct)
    figures.threshold_reached = c.reaches(programme.abondement_threshold_pct)
    figures.pace_per_day = pace_count / PACE_DAYS
    if not figures.threshold_reached and figures.held and figures.pace_per_day > 0:
        figures.threshold_on = today + dt.timedelta(
            days=math.ceil(figures.to_threshold / figures.pace_per_day))
    return figures


def commune_figures(session: Session, programme: Programme, today: dt.date,
                    commune_ids: list[int] | None = None) -> list[CommuneFigures]:
    """One line per convention of the programme (or only ``commune_ids``)."""
    query = (sa.select(Convention.commune_id, Tenant.name)
             .join(Tenant, Tenant.id == Convention.commune_id)
             .where(Convention.programme_id == programme.id).order_by(Tenant.name))
    if commune_ids is not None:
        query = query.where(Convention.commune_id.in_(commune_ids))
    conventions = session.execute(query).all()
    states = states_by_commune(session, programme.id,
                               commune_ids[0] if commune_ids and len(commune_ids) == 1 else None)
    pace = flow_since(session, programme.id, Nature.CONTRE_PAIEMENT,
                      today - dt.timedelta(days=PACE_DAYS), today + dt.timedelta(days=1))
    return [project(_figures(cid, name, states.get(cid, {})), programme, pace.get(cid, 0), today)
            for cid, name in conventions]


def carnets(session: Session, programme: Programme, commune_id: int | None = None) -> Carnets:
    """Carnets émis / injectés / entamés (#APTIC's dashboard). Bounded by the
    programme (index on programme, state)."""
    emis = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(PassOrder.carnet_count), 0))
        .where(PassOrder.programme_id == programme.id, PassOrder.activated_at.is_not(None))
    ).scalar_one()
    where = [Pass.programme_id == programme.id]
    if commune_id is not None:
        where.append(Pass.commune_id == commune_id)
        emis = session.execute(
            sa.select(sa.func.count(sa.distinct(Pass.carnet_id))).where(*where)).scalar_one()

    # One pass over the programme's index (FILTER: PostgreSQL, SQLite >= 3.30).
    injectes, entames = session.execute(
        sa.select(sa.func.count(sa.distinct(Pass.carnet_id)).filter(Pass.state.in_(HANDED_OUT)),
                  sa.func.count(sa.distinct(Pass.carnet_id)).filter(Pass.state.in_(SCANNED)))
        .where(*where, Pass.state.in_(HANDED_OUT | SCANNED))).one()
    return Carnets(int(emis), int(injectes), int(entames))


def deadlines(programme: Programme, today: dt.date) -> list[Deadline]:
    items = [("Fin des demandes d'amorçage et d'abondement (art. 4, 5)",
              programme.request_window_end),
             ("Retour d'expérience écrit des communes (art. 9)", programme.experience_due_on),
             ("Fin de validité des pass (art. 3)", programme.valid_until),
             ("Fin de la période de tolérance", programme.tolerance_until),
             ("Échéance des conventions (art. 2)", programme.convention_ends_on)]
    return sorted((Deadline(label, on, (on - today).days) for label, on in items if on),
                  key=lambda d: d.on)


def late_tranches(session: Session, programme: Programme, today: dt.date) -> list[Tranche]:
    rows = session.execute(
        sa.select(Tranche).join(Convention, Convention.id == Tranche.convention_id)
        .where(Convention.programme_id == programme.id,
               Tranche.status.in_((TrancheStatus.CONFIRMEE, TrancheStatus.EXPEDIEE)),
               Tranche.due_on < today).order_by(Tranche.due_on)).scalars()
    return [t for t in rows if t.is_late(today)]


def stock_pace(session: Session, programme: Programme, today: dt.date) -> float:
    committed = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Tranche.quantity), 0))
        .join(Convention, Convention.id == Tranche.convention_id)
        .where(Convention.programme_id == programme.id, Tranche.status.in_(allocation.COMMITTED),
               Tranche.confirmed_on > today - dt.timedelta(days=PACE_DAYS),
               Tranche.confirmed_on <= today)).scalar_one()
    return int(committed) / PACE_DAYS


def _runs_out(stock: allocation.Stock, pace: float, today: dt.date) -> dt.date | None:
    """Art. 6: what is left to commit runs out at today + available / recent pace."""
    if stock.available <= 0:
        return today
    if pace > 0:
        return today + dt.timedelta(days=math.ceil(stock.available / pace))
    return None


def metropole_headline(session: Session, programme: Programme, today: dt.date
                       ) -> MetropoleDashboard:
    """The page's figures only (stock, carnets, run-out, late deliveries);
    the per-commune lines come with their lazy panel."""
    stock = allocation.stock(session, programme)
    pace = stock_pace(session, programme, today)
    return MetropoleDashboard(programme, today, stock, [], carnets(session, programme), pace,
                              _runs_out(stock, pace, today), deadlines(programme, today),
                              late_tranches(session, programme, today),
                              pass_stock=pass_stock(session, programme))


def metropole_dashboard(session: Session, programme: Programme, today: dt.date
                        ) -> MetropoleDashboard:
    stock = allocation.stock(session, programme)
    pace = stock_pace(session, programme, today)
    runs_out = _runs_out(stock, pace, today)
    by_state: dict[S, int] = defaultdict(int)
    for states in states_by_commune(session, programme.id).values():
        for state, n in states.items():
            by_state[state] += n
    return MetropoleDashboard(programme, today, stock, commune_figures(session, programme, today),
                              carnets(session, programme), pace, runs_out,
                              deadlines(programme, today), late_tranches(session, programme, today),
                              dict(by_state), pass_stock(session, programme))


# ---------------------------------------------------------------- the stock equation (art. 6)

@dataclass(frozen=True)
class Term:
    key: str
    short: str      # in the equation's sentence
    label: str      # on its figure
    count: int


# Every pass issued is in exactly one state: pass émis = Σ pass per state
# (tests/test_stock_equation.py checks it against the ledger and the pass
# table). The stock pages show these terms, and only these, under the equation.
STOCK_TERMS: tuple[tuple[str, str, str, frozenset[S]], ...] = (
    ("a_activer", "à activer", "À activer (chez l'émetteur, numéro de mandat attendu)",
     frozenset({S.EMIS})),
    ("disponibles", "disponibles",
     "Disponibles dans le stock de la Métropole (activés ou restitués)",
     frozenset({S.ACTIVE, S.RESTITUE})),
    ("communes", "confiés aux communes", "Confiés aux communes (livrés, non répartis)",
     frozenset({S.LIVRE})),
    ("structures", "confiés aux structures",
     "Confiés aux structures prescriptrices (répartis, non remis)", frozenset({S.REPARTI})),
    ("remis", "remis", "Remis aux bénéficiaires (non scannés)", frozenset({S.DISTRIBUE})),
    ("scannes", "scannés", "Scannés (pas encore mis en contre-paiement)", frozenset({S.SCANNE})),
    ("contre_paiement", "mis en contre-paiement", "Mis en contre-paiement (à payer)",
     frozenset({S.CONTRE_PAIEMENT})),
    ("payes", "payés", "Payés aux opérateurs", frozenset({S.PAYE})),
    ("bloques", "bloqués", "Bloqués", frozenset({S.BLOQUE})),
    ("annules", "annulés", "Annulés", frozenset({S.ANNULE})),
    ("expires", "expirés", "Expirés (avoir)", frozenset({S.EXPIRE})),
)
assert sorted(s.value for *_labels, states in STOCK_TERMS for s in states) == sorted(
    s.value for s in S), "every pass state is in exactly one term of the stock equation"


@dataclass(frozen=True)
class PassStock:
    """Émis = Σ terms. ``issued`` comes from the orders (carnets × pass per
    carnet), the terms from the ledger's balances per state: the page shows
    a gap if they ever disagree."""
    issued: int
    terms: tuple[Term, ...]

    def count(self, key: str) -> int:
        return next(t.count for t in self.terms if t.key == key)

    @property
    def available(self) -> int:
        """Pass that exist and are in the Métropole's stock (0 before any is issued)."""
        return self.count("disponibles")

    @property
    def gap(self) -> int:
        return self.issued - sum(t.count for t in self.terms)


def pass_stock(session: Session, programme: Programme) -> PassStock:
    by_state: dict[S, int] = defaultdict(int)
    for states in states_by_commune(session, programme.id).values():
        for state, n in states.items():
            by_state[state] += n
    carnets_ordered = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(PassOrder.carnet_count), 0))
        .where(PassOrder.programme_id == programme.id)).scalar_one()
    return PassStock(int(carnets_ordered) * programme.pass_per_carnet,
                     tuple(Term(key, short, label, sum(by_state.get(s, 0) for s in states))
                           for key, short, label, states in STOCK_TERMS))


# ---------------------------------------------------------------- monthly series

def months_between(first: dt.date, last: dt.date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def monthly_flows(session: Session, programme_id: int, natures: list[Nature],
                  commune_id: int | None = None) -> dict[str, dict[Nature, int]]:
    """Pass per month (YYYY-MM) and nature from ``flow_counts``."""
    ledger.settle(session, programme_id)
    where = [FlowCount.programme_id == programme_id, FlowCount.nature.in_(natures)]
    if commune_id is not None:
        where.append(FlowCount.commune_id == commune_id)
    result: dict[str, dict[Nature, int]] = defaultdict(lambda: defaultdict(int))
    # Summed over communes in SQL (portable GROUP BY day), months in Python.
    for day, nature, n in session.execute(
            sa.select(FlowCount.day, FlowCount.nature, sa.func.sum(FlowCount.count)).where(*where)
            .group_by(FlowCount.day, FlowCount.nature)):
        result[f"{day:%Y-%m}"][Nature(nature)] += int(n)
    return result


# ---------------------------------------------------------------- commune

@dataclass
class StructureLine:
    structure_id: int
    name: str
    stock: int              # réparti, not yet handed out
    distributions: int
    handed_out: int


def structure_lines(session: Session, programme: Programme, commune: Tenant) -> list[StructureLine]:
    holders = states_by_holder(session, programme.id, commune.id)
    handed = {sid: (int(n), int(p or 0)) for sid, n, p in session.execute(
        sa.select(Distribution.structure_id, sa.func.count(), sa.func.sum(Distribution.pass_count))
        .where(Distribution.programme_id == programme.id, Distribution.commune_id == commune.id)
        .group_by(Distribution.structure_id))}
    structures = session.execute(sa.select(Tenant).where(
        Tenant.parent_id == commune.id, Tenant.is_prescripteur.is_(True))
        .order_by(Tenant.name)).scalars()
    return [StructureLine(s.id, s.name, holders.get(s.id, {}).get(S.REPARTI, 0),
                          *handed.get(s.id, (0, 0))) for s in structures]


def by_target_public(session: Session, programme: Programme, commune: Tenant) -> dict[str, int]:
    return {public: int(n) for public, n in session.execute(
        sa.select(Distribution.target_public, sa.func.sum(Distribution.pass_count))
        .where(Distribution.programme_id == programme.id, Distribution.commune_id == commune.id)
        .group_by(Distribution.target_public).order_by(Distribution.target_public))}


def questionnaire(session: Session, programme: Programme, commune: Tenant
                  ) -> dict[str, dict[str, int]]:
    """Aggregated answers only (art. 8): question → answer → beneficiaries."""
    result: dict[str, dict[str, int]] = defaultdict(dict)
    for question, answer, n in session.execute(
            sa.select(QuestionnaireAnswer.question, QuestionnaireAnswer.answer, sa.func.count())
            .join(Distribution, Distribution.id == QuestionnaireAnswer.distribution_id)
            .where(Distribution.programme_id == programme.id,
                   Distribution.commune_id == commune.id)
            .group_by(QuestionnaireAnswer.question, QuestionnaireAnswer.answer)
            .order_by(QuestionnaireAnswer.question, QuestionnaireAnswer.answer)):
        result[question][answer] = int(n)
    return result


def current_programme(programmes: list[Programme], today: dt.date) -> Programme | None:
    """The programme a dashboard opens on: the most recent one still within
    its validity + tolerance, else the most recent one."""
    running = [p for p in programmes if p.tolerance_until >= today]
    return max(running or programmes, key=lambda p: p.id, default=None)


def programmes_of_commune(session: Session, commune: Tenant) -> list[Programme]:
    return list(session.execute(
        sa.select(Programme).join(Convention, Convention.programme_id == Programme.id)
        .where(Convention.commune_id == commune.id).order_by(Programme.id)).scalars())


# ---------------------------------------------------------------- hooks for the opérateurs issue
# name → (French label, builder(session, programme, today) -> portal.domain.tables.Table).
# The #APTIC dashboard (portal/tenants/mandataire/dashboard.py) shows every
# registered panel lazily, with CSV/XLSX exports: e.g. "qualification"
# (pipeline of opérateurs), "releves" (statements to pay), "anomalies".
MANDATAIRE_PANELS: dict = {}
# Same for the opérateur's own dashboard (a structure tenant), to be built by
# that issue: name → (label, builder(session, structure, today) -> Table).
STRUCTURE_PANELS: dict = {}

# The opérateur panels (qualification, statements, anomalies, scans) register
# themselves in the two registries above.
from portal.domain import operateur_panels  # noqa: E402,F401
