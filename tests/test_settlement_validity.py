"""Contre-paiement statements, end of validity, opérateur identifiers (issue 6)."""
from __future__ import annotations

import datetime as dt
import io

import pytest
import sqlalchemy as sa

from portal.domain import clock, operateurs, scanning, settlement, validity
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.models import CreditNote, LedgerEntry, Nature, Pass, PassState, Statement, StatementStatus
from scan_helpers import hand_out, programme_of, qr, structure

APTIC = Actor(None, None)


def _scan_all(session, ids, slug="bondy-centre-social", when=None):
    scanner = scanning.Scanner(structure(session, slug), None)
    service_id = operateurs.active_services(session, scanner.structure.id)[0].id
    for n, pass_id in enumerate(ids):
        code = qr(session.get(Pass, pass_id))
        outcome = scanning.consume_once(session, scanning.ScanInput(code=code, service_id=service_id,
                                                                    occurred_at=when),
                                        scanner, f"{slug}-{pass_id}")
        assert outcome.status == 201, outcome.body


def test_statement_arithmetic_idempotent_close_and_states(db_session):
    ids = hand_out(db_session, carnets=[911, 912])
    _scan_all(db_session, ids[:7])
    _scan_all(db_session, ids[7:10], slug="montreuil-mediatheque")
    period = clock.today().strftime("%Y-%m")
    with pytest.raises(Conflict):
        settlement.close_month(db_session, period)          # month not over
    later = settlement.period_end(period) + dt.timedelta(hours=1)
    first = settlement.close_month(db_session, period, now=later)
    db_session.commit()
    assert sorted(s.total_cents for s in first) == [3_000, 7_000]
    assert all(len(s.lines) * 1000 == s.total_cents for s in first)
    assert settlement.close_month(db_session, period, now=later) == []   # twice: nothing
    db_session.commit()
    statement = next(s for s in first if s.total_cents == 7_000)
    settlement.add_correction(db_session, statement, amount_cents=-1_000, label="Doublon signalé")
    assert statement.total_cents == 6_000
    csv_text = settlement.to_csv(statement)
    assert csv_text.startswith("\ufeffreleve;") and "TOTAL" in csv_text and ";6000;" in csv_text
    settlement.validate(db_session, statement, actor=APTIC)
    db_session.commit()
    with pytest.raises(Conflict):
        settlement.add_correction(db_session, statement, amount_cents=500, label="x")
    states = {db_session.get(Pass, i).state for i in ids[:7]}
    assert states == {PassState.CONTRE_PAIEMENT}
    # undo is refused once the statement is validated
    scan = db_session.execute(sa.select(scanning.Scan).where(scanning.Scan.pass_id == ids[0])).scalar_one()
    with pytest.raises(Conflict):
        scanning.undo(db_session, scan, scanning.Scanner(structure(db_session), None),
                      reason="erreur", window_minutes=30)
    db_session.rollback()
    statement = db_session.get(Statement, statement.id)
    with pytest.raises(InvalidInput):
        settlement.mark_paid(db_session, statement, bank_reference="", paid_on=clock.today(),
                             actor=APTIC)
    settlement.mark_paid(db_session, statement, bank_reference="VIR-2026-001",
                         paid_on=clock.today(), actor=APTIC)
    db_session.commit()
    assert statement.status is StatementStatus.PAYE
    assert {db_session.get(Pass, i).state for i in ids[:7]} == {PassState.PAYE}
    natures = db_session.execute(sa.select(LedgerEntry.nature, sa.func.sum(LedgerEntry.count))
                                 .group_by(LedgerEntry.nature)).all()
    counts = dict(natures)
    assert counts[Nature.CONTRE_PAIEMENT] == 7 and counts[Nature.PAIEMENT] == 7
    from portal.printing.statements import render_attestation_pdf, render_statement_pdf
    for render in (render_statement_pdf, render_attestation_pdf):
        out = io.BytesIO()
        render(statement, out)
        assert out.getvalue().startswith(b"%PDF")


