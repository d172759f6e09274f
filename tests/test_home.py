"""The « À traiter » section of the tenants' home pages (portal/domain/todo.py):
each line's count equals a recount with plain queries, its link answers 200
for the same user, and a tenant never counts another tenant's things. A
member sees as tiles only what this member can do; the rest is listed as
waiting, saying who must (another role of the space, or another tenant)."""
from __future__ import annotations

import datetime as dt
import html
import re

import sqlalchemy as sa

from helpers import tenant
from portal.domain import allocation, clock, issuance
from portal.domain.ledger import Actor
from portal.extensions import db
from portal.models import (Convention, HabilitationRequest, HubOpinion, OperateurProfile, Pass,
                           PassOrder, Programme, RequestStatus, Tenant, Tranche, TrancheStatus)
from portal.models.issuance import PassState
from portal.models.operateurs import Qualification

# One tile per line: count, label, action link (templates/tenants/_todo.html).
_TILE = re.compile(r'<li class="tile"><span class="tile-count">([^<]+)</span>\s*'
                   r'<span class="tile-label">(.+?)</span>\s*<a href="([^"]+)">')

NOTHING = "Rien à traiter pour l'instant."


def todo_lines(browser, url: str) -> dict[str, tuple[int, str]]:
    """{label: (count, href)} read from the « À traiter » section."""
    response = browser.get(url)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    section = body.split('<section class="todo"', 1)[1].split("</section>", 1)[0]
    assert "À traiter" in section
    lines = {html.unescape(label): (int(re.sub(r"\D", "", count)), html.unescape(href))
             for count, label, href in _TILE.findall(section)}
    assert (NOTHING in html.unescape(section)) == (not lines)
    return lines


_WAITING = re.compile(r'<li class="tile tile-waiting"><span class="tile-count">([^<]+)</span>\s*'
                      r'<span class="tile-label">(.+?)</span>\s*'
                      r'<span class="badge badge-info">(.+?)</span></li>')


def waiting_lines(browser, url: str) -> dict[str, tuple[int, str]]:
    """{label: (count, who)} of the lines waiting for someone else (no link)."""
    body = browser.get(url).get_data(as_text=True)
    section = body.split('<section class="todo"', 1)[1].split("</section>", 1)[0]
    return {html.unescape(label): (int(re.sub(r"\D", "", count)), html.unescape(who))
            for count, label, who in _WAITING.findall(section)}


def assert_links_answer(browser, lines) -> None:
    for label, (_count, href) in lines.items():
        assert browser.get(href).status_code == 200, (label, href)


def _count(query) -> int:
    return int(db.session.execute(query).scalar())


def _programme_names() -> dict[int, str]:
    return dict(db.session.execute(sa.select(Programme.id, Programme.name)).all())


