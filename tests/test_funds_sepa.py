"""Funds of the mandate, SEPA payment runs, camt.053 bank statements (issue 17)."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree
from schwifty import IBAN

from helpers import programme, tenant
from sepa_helpers import MANDATE_IBAN, PAIN, camt_from_pain as _camt
from portal.domain import camt, funds, ledger, operateurs, reddition, sepa, settlement
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.formatting import PARIS
from portal.models import (BankDetails, BankImport, BankLine, BankOutcome, FundAdvance,
                           LedgerEntry, LineStatus, Mandate, OperateurProfile, PaymentLine,
                           PaymentRun, Qualification, ReviewStatus, RunStatus, Statement,
                           StatementLine, StatementStatus, Tenant, User)
from portal.models.ledger import Nature

PAIN_XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
MANDATE_BIC = "BDFEFRPPCCT"
TODAY = dt.datetime.now(PARIS).date()   # the portal counts days in Paris time


def _actor(session) -> Actor:
    admin = session.execute(sa.select(User).where(User.email.like("aptic.admin@%"))).scalar_one()
    aptic = session.execute(sa.select(Tenant).where(Tenant.kind == TenantKind.MANDATAIRE)
                            ).scalars().first()
    return Actor(admin.id, aptic.id)


def _mandate(session) -> Mandate:
    mandate = session.execute(sa.select(Mandate).order_by(Mandate.id)).scalars().first()
    if not mandate.account_iban:
        sepa.set_account(session, mandate, holder="#APTIC mandat MGP", iban=MANDATE_IBAN,
                         bic=MANDATE_BIC)
    return mandate


_counter = iter(range(1, 10_000))


def _operateurs(session, count: int, public: set[int], actor: Actor) -> list[Tenant]:
    commune = tenant(session, "bondy")
    made = []
    for i in range(count):
        n = next(_counter)
        structure = Tenant(kind=TenantKind.STRUCTURE, slug=f"op-sepa-{n}",
                           name=f"Opérateur SEPA {n}", parent_id=commune.id, is_operateur=True)
        session.add(structure)
        session.flush()
        session.add(OperateurProfile(structure_id=structure.id,
                                     qualification=Qualification.QUALIFIE,
                                     is_public_body=i in public))
        iban = IBAN.generate("FR", bank_code="30004", account_code=f"{n:011d}").compact
        details = operateurs.submit_bank_details(session, structure, holder=structure.name,
                                                 iban=iban, bic="BNPAFRPPXXX", actor=actor)
        operateurs.review_bank_details(session, details, accept=True, reason="", actor=actor)
        made.append(structure)
    return made


def _validated_statement(session, structure: Tenant, period: str, rng: random.Random,
                         actor: Actor) -> Statement:
    """A statement with lines of the mandate's programme (contre-paiement amounts and a
    correction), validated by the domain."""
    prog = programme(session, "MGP2")
    statement = Statement(structure_id=structure.id, period=period,
                          status=StatementStatus.BROUILLON)
    session.add(statement)
    session.flush()
    for _ in range(rng.randint(1, 3)):
        session.add(StatementLine(statement_id=statement.id, programme_id=prog.id,
                                  label="service", amount_cents=rng.randint(1, 40) * 1000))
    session.add(StatementLine(statement_id=statement.id, programme_id=prog.id,
                              label="correction", amount_cents=-rng.randint(0, 9) * 10 or 5))
    session.flush()
    session.refresh(statement)
    return settlement.validate(session, statement, actor=actor)


def test_fifty_operateurs_month(db_session):
    """50 opérateurs (2 public): one XSD-valid pain.001 whose control sum equals the
    validated statements' totals to the cent; a camt.053 built from it with one returned
    transfer and one unknown line marks 48 paid, re-opens one, lists one; re-import is a
    no-op."""
    session = db_session
    actor, mandate, rng = _actor(session), _mandate(session), random.Random(17)
    structures = _operateurs(session, 50, {7, 23}, actor)
    statements = [_validated_statement(session, s, "2026-10", rng, actor) for s in structures]
    public_ids = {structures[7].id, structures[23].id}
    sepa_statements = [s for s in statements if s.structure_id not in public_ids]
    expected = sum(Decimal(line.amount_cents) / 100 for s in sepa_statements for line in s.lines)
    funds.record_advance(session, mandate, reference="AV-2026-1", amount_cents=400_000_00,
                         received_on=TODAY, actor=actor)
    session.commit()

    todo = sepa.payable(session, mandate)
    assert {s.id for s, _b in todo.sepa} >= {s.id for s in sepa_statements}
    assert {s.structure_id for s in todo.public} >= public_ids
    ours = {s.id for s in statements}
    run = sepa.prepare_run(session, mandate, execution_date=TODAY, actor=actor, today=TODAY)
    assert {line.statement_id for line in run.lines} & ours == {s.id for s in sepa_statements}
    assert len(run.lines) == 48
    data = sepa.export_run(session, mandate, run, actor=actor)
    session.commit()

    # XSD-valid (the official schema shipped by sepaxml, checked here with lxml) ...
    schema = etree.XMLSchema(etree.parse(str(PAIN_XSD)))
    doc = etree.fromstring(data)
    assert schema.validate(doc), schema.error_log
    ns = {"p": PAIN}
    assert Decimal(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns)) == expected
    assert doc.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=ns) == "48"
    assert doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=ns) == run.message_id
    assert doc.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=ns) == MANDATE_IBAN
    e2e = [t.text for t in doc.iterfind(".//p:EndToEndId", ns)]
    assert len(set(e2e)) == 48 and set(e2e) == {line.end_to_end_id for line in run.lines}
    by_e2e = {line.end_to_end_id: line for line in run.lines}
    for tx in doc.iterfind(".//p:CdtTrfTxInf", ns):
        line = by_e2e[tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns)]
        assert Decimal(tx.findtext("p:Amt/p:InstdAmt", namespaces=ns)) * 100 == \
            line.statement.total_cents
        assert sepa.statement_reference(line.statement) in tx.findtext(
            "p:RmtInf/p:Ustrd", namespaces=ns)
    # ... immutable once exported: the same bytes again, and a new run pays nothing twice.
    assert sepa.export_run(session, mandate, run, actor=actor) == data
    with pytest.raises(Conflict):
        sepa.prepare_run(session, mandate, execution_date=TODAY, actor=actor, today=TODAY)
    session.rollback()

    returned_line = run.lines[4]
    bank_file = _camt(data, returned=4, unknown=True)
    entries_before = session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)).scalar()
    record, created = camt.import_statement(session, mandate, bank_file, filename="releve.xml",
                                            actor=actor)
    session.commit()
    assert created and (record.paid, record.returned, record.unknown) == (48, 1, 1)
    for s in sepa_statements:
        session.refresh(s)
    paid = [s for s in sepa_statements if s.status is StatementStatus.PAYE]
    assert len(paid) == 47 and all(s.paid_on == TODAY and s.bank_reference for s in paid)
    reopened = returned_line.statement
    assert reopened.status is StatementStatus.VALIDE and reopened.paid_on is None
    assert returned_line.status is LineStatus.RETOURNE
    assert "AC04" in returned_line.return_reason and "compte clôturé" in returned_line.return_reason
    assert operateurs.current_bank_details(session, reopened.structure_id) is None
    assert [line.end_to_end_id for line in camt.unmatched(session, mandate)] == ["INCONNU-0001"]
    report = ledger.verify(session)
    assert report.ok, report.problems

    # The same file again changes nothing.
    entries_after = session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)).scalar()
    assert entries_after > entries_before
    snapshot = [(s.id, s.status, s.paid_on) for s in sepa_statements]
    again, created = camt.import_statement(session, mandate, bank_file, filename="x.xml",
                                           actor=actor)
    session.commit()
    assert not created and again.id == record.id
    assert session.execute(sa.select(sa.func.count()).select_from(BankImport)).scalar() == 1
    for s in sepa_statements:
        session.refresh(s)
    assert [(s.id, s.status, s.paid_on) for s in sepa_statements] == snapshot
    assert session.execute(sa.select(sa.func.count()).select_from(LedgerEntry)).scalar() == \
        entries_after
    # Funds: advance − 48 transfers + 1 return.
    position = funds.position(session, mandate, TODAY)
    assert position.available_cents == 400_000_00 - int(expected * 100) + returned_line.amount_cents
    # The re-opened statement waits for its IBAN; once reviewed again, a new run pays it once.
    details = session.execute(sa.select(BankDetails).where(
        BankDetails.structure_id == reopened.structure_id)).scalars().first()
    assert details.status is ReviewStatus.EN_ATTENTE and "retourné" in details.review_reason
    operateurs.review_bank_details(session, details, accept=True, reason="", actor=actor)
    second = sepa.prepare_run(session, mandate, execution_date=TODAY, actor=actor, today=TODAY)
    assert [(line.statement_id, line.attempt) for line in second.lines] == [(reopened.id, 2)]
    # The reddition's funds section is the ledger, reconciled with the records.
    statement = reddition.build_statement(session, mandate, TODAY, TODAY, TODAY)
    assert not [m for m in statement.mismatches if m.startswith("Fonds")]
    assert statement.funds.advances_cents == 400_000_00
    assert statement.funds.payments_cents == int(expected * 100)
    assert statement.funds.returns_cents == returned_line.amount_cents
    assert "fonds" in statement.to_json()


def test_run_refused_beyond_funds_available(db_session):
    session = db_session
    actor, mandate, rng = _actor(session), _mandate(session), random.Random(3)
    structure, = _operateurs(session, 1, set(), actor)
    stmt = _validated_statement(session, structure, "2026-09", rng, actor)
    funds.record_advance(session, mandate, reference="AV-PETITE", amount_cents=100,
                         received_on=TODAY, actor=actor)
    session.commit()
    with pytest.raises(Conflict) as refused:
        sepa.prepare_run(session, mandate, execution_date=TODAY, actor=actor, today=TODAY)
    session.rollback()
    assert "fonds insuffisants" in refused.value.message
    assert "1,00" in refused.value.message            # the funds available, in euros
    assert session.execute(sa.select(sa.func.count()).select_from(PaymentRun)).scalar() == 0
    assert stmt.total_cents > 100


def test_advances_within_the_ceiling(db_session):
    session = db_session
    actor, mandate = _actor(session), _mandate(session)
    ceiling = mandate.advance_ceiling_cents
    funds.record_advance(session, mandate, reference="AV-1", amount_cents=ceiling - 100,
                         received_on=TODAY, actor=actor)
    with pytest.raises(InvalidInput) as refused:
        funds.record_advance(session, mandate, reference="AV-2", amount_cents=101,
                             received_on=TODAY, actor=actor)
    assert refused.value.field == "amount" and "plafond" in refused.value.message
    with pytest.raises(InvalidInput):
        funds.call_for_funds(session, mandate, reference="AF-1", amount_cents=101,
                             called_on=TODAY, note="", actor=actor)
    call = funds.call_for_funds(session, mandate, reference="AF-2", amount_cents=100,
                                called_on=TODAY, note="solde", actor=actor)
    assert call.amount_cents == 100
    entries = session.execute(sa.select(LedgerEntry).where(LedgerEntry.nature == Nature.AVANCE)
                              ).scalars().all()
    assert [(e.amount_cents, e.count) for e in entries] == [(ceiling - 100, 0)]


@pytest.mark.parametrize("name, data", [
    ("vide", b""),
    ("pas du XML", b"%PDF-1.4 pas un releve"),
    ("pain.001", b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                 b'pain.001.001.03"><CstmrCdtTrfInitn/></Document>'),
    ("entité", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document xmlns="urn:iso:'
               b'std:iso:20022:tech:xsd:camt.053.001.02">&x;</Document>'),
    ("hors schéma", b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
                    b'<BkToCstmrStmt><Stmt><Id>1</Id></Stmt></BkToCstmrStmt></Document>'),
])
def test_malformed_or_foreign_files_change_nothing(db_session, name, data):
    session = db_session
    actor, mandate = _actor(session), _mandate(session)
    with pytest.raises(InvalidInput) as refused:
        camt.import_statement(session, mandate, data, filename=name, actor=actor)
    session.rollback()
    assert refused.value.field == "fichier" and refused.value.message
    assert session.execute(sa.select(sa.func.count()).select_from(BankImport)).scalar() == 0


def test_statement_of_another_account_is_refused(db_session):
    session = db_session
    actor, mandate = _actor(session), _mandate(session)
    other = IBAN.generate("FR", bank_code="30004", account_code="00000009999").compact
    with pytest.raises(InvalidInput) as refused:
        camt.import_statement(session, mandate, _camt(b'<Document xmlns="' + PAIN.encode()
                                                      + b'"/>', iban=other, unknown=True),
                              filename="autre.xml", actor=actor)
    session.rollback()
    assert "pas celui du mandat" in refused.value.message
    assert session.execute(sa.select(sa.func.count()).select_from(BankLine)).scalar() == 0


def test_mandate_account_is_checked():
    with pytest.raises(InvalidInput) as bad_iban:
        sepa.check_account("APTIC", "FR7630001007941234567890186", MANDATE_BIC)
    assert bad_iban.value.field == "account_iban"
    with pytest.raises(InvalidInput) as bad_bic:
        sepa.check_account("APTIC", MANDATE_IBAN, "DEUTDEFF")
    assert bad_bic.value.field == "account_bic"
    assert sepa.check_account(" #APTIC ", "fr76 3000 1007 9412 3456 7890 185", "bdfefrppcct") == \
        ("#APTIC", MANDATE_IBAN, MANDATE_BIC)


def _recount(session, mandate) -> tuple[int, int, int]:
    """Funds from the supporting records alone: advances, exported transfers, returns."""
    advances = sum(a.amount_cents for a in session.execute(sa.select(FundAdvance).where(
        FundAdvance.mandate_id == mandate.id)).scalars())
    lines = session.execute(sa.select(PaymentLine).join(PaymentRun).where(
        PaymentRun.mandate_id == mandate.id, PaymentRun.status == RunStatus.EXPORTEE)).scalars()
    payments = returns = 0
    for line in lines:
        payments += line.amount_cents
    returns = sum(b.amount_cents for b in session.execute(sa.select(BankLine).where(
        BankLine.outcome == BankOutcome.RETOUR)).scalars())
    return advances, payments, returns


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(["advance", "month", "run", "bank"]),
                                st.integers(min_value=0, max_value=10_000)),
                      min_size=3, max_size=9))
def test_random_scenarios_keep_funds_non_negative_and_reconciled(db_session, steps):
    session = db_session
    actor, mandate = _actor(session), _mandate(session)
    rng = random.Random(len(steps))
    pending_files: list[bytes] = []
    for kind, value in steps:
        try:
            if kind == "advance":
                room = mandate.advance_ceiling_cents - funds.advances_total(session, mandate)
                if room > 0:
                    funds.record_advance(session, mandate, reference=f"AV-{next(_counter)}",
                                         amount_cents=min(room, 1 + value * 50),
                                         received_on=TODAY, actor=actor)
            elif kind == "month":
                for structure in _operateurs(session, 1 + value % 3, set(), actor):
                    _validated_statement(session, structure, "2026-08", rng, actor)
            elif kind == "run":
                run = sepa.prepare_run(session, mandate, execution_date=TODAY, actor=actor,
                                       today=TODAY)
                pending_files.append(sepa.export_run(session, mandate, run, actor=actor))
            elif kind == "bank" and pending_files:
                data = pending_files.pop(0)
                count = data.count(b"<CdtTrfTxInf>")
                camt.import_statement(session, mandate, _camt(
                    data, returned=value % count if value % 2 else None, unknown=value % 3 == 0,
                    prefix=f"B{next(_counter)}"), filename="r.xml", actor=actor)
            session.commit()
        except (Conflict, InvalidInput):
            session.rollback()
        position = funds.position(session, mandate, TODAY)
        assert position.available_cents >= 0
        assert position.free_cents >= 0
    advances, payments, returns = _recount(session, mandate)
    statement = reddition.build_statement(session, mandate, TODAY - dt.timedelta(days=1),
                                          TODAY + dt.timedelta(days=1), TODAY)
    f = statement.funds
    assert (f.opening_cents + f.advances_cents, f.payments_cents, f.returns_cents) == \
        (advances, payments, returns)
    assert f.closing_cents == advances - payments + returns == \
        funds.position(session, mandate, TODAY).available_cents
    assert not [m for m in statement.mismatches if m.startswith("Fonds")]


def test_form_errors_rerender_the_funds_page_with_values_kept(app, browser):
    from portal.extensions import db
    with app.app_context():
        mandate_id = _mandate(db.session).id
        db.session.commit()
    browser.login("aptic.admin")
    base = f"/mandataire/aptic/mandats/{mandate_id}/fonds"
    page = browser.get(base)
    assert page.status_code == 200 and "Fonds disponibles" in page.text
    bad = browser.post(base + "/compte", {"account_holder": "APTIC", "account_bic": "BDFEFRPPCCT",
                                         "account_iban": "FR7630001007941234567890186"})
    assert bad.status_code == 422
    assert 'id="err-compte-account_iban"' in bad.text and "IBAN invalide" in bad.text
    assert 'value="FR7630001007941234567890186"' in bad.text
    too_much = browser.post(base + "/avances", {"reference": "AV-TROP", "amount": "900 000,00",
                                               "received_on": TODAY.isoformat()})
    assert too_much.status_code == 422 and "plafond d'avance" in too_much.text
    assert 'id="err-avance-amount"' in too_much.text and 'value="900 000,00"' in too_much.text
    typo = browser.post(base + "/appels", {"reference": "AF-1", "amount": "12,345",
                                          "called_on": TODAY.isoformat()})
    assert typo.status_code == 422 and 'id="err-appel-amount"' in typo.text
    no_funds = browser.post(f"/mandataire/aptic/mandats/{mandate_id}/virements",
                            {"execution_date": TODAY.isoformat()})
    assert no_funds.status_code == 409 and 'id="erreur-formulaire"' in no_funds.text
    ok = browser.post(base + "/avances", {"reference": "AV-OK", "amount": "1 250,50",
                                         "received_on": TODAY.isoformat()})
    assert ok.status_code == 303
    with app.app_context():
        assert funds.advances_total(db.session, db.session.get(Mandate, mandate_id)) == 125_050
        db.session.rollback()
    # The Métropole's dashboard shows the funds position of its mandate.
    mgp = browser.__class__(browser.app).login("mgp.agent")
    dash = mgp.get("/metropole/mgp/tableau-de-bord")
    if dash.status_code in (301, 302, 303):
        dash = mgp.get(dash.location)
    assert "Fonds disponibles" in dash.text and "1 250,50" in dash.text.replace("\u202f", " ")
