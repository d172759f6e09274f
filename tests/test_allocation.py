"""Allocation to communes, on the dates of the AMI 1 convention (seed 000)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from helpers import issued_and_activated, new_programme, tenant
from portal.domain import allocation, calendar, custody, ledger
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.models import Convention, OpinionKind, Pass, SanctionKind, Tranche, TrancheStatus
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature

D = dt.date
MGP = Actor(None, None)


def _ready_convention(session, prog, slug="neuilly-plaisance", *, missing: str | None = None):
    """A convention whose four art. 4 conditions hold, except ``missing``."""
    commune = tenant(session, slug)
    convention = allocation.create_convention(session, prog, commune)
    hub = tenant(session, "francilin")
    if missing != "signature":
        allocation.record_signature(session, convention, "commune", D(2020, 12, 10), "Le Maire",
                                    actor=MGP)
        allocation.record_signature(session, convention, "metropole", D(2020, 12, 15),
                                    "Le Président", actor=MGP)
    if missing != "referent":
        allocation.set_referent(session, convention, name="Camille Martin",
                                email="camille.martin@mairie.example", phone="01 43 00 00 00",
                                on=D(2020, 12, 16), actor=MGP)
    for kind in OpinionKind:
        if missing != kind.value:
            allocation.record_opinion(session, convention, hub=hub, kind=kind, favourable=True,
                                      given_on=D(2020, 12, 18), evidence="Courriel du Hub",
                                      actor=MGP)
    return convention


def _receive(session, tranche, day):
    prog = tranche.convention.programme
    numbers = allocation.available_carnet_numbers(session, prog,
                                                  tranche.quantity // prog.pass_per_carnet)
    allocation.ship_tranche(session, tranche, allocation.as_ranges(numbers), actor=MGP, today=day)
    return allocation.confirm_reception(session, tranche, received_carnets=len(numbers),
                                        missing_numbers=[], note="", actor=MGP, today=day)


def _consume(session, prog, commune_slug, count, *, paid=True):
    """Hand out, scan and (optionally) put ``count`` pass in contre-paiement."""
    commune = tenant(session, commune_slug)
    structure = tenant(session, f"{commune_slug}-centre-social")
    ids = session.execute(sa.select(Pass.id).where(
        Pass.programme_id == prog.id, Pass.holder_id == commune.id, Pass.state == S.LIVRE)
        .order_by(Pass.id).limit(count)).scalars().all()
    assert len(ids) == count
    steps = [(Nature.REPARTITION, structure.id), (Nature.DISTRIBUTION, structure.id),
             (Nature.SCAN, structure.id)]
    if paid:
        steps.append((Nature.CONTRE_PAIEMENT, structure.id))
    for nature, holder in steps:
        custody.move(session, prog, nature=nature, criteria=[Pass.id.in_(ids)],
                     to_holder_id=holder, actor=MGP)


@pytest.mark.locale_sensitive
def test_working_days_skip_weekends_and_holidays():
    # Confirmation Friday 9 July 2021: 14 July and 15 August (a Sunday) are holidays.
    assert calendar.add_working_days(D(2021, 7, 9), 20) == D(2021, 8, 9)
    # Across 1, 8 and 13 May and Pentecost Monday 24 May 2021.
    assert calendar.add_working_days(D(2021, 4, 30), 20) == D(2021, 6, 1)
    assert calendar.add_working_days(D(2021, 4, 30), 20, pentecost_worked=True) == D(2021, 5, 31)
    # Alsace-Moselle: Good Friday 2 April 2021 is a holiday there.
    assert calendar.add_working_days(D(2021, 4, 1), 1) == D(2021, 4, 2)
    assert calendar.add_working_days(D(2021, 4, 1), 1, "57") == D(2021, 4, 6)


def test_amorcage_window_and_conditions(db_session):
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 600)
    convention = _ready_convention(db_session, prog, missing=OpinionKind.CAPACITE.value)
    with pytest.raises(Conflict, match="à partir du 01/01/2021"):
        allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2020, 12, 31))
    with pytest.raises(Conflict, match="capacité"):
        allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    checklist = allocation.amorcage_conditions(db_session, convention)
    assert [c.met for c in checklist] == [True, True, True, False]
    assert "Camille Martin" in checklist[1].detail and "18/12/2020" in checklist[2].detail
    # A défavorable opinion does not count; a later favourable one does.
    hub = tenant(db_session, "francilin")
    allocation.record_opinion(db_session, convention, hub=hub, kind=OpinionKind.CAPACITE,
                              favourable=False, given_on=D(2020, 12, 20), evidence="Formations "
                              "non suivies", actor=MGP)
    assert not allocation.amorcage_conditions(db_session, convention)[3].met
    allocation.record_opinion(db_session, convention, hub=hub, kind=OpinionKind.CAPACITE,
                              favourable=True, given_on=D(2021, 1, 2), evidence="Formations "
                              "suivies le 30/12", actor=MGP)
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    assert (tranche.quantity, tranche.status) == (5000, TrancheStatus.DEMANDEE)
    with pytest.raises(Conflict, match="déjà été demandé"):
        allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 5))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    assert tranche.due_on == D(2021, 2, 1)
    with pytest.raises(Conflict, match="déjà confirmée"):
        allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))


def test_amorcage_refused_from_the_first_of_october(db_session):
    prog = new_programme(db_session)
    convention = _ready_convention(db_session, prog)
    with pytest.raises(Conflict, match="à compter du 01/10/2021"):
        allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 10, 1))
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 9, 30))
    # Issue 14, item 5: art. 4 bounds the request, not MGP's confirmation — a request made on
    # 30/09 is confirmed on 01/10 (delivery 20 jours ouvrés later), never left « demandée ».
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 10, 1))
    assert tranche.status is TrancheStatus.CONFIRMEE and tranche.confirmed_on == D(2021, 10, 1)
    assert tranche.due_on == calendar.add_working_days(D(2021, 10, 1), 20)


@pytest.mark.parametrize("missing", ["signature", "referent", "reseau", "capacite"])
def test_each_missing_condition_blocks_the_amorcage(db_session, missing):
    prog = new_programme(db_session)
    convention = _ready_convention(db_session, prog, missing=missing)
    with pytest.raises(Conflict, match="art. 4"):
        allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))


def test_abondement_at_fifty_percent_consumed_and_paid(db_session):
    prog = new_programme(db_session)
    issued_and_activated(db_session, prog, 1100)     # 11 000 pass in the Métropole's stock
    convention = _ready_convention(db_session, prog)
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    _receive(db_session, tranche, D(2021, 1, 20))

    def candidate(day=D(2021, 3, 1)):
        return next(c for c in allocation.abondement_candidates(db_session, prog, day)
                    if c.convention.id == convention.id)

    _consume(db_session, prog, "neuilly-plaisance", 2490)
    _consume(db_session, prog, "neuilly-plaisance", 9)
    _consume(db_session, prog, "neuilly-plaisance", 200, paid=False)   # scanned, not paid
    c = candidate()
    assert (c.consumption.held, c.consumption.consumed) == (5000, 2499)
    assert not c.eligible and "1 pass consommé manque pour" in c.reason
    _consume(db_session, prog, "neuilly-plaisance", 1)
    c = candidate()
    assert c.consumption.consumed == 2500 and c.eligible and c.quantity == 2500
    # Nothing from 01/10/2021.
    assert not candidate(D(2021, 10, 1)).eligible
    second = allocation.confirm_abondement(db_session, convention, actor=MGP, today=D(2021, 3, 1))
    assert second.status is TrancheStatus.CONFIRMEE and second.quantity == 2500
    # While the tranche is on its way the commune is not proposed again.
    assert "déjà en cours" in candidate().reason
    with pytest.raises(Conflict):
        allocation.confirm_abondement(db_session, convention, actor=MGP, today=D(2021, 3, 1))
    _receive(db_session, second, D(2021, 3, 15))
    c = candidate()
    assert c.consumption.held == 7500 and not c.eligible       # 2 500 of 7 500 < 50 %
    _consume(db_session, prog, "neuilly-plaisance", 1249)
    assert not candidate().eligible
    _consume(db_session, prog, "neuilly-plaisance", 1)
    assert candidate().eligible                                  # 3 750 of 7 500
    assert ledger.verify(db_session, prog.id).ok


def test_stock_exhaustion_across_fifteen_communes_gives_a_partial_last_tranche(db_session):
    # Scaled-down numbers, same rules: stock 16 230, amorçage 1 000, abondement 500.
    prog = new_programme(db_session, total_stock=16_230, amorcage_size=1000, abondement_size=500)
    from portal.models import Tenant
    communes = db_session.execute(sa.select(Tenant.slug).where(
        Tenant.kind == "commune", Tenant.parent_id == prog.commanditaire_id)
        .order_by(Tenant.slug)).scalars().all()
    assert len(communes) == 15
    tranches = []
    for slug in communes:
        convention = _ready_convention(db_session, prog, slug)
        tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 2, 1))
        tranches.append(allocation.confirm_amorcage(db_session, tranche, actor=MGP,
                                                    today=D(2021, 2, 1)))
    assert allocation.stock(db_session, prog).available == 1230
    issued_and_activated(db_session, prog, 1500)
    for tranche in tranches:
        _receive(db_session, tranche, D(2021, 2, 15))
    for slug in communes[:4]:
        _consume(db_session, prog, slug, 500)
    eligible = [c.convention for c in allocation.abondement_candidates(db_session, prog, D(2021, 4, 1))
                if c.eligible]
    assert len(eligible) == 4
    outcomes = []
    for convention in eligible:
        try:
            outcomes.append(allocation.confirm_abondement(db_session, convention, actor=MGP,
                                                          today=D(2021, 4, 1)).quantity)
        except Conflict as refusal:
            outcomes.append(refusal.message)
    # Two full tranches, then the last partial one in whole carnets, then nothing.
    assert outcomes[:3] == [500, 500, 230]
    assert "Stock de la Métropole épuisé" in outcomes[3]
    assert allocation.stock(db_session, prog).available == 0
    # With the setting off, the remainder is not handed out.
    prog.partial_last_tranche = False
    assert allocation._tranche_quantity(prog, eligible[3], 230)[0] == 0


def test_partial_last_tranche_setting(db_session):
    prog = new_programme(db_session, total_stock=5_730, amorcage_size=5000, abondement_size=2500)
    convention = _ready_convention(db_session, prog)
    quantity, note = allocation._tranche_quantity(prog, convention, 730)
    assert quantity == 730 and "partielle" in note
    prog.partial_last_tranche = False
    quantity, note = allocation._tranche_quantity(prog, convention, 730)
    assert quantity == 0 and "insuffisant" in note


def test_reception_with_discrepancy_moves_only_received_carnets(db_session):
    prog = new_programme(db_session, amorcage_size=100)
    issued_and_activated(db_session, prog, 20)
    convention = _ready_convention(db_session, prog)
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    allocation.ship_tranche(db_session, tranche, [(1, 10)], actor=MGP, today=D(2021, 1, 5))
    with pytest.raises(InvalidInput, match="carnets manquants"):
        allocation.confirm_reception(db_session, tranche, received_carnets=9, missing_numbers=[],
                                     note="", actor=MGP, today=D(2021, 1, 6))
    with pytest.raises(InvalidInput, match="ne fait pas partie"):
        allocation.confirm_reception(db_session, tranche, received_carnets=9,
                                     missing_numbers=[15], note="x", actor=MGP, today=D(2021, 1, 6))
    allocation.confirm_reception(db_session, tranche, received_carnets=9, missing_numbers=[7],
                                 note="Carton abîmé", actor=MGP, today=D(2021, 1, 6))
    assert tranche.received_quantity == 90 and tranche.discrepancy == -10
    commune = tenant(db_session, "neuilly-plaisance")
    assert custody.state_counts(db_session, prog.id)[(S.LIVRE, commune.id)] == 90
    assert custody.state_counts(db_session, prog.id)[(S.ACTIVE, prog.commanditaire_id)] == 110
    with pytest.raises(Conflict):
        allocation.confirm_reception(db_session, tranche, received_carnets=10, missing_numbers=[],
                                     note="", actor=MGP, today=D(2021, 1, 7))


def test_shipping_refuses_wrong_counts_and_unavailable_carnets(db_session):
    prog = new_programme(db_session, amorcage_size=100)
    order = issued_and_activated(db_session, prog, 12)
    convention = _ready_convention(db_session, prog)
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    with pytest.raises(Conflict, match="demandée"):
        allocation.ship_tranche(db_session, tranche, [(1, 10)], actor=MGP, today=D(2021, 1, 4))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    with pytest.raises(InvalidInput, match="10 carnets"):
        allocation.ship_tranche(db_session, tranche, [(1, 9)], actor=MGP, today=D(2021, 1, 4))
    with pytest.raises(Conflict, match="indisponible"):
        allocation.ship_tranche(db_session, tranche, [(5, 14)], actor=MGP, today=D(2021, 1, 4))
    assert order.carnet_count == 12


def test_repartition_and_take_back(db_session):
    prog = new_programme(db_session, amorcage_size=100)
    issued_and_activated(db_session, prog, 10)
    convention = _ready_convention(db_session, prog, "bondy")
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    _receive(db_session, tranche, D(2021, 1, 10))
    ccas, media = tenant(db_session, "bondy-ccas"), tenant(db_session, "bondy-mediatheque")
    given = allocation.split_carnets(db_session, convention, ccas, 4, actor=MGP)
    assert (given.numbers, given.pass_count) == ([1, 2, 3, 4], 40)
    assert given.text == "4 carnets, n° 1 à 4"
    with pytest.raises(InvalidInput, match="prescriptrice"):
        allocation.split_carnets(db_session, convention, media, 1, actor=MGP)
    with pytest.raises(Conflict, match="6 carnet"):
        allocation.split_carnets(db_session, convention, ccas, 7, actor=MGP)
    assert allocation.structure_stocks(db_session, prog, convention.commune) == {ccas.id: 40}
    taken = allocation.take_back_carnets(db_session, convention, ccas, 1, actor=MGP)
    assert (taken.numbers, taken.pass_count, taken.text) == ([4], 10, "1 carnet, n° 4")
    assert allocation.structure_carnets(db_session, prog, convention.commune) == {
        ccas.id: [1, 2, 3]}
    assert allocation.commune_stock(db_session, prog, convention.commune) == 70
    other = tenant(db_session, "montreuil-ccas")
    with pytest.raises(Exception, match="n'appartient pas"):
        allocation.split_carnets(db_session, convention, other, 1, actor=MGP)


def test_carnets_are_named_in_ranges():
    describe = allocation.describe_carnets
    assert describe([501 + i for i in range(50)]) == "50 carnets, n° 501 à 550"
    assert describe([7]) == "1 carnet, n° 7"
    assert describe([9, 1, 2, 7]) == "4 carnets, n° 1 à 2, 7 et 9"
    assert describe([1, 2, 5, 6]) == "4 carnets, n° 1 à 2 et 5 à 6"
    assert describe(list(range(1, 1201))) == "1\u202f200 carnets, n° 1 à 1200"
    assert describe([]) == "aucun carnet"


def test_the_repartition_names_the_carnets_given_and_listed(app, browser):
    """The référent's split says which carnets went where, in carnets, and the
    listing names each structure's carnets (several ranges when not contiguous)."""
    browser.login("referent.neuilly-plaisance")
    cid = _convention_id(app, "neuilly-plaisance")
    url = f"/commune/neuilly-plaisance/conventions/{cid}/repartition"
    with app.app_context():
        from portal.extensions import db
        ccas = tenant(db.session, "neuilly-plaisance-ccas").id
        social = tenant(db.session, "neuilly-plaisance-centre-social").id
    page = browser.get(url).text
    # The demo gave carnets 1 to 50 to the CCAS (1 to 6 handed out), 51 to 100 to the centre social.
    assert "44 carnets, n° 7 à 50" in page and "50 carnets, n° 51 à 100" in page
    done = browser.post(url, {"direction": "donner", "structure_id": ccas, "carnet_count": 50})
    assert done.status_code == 303
    page = browser.get(url).text
    assert "50 carnets, n° 101 à 150, confiés à CCAS de Neuilly-Plaisance." in page
    assert "94 carnets, n° 7 à 50 et 101 à 150" in page
    browser.post(url, {"direction": "reprendre", "structure_id": social, "carnet_count": 2})
    page = browser.get(url).text
    assert "2 carnets, n° 99 à 100, repris à Centre social et numérique de Neuilly-Plaisance." \
        in page
    assert "48 carnets, n° 51 à 98" in page and " pass confiés" not in page


