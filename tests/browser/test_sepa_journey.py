"""Browser journey of issue 17: #APTIC prepares the payment run, downloads the
pain.001 file, imports the bank's camt.053 statement and sees the statement
paid; the opérateur then reads « payé le … » on its dashboard."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from lxml import etree

from browser.conftest import PageWatch
from browser.test_journeys import (App, assert_clean, assert_ledger_intact, hand_out_carnets,
                                   last_month_noon, login, main_text, scan_through_domain,
                                   tenant, user)
from portal.domain import funds, sepa, settlement
from portal.domain.ledger import Actor
from portal.formatting import PARIS, format_eur
from portal.models import (LedgerEntry, LineStatus, Mandate, Nature, PaymentLine, Statement,
                           StatementStatus)
from sepa_helpers import MANDATE_IBAN, PAIN, camt_from_pain


def test_aptic_pays_by_sepa_and_the_bank_statement_marks_it_paid(app, watched, chromium,
                                                                  live_server, tmp_path):
    when = last_month_noon()
    today = dt.datetime.now(PARIS).date()
    with App(app) as session:
        ids = hand_out_carnets(session, commune_slug="bondy", structure_slug="bondy-ccas",
                               prescripteur="prescripteur.bondy-ccas", carnets=[903],
                               when=when - dt.timedelta(days=1))
        scan_through_domain(session, ids[:4], structure_slug="bondy-centre-social",
                            operateur="operateur.bondy-centre-social", when=when)
        admin = user(session, "aptic.admin")
        aptic = tenant(session, "aptic")
        actor = Actor(admin.id, aptic.id)
        statement, = settlement.close_month(session, when.astimezone(PARIS).strftime("%Y-%m"))
        settlement.validate(session, statement, actor=actor)
        mandate = session.execute(sa.select(Mandate)).scalar_one()
        sepa.set_account(session, mandate, holder="#APTIC mandat MGP", iban=MANDATE_IBAN,
                         bic="BDFEFRPPCCT")
        funds.record_advance(session, mandate, reference="AV-MGP-1", amount_cents=10_000_00,
                             received_on=today, actor=actor)
        session.commit()
        statement_id, mandate_id, total = statement.id, mandate.id, statement.total_cents
        assert total == 4000

    login(watched, app, "aptic.admin")
    page = watched.page
    page.on("dialog", lambda dialog: dialog.accept())
    watched.goto(f"/mandataire/aptic/mandats/{mandate_id}")
    page.get_by_role("link", name="Fonds et virements").click()
    page.wait_for_load_state()
    text = main_text(watched)
    assert "Fonds disponibles" in text and format_eur(10_000_00) in text
    assert "1 relevé(s) validé(s) à payer par virement SEPA" in text

    page.get_by_role("button", name="Préparer la campagne de virements").click()
    page.wait_for_load_state()
    assert "Campagne préparée : 1 virement(s)" in main_text(watched)
    assert page.inner_text("#total-campagne") == format_eur(total)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Exporter le fichier de virements (pain.001)").click()
    path = tmp_path / "virements.xml"
    download_info.value.save_as(path)
    pain = path.read_bytes()
    doc = etree.fromstring(pain)
    ns = {"p": PAIN}
    assert doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == f"{total / 100:.2f}"
    e2e = doc.findtext(".//p:EndToEndId", namespaces=ns)

    # The bank's statement of the next days: the transfer is debited.
    camt_path = tmp_path / "releve-camt053.xml"
    camt_path.write_bytes(camt_from_pain(pain, booked=today, prefix="BQJ"))
    watched.goto(f"/mandataire/aptic/mandats/{mandate_id}/fonds")
    page.get_by_label("Fichier camt.053 de la banque").set_input_files(str(camt_path))
    page.get_by_role("button", name="Importer le relevé").click()
    page.wait_for_load_state()
    text = main_text(watched)
    assert "Relevé importé : 1 relevé(s) payé(s), 0 virement(s) retourné(s)" in text
    assert e2e in page.inner_text("#lignes-releve")

    watched.goto(f"/mandataire/aptic/contre-paiement/{statement_id}")
    text = main_text(watched)
    assert "Statut : payé" in text and f"payé le {today:%d/%m/%Y}" in text
    assert_clean(watched)

    with App(app) as session:
        statement = session.get(Statement, statement_id)
        assert statement.status is StatementStatus.PAYE and statement.paid_on == today
        line = session.execute(sa.select(PaymentLine).where(
            PaymentLine.statement_id == statement_id)).scalar_one()
        assert line.status is LineStatus.PAYE and line.end_to_end_id == e2e
        assert session.execute(sa.select(sa.func.sum(LedgerEntry.amount_cents)).where(
            LedgerEntry.nature == Nature.VIREMENT)).scalar() == total
        assert_ledger_intact(session)

    # The opérateur reads « payé le … » on its dashboard.
    operateur = PageWatch(chromium, live_server)
    try:
        operateur.login("admin.bondy-centre-social")
        operateur.goto("/structure/bondy-centre-social/tableau-de-bord")
        operateur.page.wait_for_selector("text=payé le")
        assert f"payé le {today:%d/%m/%Y}" in operateur.page.inner_text("main")
        assert operateur.csp_violations() == []
    finally:
        operateur.context.close()
