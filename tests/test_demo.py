"""The whole demo data (``flask --app wsgi demo-data``, portal/demo.py, with
its two months of history): every role's main job can be tried at once
(issue 15.5), and the demo is what the real code paths produce — the
ledger verifies, the stock equation holds, every scan is on a statement.

The other tests share a template without the history (conftest.py); this
module loads the whole demo once, and every test rolls back what it wrote."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from conftest import Browser, make_app
from helpers import tenant
from portal.demo import (CONSUMED, MORE_HANDED_OUT, TO_VALIDATE, UNSCANNED, history_start,
                         load_demo_data)
from portal.domain import allocation, clock, custody, ledger, operateurs, scanning, settlement
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.formatting import PARIS
from portal.models import (Anomaly, Carnet, Convention, HabilitationRequest, LedgerEntry, Pass,
                           Programme, RequestStatus, Scan, Statement, StatementStatus, Tranche,
                           TrancheStatus)
from portal.models.issuance import PassState


@pytest.fixture(scope="module")
def demo_app(leg, tmp_path_factory):
    from portal.cli import upgrade
    url = leg.blank_database(tmp_path_factory.mktemp("demo"))
    app = make_app(url)
    with app.app_context():
        upgrade()
        assert load_demo_data(db.session) is True
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    leg.drop(url)


@pytest.fixture
def session(demo_app):
    with demo_app.app_context():
        yield db.session
        db.session.rollback()
        db.session.remove()


def _programme(session) -> Programme:
    return session.execute(sa.select(Programme).where(Programme.prefix == "MGP2")).scalar_one()


def test_the_demo_ledger_verifies_and_the_stock_equation_holds(session):
    for programme in session.execute(sa.select(Programme)).scalars().all():
        report = ledger.verify(session, programme.id, reconcile=True)
        assert report.ok, report.problems
        assert ledger.balances(session, programme.id) == custody.state_counts(session, programme.id)
        issued = session.execute(sa.select(sa.func.count()).select_from(Pass).where(
            Pass.programme_id == programme.id)).scalar()
        assert ledger.issued_total(session, programme.id) == issued
    # The ledger's timestamps follow its order: the history first, the closings today.
    stamps = session.execute(sa.select(LedgerEntry.created_at).order_by(LedgerEntry.id)).scalars()
    stamps = list(stamps)
    assert stamps == sorted(stamps)
    assert stamps[0].astimezone(PARIS).date() == history_start(clock.today())
    assert session.execute(sa.select(sa.func.count()).select_from(Anomaly)).scalar() == 0


def test_two_closed_months_leave_statements_to_validate_and_to_pay(session):
    today = clock.today()
    before, last = history_start(today).strftime("%Y-%m"), settlement.previous_period(today)
    by_period: dict[str, list[Statement]] = {}
    for statement in session.execute(sa.select(Statement).order_by(Statement.id)).scalars():
        by_period.setdefault(statement.period, []).append(statement)
    assert set(by_period) == {before, last}
    assert sorted(s.total_cents for s in by_period[before]) == sorted(
        n * 1000 for n in CONSUMED.values())
    assert {s.status for s in by_period[before]} == {StatementStatus.VALIDE}
    draft, = by_period[last]
    assert (draft.status, draft.total_cents, draft.structure.slug) == (
        StatementStatus.BROUILLON, TO_VALIDATE[1] * 1000, TO_VALIDATE[0])
    # Every scan was made in its month through the scan path and is on a statement line.
    scans = session.execute(sa.select(Scan)).scalars().all()
    assert len(scans) == sum(CONSUMED.values()) + TO_VALIDATE[1]
    assert {s.scanned_at.astimezone(PARIS).strftime("%Y-%m") for s in scans} == {before, last}
    assert sum(len(s.lines) for rows in by_period.values() for s in rows) == len(scans)
    # Closing again changes nothing.
    assert settlement.close_month(session, before) == []
    assert settlement.close_month(session, last) == []


def test_neuilly_is_ten_pass_short_of_an_abondement_until_the_draft_is_validated(session):
    programme = _programme(session)
    neuilly = tenant(session, "neuilly-plaisance")

    def candidate():
        return next(c for c in allocation.abondement_candidates(session, programme,
                                                                clock.today())
                    if c.convention.commune_id == neuilly.id)
    c = candidate()
    assert (c.consumption.held, c.consumption.consumed) == (5000, 2490)
    assert not c.eligible and c.reason == "10 pass consommés manquent pour atteindre 50 %."
    draft = session.execute(sa.select(Statement).where(
        Statement.status == StatementStatus.BROUILLON)).scalar_one()
    settlement.validate(session, draft, actor=Actor(None, programme.issuer_id))
    c = candidate()
    assert c.consumption.consumed == 2500 and c.eligible


def test_the_demo_leaves_a_job_for_every_role(session):
    programme = _programme(session)
    assert session.execute(sa.select(sa.func.count()).select_from(HabilitationRequest).where(
        HabilitationRequest.status == RequestStatus.EN_ATTENTE)).scalar() == 1
    assert session.execute(sa.select(Tranche).join(Convention).where(
        Convention.commune_id == tenant(session, "montreuil").id,
        Tranche.status == TrancheStatus.DEMANDEE)).scalar_one()
    bondy = session.execute(sa.select(Convention).where(
        Convention.commune_id == tenant(session, "bondy").id,
        Convention.programme_id == programme.id)).scalar_one()
    assert len(allocation.latest_opinions(session, bondy)) == 1       # capacity still to give
    # The CCAS's carnets 1 to 6 are handed out and not scanned.
    states = session.execute(
        sa.select(Pass.state, sa.func.count()).join(Carnet, Carnet.id == Pass.carnet_id)
        .where(Pass.programme_id == programme.id, Carnet.number <= UNSCANNED)
        .group_by(Pass.state)).all()
    assert dict(states) == {PassState.DISTRIBUE: UNSCANNED * programme.pass_per_carnet}
    # The CCAS still has carnets to hand out, the commune carnets to split.
    ccas = tenant(session, "neuilly-plaisance-ccas")
    assert allocation.structure_stocks(session, programme, ccas.parent)[ccas.id] == 500
    assert allocation.commune_stock(session, programme, ccas.parent) == 1500
    handed = session.execute(sa.select(sa.func.count()).select_from(Pass).where(
        Pass.programme_id == programme.id, Pass.state.in_(
            (PassState.DISTRIBUE, PassState.SCANNE, PassState.CONTRE_PAIEMENT)))).scalar()
    assert handed == (UNSCANNED + sum(MORE_HANDED_OUT.values())) * programme.pass_per_carnet


# Each role's home page shows its « À traiter »: a tile to act on, or a line
# saying who must (portal/domain/todo.py, templates/tenants/_todo.html).
ROLE_HOMES = [
    ("mgp.admin", "/metropole/mgp/", "Demandes d'amorçage à confirmer"),
    ("mgp.agent", "/metropole/mgp/", "En attente d'un administrateur de la Métropole"),
    ("aptic.admin", "/mandataire/aptic/", "Relevés de contre-paiement à valider"),
    ("aptic.admin", "/mandataire/aptic/", "Relevés validés à payer"),
    ("aptic.admin", "/mandataire/aptic/", "Demandes d'habilitation à examiner"),
    ("aptic.agent", "/mandataire/aptic/", "En attente d'un administrateur #APTIC"),
    ("hub.agent", "/hub/francilin/", "Conventions en attente d'un avis du Hub"),
    ("referent.neuilly-plaisance", "/commune/neuilly-plaisance/",
     "Carnets reçus à répartir entre les prescripteurs"),
    ("referent.montreuil", "/commune/montreuil/", "En attente de la confirmation de la Métropole"),
    ("referent.bondy", "/commune/bondy/", "En attente de l'avis du Hub Francil'IN"),
]


@pytest.mark.parametrize("login, home, expected", ROLE_HOMES)
def test_each_role_finds_its_job_at_home(demo_app, login, home, expected):
    page = Browser(demo_app).login(login).get(home)
    assert page.status_code == 200
    section = page.text.split('<section class="todo"', 1)[1].split("</section>", 1)[0]
    assert expected in section


def test_demo_pass_prints_a_pass_an_operateur_validates_in_one_tap(demo_app):
    result = demo_app.test_cli_runner().invoke(args=["demo-pass", "--count", "2"])
    assert result.exit_code == 0, result.output
    serials = re.findall(r"^Pass (\S+) \(carnet n° (\d+), remis par CCAS de Neuilly-Plaisance\)",
                         result.output, re.M)
    codes = re.findall(r"code de vérification : (\S+)", result.output)
    urls = re.findall(r"QR code : (\S+)", result.output)
    assert len(serials) == len(codes) == len(urls) == 2
    assert {int(number) for _s, number in serials} <= set(range(1, UNSCANNED + 1))
    assert "operateur.neuilly-plaisance-centre-social" in result.output
    # The QR code's address opens the one-tap page for a signed-in opérateur.
    operateur = Browser(demo_app).login("operateur.neuilly-plaisance-mediatheque")
    page = operateur.get(urlsplit(urls[0]).path)
    assert page.status_code == 200 and "Valider ce pass" in page.text
    # The serial and its verification code, typed, validate the second pass.
    with demo_app.app_context():
        structure = tenant(db.session, "neuilly-plaisance-mediatheque")
        service = operateurs.active_services(db.session, structure.id)[0]
        verdict = scanning.consume(db.session, scanning.ScanInput(
            serial=serials[1][0], verification_code=codes[1], service_id=service.id),
            scanning.Scanner(structure, None))
        assert verdict.headline == "Pass validé"
        db.session.rollback()