def test_sanctions(db_session):
    prog = new_programme(db_session, amorcage_size=100)
    issued_and_activated(db_session, prog, 10)
    convention = _ready_convention(db_session, prog, "bondy")
    tranche = allocation.request_amorcage(db_session, convention, actor=MGP, today=D(2021, 1, 4))
    allocation.confirm_amorcage(db_session, tranche, actor=MGP, today=D(2021, 1, 4))
    _receive(db_session, tranche, D(2021, 1, 10))
    allocation.split_carnets(db_session, convention, tenant(db_session, "bondy-ccas"), 3, actor=MGP)
    with pytest.raises(InvalidInput, match="motif"):
        allocation.order_sanction(db_session, convention, SanctionKind.SUSPENSION, reason=" ",
                                  quantity=None, actor=MGP, today=D(2021, 6, 1))
    allocation.order_sanction(db_session, convention, SanctionKind.RESTITUTION,
                              reason="Retard significatif", quantity=80, actor=MGP,
                              today=D(2021, 6, 1))
    counts = custody.state_counts(db_session, prog.id)
    assert counts[(S.RESTITUE, prog.commanditaire_id)] == 80
    assert allocation.stock(db_session, prog).available == prog.total_stock - 100 + 80
    assert allocation.consumption(db_session, prog)[convention.commune_id].held == 20
    with pytest.raises(Conflict, match="restitution impossible"):
        allocation.order_sanction(db_session, convention, SanctionKind.RESTITUTION, reason="x",
                                  quantity=30, actor=MGP, today=D(2021, 6, 1))
    allocation.order_sanction(db_session, convention, SanctionKind.SUSPENSION, reason="Manquement",
                              quantity=None, actor=MGP, today=D(2021, 6, 1))
    assert convention.abondements_suspended
    allocation.order_sanction(db_session, convention, SanctionKind.REDUCTION, reason="Moins",
                              quantity=1000, actor=MGP, today=D(2021, 6, 1))
    assert allocation._abondement_size(prog, convention) == 1000
    entries = db_session.execute(sa.select(ledger.LedgerEntry).where(
        ledger.LedgerEntry.nature == Nature.RESTITUTION)).scalars().all()
    assert sum(e.count for e in entries) == 80 and entries[0].reason == "Retard significatif"