def _ship(prefix: str, commune_slug: str) -> None:
    """The Métropole confirms the commune's pending amorçage and #APTIC ships it."""
    programme = db.session.execute(sa.select(Programme).where(
        Programme.prefix == prefix)).scalar_one()
    tranche = db.session.execute(sa.select(Tranche).join(Convention).where(
        Convention.commune_id == tenant(db.session, commune_slug).id,
        Convention.programme_id == programme.id,
        Tranche.status == TrancheStatus.DEMANDEE)).scalar_one()
    day = max(programme.request_window_start, clock.today())
    actor = Actor(None, programme.commanditaire_id)
    allocation.confirm_amorcage(db.session, tranche, actor=actor, today=day)
    numbers = allocation.available_carnet_numbers(
        db.session, programme, tranche.quantity // programme.pass_per_carnet)
    allocation.ship_tranche(db.session, tranche, allocation.as_ranges(numbers), actor=actor,
                            today=day)
    db.session.commit()


def test_metropole_home_lists_its_requests_and_orders(app, browser, browser_factory):
    with app.app_context():
        mgp = tenant(db.session, "mgp")
        names = _programme_names()
        several = len(names) > 1
        expected = {}
        for pid, n in db.session.execute(
                sa.select(Convention.programme_id, sa.func.count()).select_from(Tranche)
                .join(Convention).join(Programme)
                .where(Programme.commanditaire_id == mgp.id,
                       Tranche.status == TrancheStatus.DEMANDEE)
                .group_by(Convention.programme_id)).all():
            expected[f"Demandes d'amorçage à confirmer ({names[pid]})"] = n
        for pid, n in db.session.execute(
                sa.select(PassOrder.programme_id, sa.func.count()).join(Programme)
                .where(Programme.commanditaire_id == mgp.id,
                       PassOrder.payment_reference.is_(None))
                .group_by(PassOrder.programme_id)).all():
            expected[f"Commandes en attente du numéro de mandat ({names[pid]})"] = n
        db.session.remove()
    assert several
    assert sum(expected.values()) >= 2   # Montreuil's amorçage, AMI 2's second order
    lines = todo_lines(browser.login("mgp.admin"), "/metropole/mgp/")
    assert {label: count for label, (count, _href) in lines.items()} == expected
    assert_links_answer(browser, lines)
    # An agent of the Métropole confirms nothing: the same lines wait for an administrator.
    agent = browser_factory().login("mgp.agent")
    assert todo_lines(agent, "/metropole/mgp/") == {}
    assert waiting_lines(agent, "/metropole/mgp/") == {
        label: (count, "En attente d'un administrateur de la Métropole")
        for label, count in expected.items()}


def test_metropole_sees_a_blocking_proposal_and_a_candidate(app, browser):
    with app.app_context():
        ami2 = db.session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        ami2.blocking_proposed_at = dt.datetime.now(dt.timezone.utc)
        # The candidates line follows the Métropole's review page (art. 5).
        neuilly = tenant(db.session, "neuilly-plaisance")
        held = _count(sa.select(sa.func.count()).select_from(Pass).where(
            Pass.programme_id == ami2.id, Pass.commune_id == neuilly.id))
        candidates = [c for c in allocation.abondement_candidates(db.session, ami2,
                                                                  clock.today())
                      if c.eligible]
        name = ami2.name
        db.session.commit()
        db.session.remove()
    assert held > 0
    lines = todo_lines(browser.login("mgp.admin"), "/metropole/mgp/")
    assert lines["Blocage de la distribution à valider (fin de validité)"][0] == 1
    label = f"Communes candidates à un abondement ({name})"
    assert lines.get(label, (0, ""))[0] == len(candidates)
    assert_links_answer(browser, lines)


def test_aptic_home_lists_what_waits_for_the_mandataire(app, browser_factory):
    with app.app_context():
        _ship("MGP2", "montreuil")   # shipped: no longer to ship
        ami2 = db.session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        order = db.session.execute(sa.select(PassOrder).where(
            PassOrder.programme_id == ami2.id, PassOrder.payment_reference.is_(None))
        ).scalar_one()
        issuance.record_payment_reference(db.session, order, "MANDAT-TEST-1",
                                          actor=Actor(None, ami2.commanditaire_id))
        db.session.commit()
        requests = _count(sa.select(sa.func.count()).select_from(HabilitationRequest).where(
            HabilitationRequest.status == RequestStatus.EN_ATTENTE))
        to_activate = _count(sa.select(sa.func.count()).select_from(PassOrder).where(
            PassOrder.payment_reference.is_not(None), PassOrder.activated_at.is_(None)))
        to_ship = _count(sa.select(sa.func.count()).select_from(Tranche).where(
            Tranche.status == TrancheStatus.CONFIRMEE))
        db.session.remove()
    assert requests >= 1 and to_activate == 1
    browser = browser_factory().login("aptic.admin")
    lines = todo_lines(browser, "/mandataire/aptic/")
    assert lines["Demandes d'habilitation à examiner"][0] == requests
    assert lines["Commandes à activer (numéro de mandat reçu)"][0] == to_activate
    assert lines.get("Tranches confirmées à expédier", (0, ""))[0] == to_ship
    assert_links_answer(browser, lines)
    assert waiting_lines(browser, "/mandataire/aptic/") == {}
    # The agent ships and qualifies; habilitations and activations wait for an administrator.
    agent = browser_factory().login("aptic.agent")
    lines = todo_lines(agent, "/mandataire/aptic/")
    assert lines.get("Tranches confirmées à expédier", (0, ""))[0] == to_ship
    assert "Demandes d'habilitation à examiner" not in lines
    waiting = waiting_lines(agent, "/mandataire/aptic/")
    assert waiting["Demandes d'habilitation à examiner"] == (
        requests, "En attente d'un administrateur #APTIC")
    assert waiting["Commandes à activer (numéro de mandat reçu)"] == (
        to_activate, "En attente d'un administrateur #APTIC")
    assert_links_answer(agent, lines)


def test_aptic_sees_confirmed_tranches_statements_and_operateurs(app, browser_factory):
    with app.app_context():
        ami2 = db.session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        tranche = db.session.execute(sa.select(Tranche).join(Convention).where(
            Convention.programme_id == ami2.id,
            Tranche.status == TrancheStatus.DEMANDEE)).scalar_one()
        allocation.confirm_amorcage(db.session, tranche,
                                    actor=Actor(None, ami2.commanditaire_id),
                                    today=max(ami2.request_window_start, clock.today()))
        profile = db.session.execute(sa.select(OperateurProfile).join(
            Tenant, Tenant.id == OperateurProfile.structure_id).where(
            Tenant.slug == "bondy-mediatheque")).scalar_one_or_none()
        if profile is not None:
            profile.qualification = Qualification.EN_ATTENTE
        db.session.commit()
        to_qualify = _count(
            sa.select(sa.func.count()).select_from(Tenant)
            .outerjoin(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
            .where(Tenant.is_operateur.is_(True), sa.or_(
                OperateurProfile.id.is_(None),
                OperateurProfile.qualification == Qualification.EN_ATTENTE)))
        db.session.remove()
    assert to_qualify >= 1
    browser = browser_factory().login("aptic.agent")
    lines = todo_lines(browser, "/mandataire/aptic/")
    assert lines["Tranches confirmées à expédier"][0] == 1
    assert lines["Opérateurs en attente de qualification"][0] == to_qualify
    assert "Relevés de contre-paiement à valider" not in lines   # not the agent's page
    assert_links_answer(browser, lines)


def test_commune_home_counts_its_own_deliveries_and_carnets(app, browser_factory):
    with app.app_context():
        _ship("MGP2", "montreuil")
        names = _programme_names()
        rows = {}
        for slug in ("neuilly-plaisance", "montreuil", "bondy"):
            commune = tenant(db.session, slug)
            rows[slug] = {
                "conventions": _count(sa.select(sa.func.count()).select_from(Convention).where(
                    Convention.commune_id == commune.id)),
                "shipped": dict(db.session.execute(
                    sa.select(Convention.programme_id, sa.func.count()).select_from(Tranche)
                    .join(Convention).where(Convention.commune_id == commune.id,
                                            Tranche.status == TrancheStatus.EXPEDIEE)
                    .group_by(Convention.programme_id)).all()),
                "unsplit": dict(db.session.execute(
                    sa.select(Pass.programme_id, sa.func.count(sa.distinct(Pass.carnet_id)))
                    .where(Pass.holder_id == commune.id, Pass.state == PassState.LIVRE)
                    .group_by(Pass.programme_id)).all()),
                "unsigned": dict(db.session.execute(
                    sa.select(Convention.programme_id, sa.func.count()).where(
                        Convention.commune_id == commune.id,
                        Convention.signed_by_commune_on.is_(None))
                    .group_by(Convention.programme_id)).all()),
            }
        db.session.remove()
    assert rows["montreuil"]["shipped"] and rows["neuilly-plaisance"]["unsplit"]
    assert not rows["bondy"]["shipped"]
    for slug, found in rows.items():
        browser = browser_factory().login(f"referent.{slug}")
        lines = todo_lines(browser, f"/commune/{slug}/")
        counts = {label: count for label, (count, _h) in lines.items()}

        def of(pid):   # the programme is named when the commune has several conventions
            return f" ({names[pid]})" if found["conventions"] > 1 else ""
        for pid, n in found["shipped"].items():
            assert counts.pop(f"Livraisons dont la réception est à confirmer{of(pid)}") == n
        for pid, n in found["unsplit"].items():
            assert counts.pop(f"Carnets reçus à répartir entre les prescripteurs{of(pid)}") == n
        for pid, n in found["unsigned"].items():
            assert counts.pop(f"Convention à signer par la commune{of(pid)}") == n
        # Nothing else but référents to designate (conventions signed, none named).
        assert all(label.startswith("Référent de projet à désigner") for label in counts), counts
        assert_links_answer(browser, lines)
        if slug == "bondy":   # Montreuil's shipment stays Montreuil's
            assert not any("Livraisons" in label for label in lines)
            assert all("/commune/bondy/" in href for _c, href in lines.values())


def test_commune_sees_operateurs_to_approve_and_nothing_when_done(app, browser_factory):
    with app.app_context():
        bondy = tenant(db.session, "bondy")
        profiles = db.session.execute(sa.select(OperateurProfile).join(
            Tenant, Tenant.id == OperateurProfile.structure_id).where(
            Tenant.parent_id == bondy.id)).scalars().all()
        assert profiles
        for profile in profiles:
            profile.qualification = Qualification.QUALIFIE
            profile.commune_approved_at = None
        db.session.commit()
        expected = len(profiles)
        # A commune with nothing waiting: sign and name the référent of every
        # convention of Aubervilliers (no tranche, no opérateur to approve).
        aubervilliers = tenant(db.session, "aubervilliers")
        for convention in db.session.execute(sa.select(Convention).where(
                Convention.commune_id == aubervilliers.id)).scalars():
            convention.signed_by_commune_on = convention.signed_by_commune_on or clock.today()
            convention.referent_designated_on = (convention.referent_designated_on
                                                 or clock.today())
        db.session.execute(sa.update(OperateurProfile).where(
            OperateurProfile.structure_id.in_(sa.select(Tenant.id).where(
                Tenant.parent_id == aubervilliers.id))).values(
            commune_approved_at=dt.datetime.now(dt.timezone.utc)))
        db.session.commit()
        db.session.remove()
    browser = browser_factory().login("referent.bondy")
    lines = todo_lines(browser, "/commune/bondy/")
    assert lines["Opérateurs qualifiés par #APTIC à approuver"][0] == expected
    assert_links_answer(browser, lines)
    montreuil = todo_lines(browser_factory().login("referent.montreuil"), "/commune/montreuil/")
    assert "Opérateurs qualifiés par #APTIC à approuver" not in montreuil
    assert todo_lines(browser_factory().login("agent.aubervilliers"),
                      "/commune/aubervilliers/") == {}


def test_hub_home_counts_conventions_awaiting_its_opinions(app, browser):
    with app.app_context():
        given = (sa.select(HubOpinion.convention_id)
                 .group_by(HubOpinion.convention_id)
                 .having(sa.func.count(sa.distinct(HubOpinion.kind)) == 2))
        awaiting = _count(sa.select(sa.func.count()).select_from(Convention).where(
            Convention.id.not_in(given)))
        db.session.remove()
    assert awaiting > 0   # Bondy (capacity) and the conventions not signed yet
    lines = todo_lines(browser.login("hub.agent"), "/hub/francilin/")
    assert lines == {"Conventions en attente d'un avis du Hub": (awaiting, "/hub/francilin/avis")}
    assert_links_answer(browser, lines)


def test_aptic_admin_sees_statements_iban_and_anomalies(app, browser_factory):
    from portal.domain import operateurs
    from portal.models import Anomaly, AnomalyKind, BankDetails, Statement
    from portal.models.operateurs import ReviewStatus
    from portal.models.settlement import StatementStatus
    with app.app_context():
        place = tenant(db.session, "bondy-mediatheque")
        db.session.add_all([
            Statement(structure_id=place.id, period="2020-01", status=StatementStatus.BROUILLON),
            Statement(structure_id=place.id, period="2020-02", status=StatementStatus.VALIDE),
            Statement(structure_id=place.id, period="2020-03", status=StatementStatus.PAYE),
            Anomaly(kind=AnomalyKind.DOUBLE_SCAN, dedup_key="test-home", structure_id=place.id)])
        operateurs.submit_bank_details(db.session, place, holder=place.name,
                                       iban="FR7630006000011234567890189", bic="BNPAFRPPXXX",
                                       actor=Actor(None, place.id))
        db.session.commit()
        counts = {
            "Relevés de contre-paiement à valider": _count(
                sa.select(sa.func.count()).select_from(Statement).where(
                    Statement.status == StatementStatus.BROUILLON)),
            "Relevés validés à payer": _count(
                sa.select(sa.func.count()).select_from(Statement).where(
                    Statement.status == StatementStatus.VALIDE)),
            "Anomalies de scan à examiner": _count(
                sa.select(sa.func.count()).select_from(Anomaly).where(
                    Anomaly.reviewed_at.is_(None))),
            "IBAN à vérifier": _count(
                sa.select(sa.func.count()).select_from(BankDetails).where(
                    BankDetails.status == ReviewStatus.EN_ATTENTE)),
        }
        db.session.remove()
    assert all(n >= 1 for n in counts.values()), counts
    browser = browser_factory().login("aptic.admin")
    lines = todo_lines(browser, "/mandataire/aptic/")
    for label, n in counts.items():
        assert lines[label][0] == n, label
    assert_links_answer(browser, lines)
    agent = todo_lines(browser_factory().login("aptic.agent"), "/mandataire/aptic/")
    assert "Relevés validés à payer" not in agent and agent["IBAN à vérifier"][0] == 1


def test_a_commune_sees_who_its_things_wait_for(app, browser_factory):
    """The référent acts; the commune's agent sees the split waiting for a
    référent; each commune sees what waits for the Hub, the Métropole, #APTIC."""
    neuilly_ref = browser_factory().login("referent.neuilly-plaisance")
    assert "Carnets reçus à répartir entre les prescripteurs" in todo_lines(
        neuilly_ref, "/commune/neuilly-plaisance/")
    neuilly_agent = browser_factory().login("agent.neuilly-plaisance")
    assert todo_lines(neuilly_agent, "/commune/neuilly-plaisance/") == {}
    assert waiting_lines(neuilly_agent, "/commune/neuilly-plaisance/")[
        "Carnets reçus à répartir entre les prescripteurs"] == (
        400, "En attente d'un référent de projet")
    montreuil = waiting_lines(browser_factory().login("referent.montreuil"),
                              "/commune/montreuil/")

    def line(lines, start):   # the programme is named only when the commune has several
        found = [label for label in lines if label.startswith(start)]
        assert len(found) == 1, (start, lines)
        return lines[found[0]]
    assert line(montreuil, "Tranche demandée") == (
        1, "En attente de la confirmation de la Métropole")
    assert montreuil["Demandes d'habilitation de prescripteurs envoyées"] == (
        1, "En attente de l'examen par #APTIC")
    bondy = waiting_lines(browser_factory().login("referent.bondy"), "/commune/bondy/")
    assert line(bondy, "Avis préalables à l'amorçage (art. 4)") == (
        1, "En attente de l'avis du Hub Francil'IN")
    # Confirmed by the Métropole: now it waits for #APTIC's shipment.
    with app.app_context():
        programme = db.session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        tranche = db.session.execute(sa.select(Tranche).join(Convention).where(
            Convention.commune_id == tenant(db.session, "montreuil").id,
            Tranche.status == TrancheStatus.DEMANDEE)).scalar_one()
        allocation.confirm_amorcage(db.session, tranche,
                                    actor=Actor(None, programme.commanditaire_id),
                                    today=max(programme.request_window_start, dt.date.today()))
        db.session.commit()
        db.session.remove()
    montreuil = waiting_lines(browser_factory().login("referent.montreuil"),
                              "/commune/montreuil/")
    assert not any(label.startswith("Tranche demandée") for label in montreuil)
    assert line(montreuil, "Tranche confirmée par la Métropole") == (
        1, "En attente de l'expédition par #APTIC")


def test_statements_wait_for_an_aptic_administrator_on_the_agents_home(app, browser_factory):
    from portal.models import Statement
    from portal.models.settlement import StatementStatus
    with app.app_context():
        place = tenant(db.session, "bondy-mediatheque")
        db.session.add(Statement(structure_id=place.id, period="2020-01",
                                 status=StatementStatus.BROUILLON))
        db.session.commit()
        db.session.remove()
    agent = browser_factory().login("aptic.agent")
    assert "Relevés de contre-paiement à valider" not in todo_lines(agent, "/mandataire/aptic/")
    assert waiting_lines(agent, "/mandataire/aptic/")["Relevés de contre-paiement à valider"] == (
        1, "En attente d'un administrateur #APTIC")
    admin = browser_factory().login("aptic.admin")
    assert todo_lines(admin, "/mandataire/aptic/")["Relevés de contre-paiement à valider"][0] == 1