def test_validity_timeline_and_distribution_blocking(db_session):
    programme = programme_of(db_session)
    mgp = db_session.execute(sa.select(validity.Tenant).where(validity.Tenant.slug == "mgp")).scalar_one()
    bondy = db_session.execute(sa.select(validity.Tenant).where(validity.Tenant.slug == "bondy")).scalar_one()
    end = programme.valid_until
    assert validity.alerts_for(db_session, mgp, end - dt.timedelta(days=31)) == []
    alerts = validity.alerts_for(db_session, mgp, end - dt.timedelta(days=30))
    assert alerts and "30 jour" in alerts[0].message
    assert validity.alerts_for(db_session, bondy, end - dt.timedelta(days=20))
    validity.ensure_distribution_allowed(programme, end)
    with pytest.raises(Conflict):
        validity.ensure_distribution_allowed(programme, end + dt.timedelta(days=1))
    with pytest.raises(Conflict):
        validity.propose_blocking(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=16))
    with pytest.raises(Conflict):
        validity.validate_blocking(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=15))
    validity.propose_blocking(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=15))
    validity.validate_blocking(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=15))
    with pytest.raises(Conflict) as raised:
        validity.ensure_distribution_allowed(programme, end - dt.timedelta(days=14))
    assert "Distribution arrêtée" in raised.value.message
    with pytest.raises(Conflict):
        validity.acknowledge_cost(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=8))
    validity.acknowledge_cost(db_session, programme, actor=APTIC, today=end - dt.timedelta(days=7))
    assert validity.is_expired(programme, programme.tolerance_until) is False
    assert validity.is_expired(programme, programme.tolerance_until + dt.timedelta(days=1))


def test_closing_statement_expires_unused_pass_with_a_credit_note(db_session):
    programme = programme_of(db_session)
    ids = hand_out(db_session, carnets=[913])
    _scan_all(db_session, ids[:3])
    end = programme.valid_until
    with pytest.raises(Conflict):
        validity.closing_statement(db_session, programme, actor=APTIC, today=end + dt.timedelta(days=36))
    unused = db_session.execute(sa.select(sa.func.count()).where(
        Pass.programme_id == programme.id, Pass.state.in_(validity.UNUSED_STATES))).scalar()
    note = validity.closing_statement(db_session, programme, actor=APTIC,
                                      today=end + dt.timedelta(days=37))
    db_session.commit()
    assert note.pass_count == unused and note.amount_cents == unused * programme.face_value_cents
    assert validity.closing_statement(db_session, programme, actor=APTIC,
                                      today=end + dt.timedelta(days=40)).id == note.id
    assert db_session.execute(sa.select(sa.func.count()).select_from(CreditNote)).scalar() == 1
    assert db_session.get(Pass, ids[0]).state is PassState.SCANNE
    assert db_session.get(Pass, ids[5]).state is PassState.EXPIRE
    expired = db_session.execute(sa.select(sa.func.sum(LedgerEntry.count)).where(
        LedgerEntry.nature == Nature.EXPIRATION)).scalar()
    assert expired == unused


def test_opposition_blocks_a_range(db_session):
    programme = programme_of(db_session)
    ids = hand_out(db_session, carnets=[914])
    first, last = db_session.get(Pass, ids[2]).serial, db_session.get(Pass, ids[4]).serial
    assert validity.oppose(db_session, programme, first, last, reason="Carnet volé",
                           actor=APTIC) == 3
    with pytest.raises(InvalidInput):
        validity.oppose(db_session, programme, first, last, reason="", actor=APTIC)


@pytest.mark.parametrize("siret, ok", [("73282932000074", True), ("732 829 320 00074", True),
                                       ("73282932000075", False), ("1234", False),
                                       ("35600000000010", True)])
def test_siret_luhn(siret, ok):
    if ok:
        assert operateurs.normalise_siret(siret)
    else:
        with pytest.raises(InvalidInput):
            operateurs.normalise_siret(siret)


@pytest.mark.parametrize("iban, ok", [("FR76 3000 6000 0112 3456 7890 189", True),
                                      ("FR7630006000011234567890188", False),
                                      ("DE89370400440532013000", True), ("FR76", False),
                                      ("GB82WEST12345698765432", True)])
