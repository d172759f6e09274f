"""Issue 14, item 1 and "Must show": the reddition des comptes is right to
the cent. Statement corrections reach the ledger; the reddition's totals equal
an independent recount from statements, corrections and payments."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain import clock, ledger, operateurs, reddition, scanning, settlement
from portal.domain.ledger import Actor
from portal.models import (Mandate, Nature, Pass, Scan, Statement, StatementLine,
                           StatementStatus)
from scan_helpers import hand_out, programme_of, qr, structure

APTIC = Actor(None, None)
OPERATEURS = ["bondy-centre-social", "montreuil-mediatheque"]


def _scan(session, ids, slug):
    scanner = scanning.Scanner(structure(session, slug), None)
    service_id = operateurs.active_services(session, scanner.structure.id)[0].id
    for pass_id in ids:
        outcome = scanning.consume_once(
            session, scanning.ScanInput(code=qr(session.get(Pass, pass_id)), service_id=service_id),
            scanner, f"{slug}-{pass_id}")
        assert outcome.status == 201, outcome.body
    session.commit()


def _mandate(session) -> Mandate:
    prog = programme_of(session)
    return next(m for m in session.execute(sa.select(Mandate)).scalars()
                if prog in reddition.programmes_of_mandate(session, m))


def _reddition(session):
    today = clock.today()
    return reddition.build_statement(session, _mandate(session), dt.date(2000, 1, 1),
                                     today + dt.timedelta(days=40), today)


def _close(session):
    period = clock.today().strftime("%Y-%m")
    later = settlement.period_end(period) + dt.timedelta(hours=1)
    closed = settlement.close_month(session, period, now=later)
    session.commit()
    return closed


def test_a_correction_reaches_the_ledger_and_the_reddition(db_session):
    """29 pass and a −10,00 € correction: 280,00 € owed and paid, in the
    ledger and in the reddition (not 290,00 €)."""
    before = _reddition(db_session).total.natures
    cp0, paid0 = before[Nature.CONTRE_PAIEMENT].cents, before[Nature.PAIEMENT].cents
    ids = hand_out(db_session, carnets=[921, 922, 923])[:29]
    _scan(db_session, ids, OPERATEURS[0])
    statement = next(s for s in _close(db_session) if s.structure_id == structure(
        db_session, OPERATEURS[0]).id)
    assert statement.total_cents == 29_000
    settlement.add_correction(db_session, statement, amount_cents=-1_000, label="Doublon")
    settlement.validate(db_session, statement, actor=APTIC)
    db_session.commit()
    settlement.mark_paid(db_session, statement, bank_reference="VIR-1", paid_on=clock.today(),
                         actor=APTIC)
    db_session.commit()
    booked = dict(db_session.execute(
        sa.select(ledger.LedgerEntry.nature, sa.func.sum(ledger.LedgerEntry.amount_cents))
        .where(ledger.LedgerEntry.ref_id == statement.id,
               ledger.LedgerEntry.ref_type.in_(("releve", "correction_releve")))
        .group_by(ledger.LedgerEntry.nature)).all())
    assert booked == {Nature.CONTRE_PAIEMENT: 28_000, Nature.PAIEMENT: 28_000}
    result = _reddition(db_session)
    assert result.mismatches == [] and result.ledger_ok
    assert result.total.natures[Nature.CONTRE_PAIEMENT].cents - cp0 == 28_000
    assert result.total.natures[Nature.PAIEMENT].cents - paid0 == 28_000
    assert any(p["montant_centimes"] == -1_000 and "Doublon" in p["motif"]
               and p["reference"] == f"relevé n° {statement.id}" for p in result.payments)
    assert ledger.verify(db_session).ok


def test_reddition_catches_a_statement_that_differs_from_its_ledger_entries(db_session):
    ids = hand_out(db_session, carnets=[924])
    _scan(db_session, ids[:3], OPERATEURS[0])
    statement = _close(db_session)[0]
    settlement.validate(db_session, statement, actor=APTIC)
    db_session.commit()
    # A line slipped into the validated statement behind the domain's back.
    db_session.add(StatementLine(statement_id=statement.id, amount_cents=-500, label="ajout"))
    db_session.commit()
    mismatches = _reddition(db_session).mismatches
    assert any(f"Relevé n° {statement.id}" in m and "25,00" in m and "30,00" in m
               for m in mismatches), mismatches


operation = st.one_of(
    st.tuples(st.just("scan"), st.integers(0, 1), st.integers(1, 4)),
    st.tuples(st.just("correct"), st.integers(0, 1), st.integers(-3_000, 2_000)),
    st.tuples(st.just("close"), st.just(0), st.just(0)),
    st.tuples(st.just("validate"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("pay"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("restitute"), st.just(0), st.just(0)),
)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=3, max_size=12))
def test_reddition_totals_equal_an_independent_recount(db_session, ops):
    """Random scans, month closings, corrections, validations, payments and
    restitutions: every total of the reddition — scans, mises en
    contre-paiement, paiements, restitutions, in pass and in cents — equals a
    recount from the scans, statements and their lines (corrections included)
    and the sanctions, never from the ledger. Examples accumulate in one
    database: the recount covers everything."""
    from portal.domain import allocation
    from portal.models import Convention, Sanction, SanctionKind
    state = db_session.info.setdefault("property", {"carnet": 930})
    stock: list[int] = []
    for kind, who, value in ops:
        slug = OPERATEURS[who]
        if kind == "scan":
            if len(stock) < value:
                stock += hand_out(db_session, carnets=[state["carnet"]])
                state["carnet"] += 1
            _scan(db_session, stock[:value], slug)
            del stock[:value]
        elif kind == "close":
            _close(db_session)
        else:
            draft = db_session.execute(sa.select(Statement).where(
                Statement.structure_id == structure(db_session, slug).id).order_by(
                Statement.id.desc())).scalars().first()
            if draft is None:
                continue
            if kind == "correct" and draft.status is StatementStatus.BROUILLON and value:
                settlement.add_correction(db_session, draft, amount_cents=value, label="Écart")
            elif kind == "validate" and draft.status is StatementStatus.BROUILLON:
                settlement.validate(db_session, draft, actor=APTIC)
            elif kind == "pay" and draft.status is StatementStatus.VALIDE:
                settlement.mark_paid(db_session, draft, bank_reference="VIR",
                                     paid_on=clock.today(), actor=APTIC)
            db_session.commit()
        if kind == "restitute":
            prog = programme_of(db_session)
            convention = db_session.execute(sa.select(Convention).where(
                Convention.programme_id == prog.id)).scalars().first()
            try:
                allocation.order_sanction(db_session, convention, SanctionKind.RESTITUTION,
                                          reason="Test", quantity=prog.pass_per_carnet,
                                          actor=APTIC, today=clock.today())
                db_session.commit()
            except Exception:      # nothing left to restitute: nothing written
                db_session.rollback()
    result = _reddition(db_session)
    assert result.mismatches == [], result.mismatches
    natures = result.total.natures
    prog_ids = [p.id for p in reddition.programmes_of_mandate(db_session, _mandate(db_session))]
    face = programme_of(db_session).face_value_cents

    def statements_total(*statuses):
        lines = db_session.execute(sa.select(StatementLine.amount_cents, StatementLine.pass_id)
                                   .join(Statement).where(Statement.status.in_(statuses))).all()
        return (sum(1 for _c, p in lines if p is not None), sum(c for c, _p in lines))

    assert (natures[Nature.CONTRE_PAIEMENT].count, natures[Nature.CONTRE_PAIEMENT].cents) == \
        statements_total(StatementStatus.VALIDE, StatementStatus.PAYE)
    assert (natures[Nature.PAIEMENT].count, natures[Nature.PAIEMENT].cents) == \
        statements_total(StatementStatus.PAYE)
    scans = db_session.execute(sa.select(sa.func.count()).select_from(Scan).where(
        Scan.programme_id.in_(prog_ids))).scalar_one()
    assert (natures[Nature.SCAN].count, natures[Nature.SCAN].cents) == (scans, scans * face)
    restituted = db_session.execute(sa.select(sa.func.coalesce(sa.func.sum(Sanction.quantity), 0))
                                    .where(Sanction.kind == SanctionKind.RESTITUTION)).scalar_one()
    got = natures.get(Nature.RESTITUTION)
    assert (got.count if got else 0, got.cents if got else 0) == (restituted, restituted * face)