def test_referent_change_is_recorded_and_notifies_mgp(app, browser):
    browser.login("referent.neuilly-plaisance")
    with app.app_context():
        from portal.extensions import db
        convention_id = db.session.execute(sa.select(Convention.id).join(
            Convention.commune).where(Convention.commune.has(slug="neuilly-plaisance"))
        ).scalars().first()
    response = browser.post(f"/commune/neuilly-plaisance/conventions/{convention_id}/referent",
                            {"referent_name": "Sacha Nouveau", "referent_email": "sacha@mairie.example",
                             "referent_phone": "01 02 03 04 05"})
    assert response.status_code == 303
    mails = app.extensions["outbox"]
    assert mails and "Sacha Nouveau" in mails[-1].get_content()
    assert "mgp.admin@demo.pass-numerique.fr" in {m["To"] for m in mails}
    page = browser.get(f"/commune/neuilly-plaisance/conventions/{convention_id}").text
    assert "Sacha Nouveau" in page
    response = browser.post(f"/commune/neuilly-plaisance/conventions/{convention_id}/referent",
                            {"referent_name": "X", "referent_email": "pas-un-courriel",
                             "referent_phone": "1"})
    assert response.status_code == 422 and "Adresse électronique du référent" in response.text


def test_pages_of_every_tenant_for_allocation(app, browser_factory):
    mgp = browser_factory().login("mgp.admin")
    page = mgp.get("/metropole/mgp/allocation/2").text
    assert "Stock de la Métropole" in page and "Neuilly-Plaisance" in page
    assert "Demandes d'amorçage à confirmer" in page and "Montreuil" in page
    hub = browser_factory().login("hub.agent")
    assert "Avis sur le réseau" in hub.get("/hub/francilin/avis").text
    aptic = browser_factory().login("aptic.agent")
    assert aptic.get("/mandataire/aptic/expeditions").status_code == 200
    ref = browser_factory().login("referent.neuilly-plaisance")
    assert "Confier des carnets" in ref.get("/commune/neuilly-plaisance/conventions/"
                                            + _convention_id(app, "neuilly-plaisance")
                                            + "/repartition").text