def test_iban_mod97(iban, ok):
    if ok:
        assert operateurs.normalise_iban(iban)
    else:
        with pytest.raises(InvalidInput):
            operateurs.normalise_iban(iban)


def test_siret_is_unique(db_session):
    a, b = structure(db_session), structure(db_session, "montreuil-mediatheque")
    operateurs.set_siret(db_session, a, "73282932000074")
    with pytest.raises(Conflict):
        operateurs.set_siret(db_session, b, "73282932000074")


def test_web_pages_of_aptic_commune_and_metropole(app, browser_factory):
    """Smoke: the new pages render and their main forms work."""
    with app.app_context():
        ids = hand_out(db.session, carnets=[915])
        _scan_all(db.session, ids[:2])
        db.session.commit()
    aptic = browser_factory().login("aptic.admin")
    for url in ("/mandataire/aptic/operateurs", "/mandataire/aptic/anomalies",
                "/mandataire/aptic/contre-paiement", "/mandataire/aptic/fin-de-validite"):
        response = aptic.get(url)
        assert response.status_code == 200, url
    response = aptic.post("/mandataire/aptic/contre-paiement/cloture", {"period": "2099-01"})
    assert response.status_code == 409 and "pas terminé" in response.text
    response = aptic.post("/mandataire/aptic/contre-paiement/cloture", {"period": "janvier"})
    assert response.status_code == 422
    with app.app_context():
        bondy_social = structure(db.session)
    response = aptic.post(f"/mandataire/aptic/operateurs/{bondy_social.id}/qualification",
                          {"qualification": "suspendu", "reason": ""})
    assert response.status_code == 422 and "motif" in response.text
    response = aptic.post(f"/mandataire/aptic/operateurs/{bondy_social.id}/qualification",
                          {"qualification": "suspendu", "reason": "Contrôle en cours"})
    assert response.status_code == 303
    referent = browser_factory().login("referent.bondy")
    assert "Centre social" in referent.get("/commune/bondy/operateurs").text
    response = referent.post(f"/commune/bondy/operateurs/{bondy_social.id}/approbation",
                             {"approve": "0"})
    assert response.status_code == 303
    other = structure_id_of(app, "montreuil-mediatheque")
    assert referent.post(f"/commune/bondy/operateurs/{other}/approbation",
                         {"approve": "0"}).status_code == 404
    mgp = browser_factory().login("mgp.admin")
    page = mgp.get("/metropole/mgp/fin-de-validite")
    assert page.status_code == 200 and "Fin de validité" in page.text
    with app.app_context():
        programme_id = programme_of(db.session).id
    response = mgp.post(f"/metropole/mgp/fin-de-validite/{programme_id}/bloquer")
    assert response.status_code == 409 and "proposé" in response.text


def structure_id_of(app, slug):
    with app.app_context():
        return structure(db.session, slug).id


def test_closing_statement_button_reports_the_credit_in_french(app, browser_factory):
    """#APTIC's "état contradictoire" button (J+37, art. 11): the flash message
    writes the count and the euros the French way and ends with a full stop."""
    with app.app_context():
        programme = programme_of(db.session)
        programme_id = programme.id
        unused = db.session.execute(sa.select(sa.func.count()).where(
            Pass.programme_id == programme.id, Pass.state.in_(validity.UNUSED_STATES))).scalar()
        app.config["PORTAL_TODAY"] = (programme.valid_until + dt.timedelta(days=37)).isoformat()
        face = programme.face_value_cents
    aptic = browser_factory().login("aptic.admin")
    response = aptic.post(f"/mandataire/aptic/fin-de-validite/{programme_id}/etat-contradictoire",
                          follow_redirects=True)
    assert response.status_code == 200
    from portal.formatting import format_count, format_eur
    expected = (f"État contradictoire : {format_count(unused)} pass non utilisés expirés, "
                f"avoir de {format_eur(unused * face)}.")
    import html
    assert expected in html.unescape(response.text)