def _convention_id(app, slug):
    from portal.extensions import db
    with app.app_context():
        return str(db.session.execute(sa.select(Convention.id).where(
            Convention.commune.has(slug=slug), Convention.programme_id == 2)).scalar_one())


def test_full_amorcage_journey_through_the_pages(app, browser_factory):
    app.config["PORTAL_TODAY"] = None
    mgp = browser_factory().login("mgp.admin")
    with app.app_context():
        from portal.extensions import db
        tranche_id = db.session.execute(sa.select(Tranche.id).where(
            Tranche.status == TrancheStatus.DEMANDEE)).scalar_one()
    assert mgp.post(f"/metropole/mgp/tranches/{tranche_id}/confirmer").status_code == 303
    assert mgp.post(f"/metropole/mgp/tranches/{tranche_id}/confirmer").status_code == 409
    aptic = browser_factory().login("aptic.admin")
    page = aptic.get("/mandataire/aptic/expeditions").text
    import re
    ranges = re.search(r'name="ranges" value="([^"]+)"', page).group(1)
    assert aptic.post(f"/mandataire/aptic/expeditions/{tranche_id}", {"ranges": "abc"}).status_code == 422
    assert aptic.post(f"/mandataire/aptic/expeditions/{tranche_id}", {"ranges": ranges}).status_code == 303
    ref = browser_factory().login("referent.montreuil")
    cid = _convention_id(app, "montreuil")
    response = ref.post(f"/commune/montreuil/tranches/{tranche_id}/reception",
                        {"received_carnets": "-1"})
    assert response.status_code == 422
    response = ref.post(f"/commune/montreuil/tranches/{tranche_id}/reception",
                        {"received_carnets": "500"})
    assert response.status_code == 303
    page = ref.get(f"/commune/montreuil/conventions/{cid}").text
    assert "reçue" in page
    # Another commune's référent cannot confirm it.
    other = browser_factory().login("referent.bondy")
    assert other.post(f"/commune/bondy/tranches/{tranche_id}/reception",
                      {"received_carnets": "500"}).status_code == 404


@pytest.mark.postgresql_only
def test_concurrent_confirmations_cannot_overdraw_the_stock(app):
    """Two MGP agents confirm at the same moment; the stock allows only one."""
    from portal.extensions import db
    with app.app_context():
        prog = new_programme(db.session, total_stock=6000, amorcage_size=5000)
        first = _ready_convention(db.session, prog, "bondy")
        second = _ready_convention(db.session, prog, "pantin")
        t1 = allocation.request_amorcage(db.session, first, actor=MGP, today=D(2021, 1, 4))
        t2 = allocation.request_amorcage(db.session, second, actor=MGP, today=D(2021, 1, 4))
        db.session.commit()
        ids = [t1.id, t2.id]
        engine = db.engine
    barrier = threading.Barrier(2)
    results = []

    def confirm(tranche_id):
        from sqlalchemy.orm import Session
        with Session(engine) as session:
            tranche = session.get(Tranche, tranche_id)
            barrier.wait()
            try:
                allocation.confirm_amorcage(session, tranche, actor=MGP, today=D(2021, 1, 4))
                session.commit()
                results.append("ok")
            except Conflict as error:
                session.rollback()
                results.append(error.message)

    threads = [threading.Thread(target=confirm, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0].startswith("Stock insuffisant") and results.count("ok") == 1
    with app.app_context():
        assert allocation.stock(db.session, db.session.get(type(prog), prog.id)).available == 1000
