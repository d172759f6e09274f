"""Demo data for development (``flask --app wsgi demo-data``). Idempotent.

Fifteen communes of the Métropole, each with a prescripteur structure,
an opérateur structure and one structure that is both (convention art. 8:
two distinct persons then do the two jobs). All demo accounts share the
password ``DEMO_PASSWORD`` — development only.
"""
from __future__ import annotations

import contextlib
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import demo_operateurs
from portal.domain import accounts, allocation, clock, distribution, issuance, mandate
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.formatting import PARIS
from portal.models import Convention, OpinionKind, ProgrammePerimeter, Programme, Tenant

DEMO_PASSWORD = "demo-pass-numerique"
# Second factor of the demo administrators (development only: the demo data
# cannot be loaded with PORTAL_ENV=production). Printed in the README.
DEMO_TOTP_SECRET = "DEMOPASSNUMERIQUEDEVONLYMGPAPTIC"
DOMAIN = "demo.pass-numerique.fr"

# (slug, name, mairie address, postal code, INSEE code)
COMMUNES = [
    ("neuilly-plaisance", "Neuilly-Plaisance", "6 rue du Général de Gaulle", "93360", "93049"),
    ("montreuil", "Montreuil", "1 place Jean Jaurès", "93100", "93048"),
    ("bondy", "Bondy", "Esplanade Claude Fuzier", "93140", "93010"),
    ("aubervilliers", "Aubervilliers", "2 rue de la Commune de Paris", "93300", "93001"),
    ("saint-denis", "Saint-Denis", "2 place Victor Hugo", "93200", "93066"),
    ("clichy-sous-bois", "Clichy-sous-Bois", "Place du 11 Novembre 1918", "93390", "93014"),
    ("sevran", "Sevran", "Place Gaston Bussière", "93270", "93071"),
    ("pantin", "Pantin", "45 avenue du Général Leclerc", "93500", "93055"),
    ("vitry-sur-seine", "Vitry-sur-Seine", "2 avenue Youri Gagarine", "94400", "94081"),
    ("ivry-sur-seine", "Ivry-sur-Seine", "Esplanade Georges Marrane", "94200", "94041"),
    ("champigny-sur-marne", "Champigny-sur-Marne", "14 rue Louis Talamoni", "94500", "94017"),
    ("creteil", "Créteil", "1 place Salvador Allende", "94000", "94028"),
    ("nanterre", "Nanterre", "88 rue du 8 Mai 1945", "92000", "92050"),
    ("gennevilliers", "Gennevilliers", "177 avenue Gabriel Péri", "92230", "92036"),
    ("argenteuil", "Argenteuil", "12-14 boulevard Léon Feix", "95100", "95018"),
]

# (suffix, name pattern, is_prescripteur, is_operateur); {de_city} elides:
# « CCAS d'Ivry-sur-Seine », « Mairie d'Argenteuil », « CCAS de Bondy ».
STRUCTURES = [
    ("ccas", "CCAS {de_city}", True, False),
    ("mediatheque", "Médiathèque {de_city}", False, True),
    ("centre-social", "Centre social et numérique {de_city}", True, True),
]


# The demo's history (issue 15): ``flask --app wsgi demo-data`` tells the
# last two months, so that each role finds its job waiting right after
# ``make run``. Everything up to the scans happens on the first day of the
# month before last (the one clock pretends it): Neuilly-Plaisance receives
# its 5 000-pass amorçage, its référent gives carnets to the CCAS and the
# centre social, their prescripteurs hand out 256 carnets. Through the scan
# path, the month before last the médiathèque and the centre social scan
# 2 490 pass — #APTIC closes that month and validates both statements (to
# pay) — and last month the médiathèque scans 10 more: that month is
# closed, its statement a draft to validate. Neuilly-Plaisance thus stands
# at 2 490 consumed pass of 5 000 (49,8 %, 10 missing for an abondement,
# convention art. 5): validating the draft makes it a candidate. The test
# suite's shared template loads the demo without that history
# (``history=False``: its 2 500 scans take half a minute); tests/test_demo.py
# loads and checks the whole of it.
MORE_SPLIT = {"neuilly-plaisance-ccas": 250}          # carnets given for the history
MORE_HANDED_OUT = {"neuilly-plaisance-ccas": 244, "neuilly-plaisance-centre-social": 6}
UNSCANNED = 6        # the CCAS's carnets 1 to 6 stay handed out, for a person to scan
CONSUMED = {"neuilly-plaisance-mediatheque": 1250, "neuilly-plaisance-centre-social": 1240}
TO_VALIDATE = ("neuilly-plaisance-mediatheque", 10)
AGES = ["60_plus", "26_59", "moins_26"]
EQUIPMENT = ["smartphone", "aucun", "ordinateur"]


def history_start(today: dt.date) -> dt.date:
    """The first day of the month before last: the day the demo's story starts."""
    last_month = today.replace(day=1) - dt.timedelta(days=1)
    return (last_month.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def de(name: str) -> str:
    """French « de » before a name, elided before a vowel sound."""
    return ("d'" if name[:1].upper() in "AEIOUYÉÈÊÂÎÔÛ" else "de ") + name


def demo_siret(serial: int) -> str:
    """A 14-digit SIRET whose SIREN (9 digits) and SIRET both pass the INSEE
    Luhn check, as the structure form demands (operateurs.normalise_siret)."""
    from portal.domain.operateurs import luhn_ok

    def complete(digits: str) -> str:
        return next(digits + d for d in "0123456789" if luhn_ok(digits + d))
    siren = complete(f"{21000000 + serial:08d}")
    return complete(siren + "0001")


def _user(session: Session, local: str, name: str, tenant: Tenant, role: Role,
          password_hash: str) -> None:
    email = f"{local}@{DOMAIN}"
    user = accounts.find_user(session, email)
    if user is None:
        user = accounts.create_user(session, email, name, None, password_hash=password_hash)
    accounts.add_membership(session, user, tenant, role)


def _programmes(session: Session, mgp: Tenant, aptic: Tenant, year: int) -> None:
    """AMI 1 with the convention's dates; AMI 2 current (``year``, its window
    opened by the start of the demo's history), with activated stock."""
    communes = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE).order_by(Tenant.name)).scalars().all()
    publics = ["demandeurs_emploi", "seniors", "habitants_qpv"]
    ami1 = issuance.create_programme(
        session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 1",
        prefix="MGP1", target_publics=publics)
    ami2 = issuance.create_programme(
        session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 2",
        prefix="MGP2", total_stock=230_000, target_publics=publics + ["jeunes"],
        valid_until=dt.date(year + 1, 12, 31), tolerance_until=dt.date(year + 2, 1, 31),
        request_window_start=min(dt.date(year, 1, 1), clock.today()),
        request_window_end=dt.date(year + 1, 10, 1),
        convention_ends_on=dt.date(year + 1, 10, 31), experience_due_on=dt.date(year + 1, 9, 1))
    for programme in (ami1, ami2):
        for commune in communes:
            session.add(ProgrammePerimeter(programme_id=programme.id, tenant_id=commune.id))
    system = Actor(None, aptic.id)
    order = issuance.order_carnets(session, ami2, 1_000, actor=system)
    issuance.record_payment_reference(session, order, f"MANDAT-{year}-0042",
                                      actor=Actor(None, mgp.id))
    issuance.activate_order(session, order, actor=system)
    issuance.order_carnets(session, ami2, 100, actor=system)   # awaiting its numéro de mandat
    _allocation(session, ami2, hub=session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.HUB)).scalar_one())


def _allocation(session: Session, programme, hub: Tenant) -> None:
    """AMI 2 conventions at different stages of convention art. 4–7."""
    today = clock.today()
    start = programme.request_window_start
    mgp_actor, hub_actor = Actor(None, programme.commanditaire_id), Actor(None, hub.id)
    communes = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE).order_by(Tenant.name)).scalars().all()
    conventions = {c.slug: allocation.create_convention(session, programme, c,
                                                        reference=f"CONV-{c.insee_code}")
                   for c in communes}
    for index, (slug, convention) in enumerate(conventions.items()):
        commune = convention.commune
        allocation.record_signature(session, convention, "metropole", start, "Le Président",
                                    actor=mgp_actor)
        if index % 4 == 3:
            continue          # awaiting the commune's signature
        allocation.record_signature(session, convention, "commune", start,
                                    f"Le Maire {de(commune.name)}",
                                    actor=mgp_actor)
        allocation.set_referent(session, convention, name=f"Référent {de(commune.name)}",
                                email=f"referent.{slug}@{DOMAIN}", phone="01 23 45 67 89",
                                on=start, actor=mgp_actor)
        allocation.record_opinion(session, convention, hub=hub, kind=OpinionKind.RESEAU,
                                  favourable=True, given_on=start,
                                  evidence="Diagnostic de pré-déploiement : courriel au référent "
                                           "et à la Métropole.", actor=hub_actor)
        if slug != "bondy":
            allocation.record_opinion(session, convention, hub=hub, kind=OpinionKind.CAPACITE,
                                      favourable=True, given_on=start,
                                      evidence="Formations du Hub suivies par les prescripteurs "
                                               "et les opérateurs.", actor=hub_actor)
    request_day = max(start, min(today, programme.request_window_end - dt.timedelta(days=1)))
    neuilly = conventions["neuilly-plaisance"]
    tranche = allocation.request_amorcage(session, neuilly, actor=mgp_actor, today=request_day)
    allocation.confirm_amorcage(session, tranche, actor=mgp_actor, today=request_day)
    numbers = allocation.available_carnet_numbers(
        session, programme, tranche.quantity // programme.pass_per_carnet)
    allocation.ship_tranche(session, tranche, allocation.as_ranges(numbers), actor=mgp_actor,
                            today=request_day)
    allocation.confirm_reception(session, tranche, received_carnets=len(numbers),
                                 missing_numbers=[], note="", actor=mgp_actor, today=request_day)
    for suffix in ("ccas", "centre-social"):
        structure = session.execute(sa.select(Tenant).where(
            Tenant.slug == f"neuilly-plaisance-{suffix}")).scalar_one()
        allocation.split_carnets(session, neuilly, structure, 50, actor=mgp_actor)
    allocation.request_amorcage(session, conventions["montreuil"], actor=mgp_actor,
                                today=request_day)
    _mandate(session, programme, today=request_day)


def _mandate(session: Session, programme, today: dt.date) -> None:
    """The convention de mandat, habilitations and a few distributions (délibération 2022)."""
    aptic = session.get(Tenant, programme.issuer_id)
    mgp = session.get(Tenant, programme.commanditaire_id)
    year = programme.valid_until.year - 1          # AMI 2's year
    accord_end = dt.date(year + 1, 12, 31)
    mandat = mandate.create_mandate(
        session, mandant=mgp, mandataire=aptic, reference=f"MANDAT-MGP-{year}",
        accord_cadre_reference="2019.DTCI.AO.034", accord_cadre_ends_on=accord_end,
        starts_on=programme.request_window_start, ends_on=mandate.add_months(accord_end, 12),
        advance_ceiling_cents=50_000_000, fee_cents=1_200_000,
        accountant_consulted_on=programme.request_window_start)
    mandate.sign_mandate(session, mandat, programme.request_window_start)
    aptic_actor = Actor(None, aptic.id)

    def agent(slug):
        user = accounts.find_user(session, f"prescripteur.{slug}@{DOMAIN}")
        structure = session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()
        return user, structure

    for slug in ("neuilly-plaisance-ccas", "neuilly-plaisance-centre-social"):
        user, structure = agent(slug)
        mandate.grant_habilitation(session, mandat, user=user, structure=structure,
                                   starts_on=programme.request_window_start,
                                   ends_on=mandat.ends_on, actor=aptic_actor, today=today)
    _hand_out(session, programme, "neuilly-plaisance-ccas", 6, today, varied=False)
    commune = session.execute(sa.select(Tenant).where(Tenant.slug == "montreuil")).scalar_one()
    user, structure = agent("montreuil-ccas")
    mandate.request_habilitation(session, commune, user=user, structure=structure,
                                 starts_on=today, ends_on=mandat.ends_on,
                                 actor=Actor(None, commune.id))


def _hand_out(session: Session, programme, slug: str, count: int, today: dt.date, *,
              varied: bool = True) -> None:
    """The structure's prescripteur hands out its first ``count`` carnets in
    stock, through the hand-out screen's function (convention art. 8);
    ``varied``: answers that vary from one beneficiary to the next."""
    user = accounts.find_user(session, f"prescripteur.{slug}@{DOMAIN}")
    structure = session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()
    stock = distribution.structure_stock(session, structure)[programme.id]
    for index, (number, _left) in enumerate(stock[:count]):
        distribution.hand_out(
            session, programme=programme, structure=structure, user_id=user.id,
            carnet_number=number, pass_count=None,
            target_public=programme.target_publics[index % len(programme.target_publics)],
            needs=["demarches", "courriel", "smartphone"][: 1 + index % (3 if varied else 2)],
            answers={"tranche_age": AGES[index % len(AGES) if varied else 0],
                     "equipement": EQUIPMENT[index % len(EQUIPMENT) if varied else 0],
                     "orientation": "service_social"},
            request_token=f"demo-{number}", today=today)


def _more_carnets(session: Session) -> None:
    """The history's répartition and hand-outs (on the pretended first day)."""
    programme = session.execute(sa.select(Programme).where(
        Programme.prefix == "MGP2")).scalar_one()
    neuilly = session.execute(sa.select(Convention).join(Tenant, Tenant.id == Convention.commune_id)
                              .where(Tenant.slug == "neuilly-plaisance",
                                     Convention.programme_id == programme.id)).scalar_one()
    for slug, carnets in MORE_SPLIT.items():
        structure = session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()
        allocation.split_carnets(session, neuilly, structure, carnets,
                                 actor=Actor(None, programme.commanditaire_id))
    for slug, count in MORE_HANDED_OUT.items():
        _hand_out(session, programme, slug, count, clock.today())


def _scan_moments(first: dt.date, count: int, *, from_day: int, per_day: int, minutes: int):
    """``count`` moments (UTC) of the month of ``first``: ``per_day`` a day from
    day ``from_day``, one every ``minutes`` from 9:00 Paris time (never the
    ten pass of one carnet within a quarter of an hour: no burst anomaly)."""
    for k in range(count):
        day = first + dt.timedelta(days=from_day - 1 + k // per_day)
        start = dt.datetime.combine(day, dt.time(9), PARIS)
        yield (start + dt.timedelta(minutes=minutes * (k % per_day))).astimezone(dt.timezone.utc)


def _history(session: Session, today: dt.date) -> None:
    """The scans of the demo's last two months, made through the scan path
    (``scanning.consume``) on their day; then #APTIC closes both months
    (``settlement.close_month``) and validates the first one's statements."""
    from flask import current_app

    from portal.domain import keys, operateurs, scanning, serials, settlement
    from portal.models import Carnet, Channel, Pass
    from portal.models.issuance import PassState
    programme = session.execute(sa.select(Programme).where(
        Programme.prefix == "MGP2")).scalar_one()
    neuilly = session.execute(sa.select(Tenant).where(
        Tenant.slug == "neuilly-plaisance")).scalar_one()
    before, last = history_start(today), (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    pending = session.execute(
        sa.select(Pass).join(Carnet, Carnet.id == Pass.carnet_id)
        .where(Pass.programme_id == programme.id, Pass.commune_id == neuilly.id,
               Pass.state == PassState.DISTRIBUE, Carnet.number > UNSCANNED)
        .order_by(Carnet.number, Pass.id)).scalars().all()
    plan = [slug for slug, n in CONSUMED.items() for _ in range(n)] + [TO_VALIDATE[0]] * TO_VALIDATE[1]
    assert len(pending) == len(plan), (len(pending), len(plan))
    moments = list(_scan_moments(before, sum(CONSUMED.values()), from_day=2, per_day=100,
                                 minutes=5))
    moments += list(_scan_moments(last, TO_VALIDATE[1], from_day=10, per_day=20, minutes=20))
    base = current_app.config.get("PASS_BASE_URL") or "HTTP://127.0.0.1:5000"
    ring = keys.pass_ring()
    scanners, services = {}, {}
    for slug in set(plan):
        structure = session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()
        agent = accounts.find_user(session, f"operateur.{slug}@{DOMAIN}")
        scanners[slug] = scanning.Scanner(structure, agent.id)
        services[slug] = [s.id for s in operateurs.active_services(session, structure.id)]
    for k, (found, slug, moment) in enumerate(zip(pending, plan, moments)):
        with clock.pretending(moment.astimezone(PARIS).date()):
            scanning.consume(session, scanning.ScanInput(
                code=serials.qr_payload(base, ring, found.key_id, found.serial),
                service_id=services[slug][k % len(services[slug])], channel=Channel.CAMERA),
                scanners[slug], now=moment)
    aptic = session.execute(sa.select(Tenant).where(Tenant.slug == "aptic")).scalar_one()
    admin = accounts.find_user(session, f"aptic.admin@{DOMAIN}")
    for statement in settlement.close_month(session, before.strftime("%Y-%m")):
        settlement.validate(session, statement, actor=Actor(admin.id, aptic.id))
    settlement.close_month(session, last.strftime("%Y-%m"))


def load_demo_data(session: Session, *, history: bool = True) -> bool:
    """Create the demo tenants, users and their story; returns False if
    already there. Everything before the scans happens on the first day of
    the month before last (the clock pretends it), the scans on their day,
    the month closings today: the ledger's timestamps follow its order.
    ``history=False`` (the test suite's shared template) stops before the
    history: everything happens today, no scan, no statement."""
    if session.execute(sa.select(Tenant).where(Tenant.slug == "mgp")).scalar_one_or_none():
        return False
    today = clock.today()
    with clock.pretending(history_start(today)) if history else contextlib.nullcontext():
        _tenants_and_allocation(session, today.year)
        if history:
            _more_carnets(session)
    if history:
        _history(session, today)
    from portal.domain import ledger
    ledger.seal(session, commit=False)     # the demo's ledger entries, as the sealer would
    return True


def _tenants_and_allocation(session: Session, year: int) -> None:
    mgp = Tenant(kind=TenantKind.METROPOLE, slug="mgp", name="Métropole du Grand Paris",
                 address_line="15-19 avenue Pierre Mendès-France", postal_code="75013",
                 city="Paris")
    aptic = Tenant(kind=TenantKind.MANDATAIRE, slug="aptic", name="#APTIC",
                   address_line="2 rue Le Corbusier", postal_code="33600", city="Pessac")
    hub = Tenant(kind=TenantKind.HUB, slug="francilin", name="Hub Francil'IN",
                 address_line="2 rue du Chemin Vert", postal_code="75011", city="Paris")
    pw = accounts.hash_password(DEMO_PASSWORD)  # hashed once for every demo account
    session.add_all([mgp, aptic, hub])
    session.flush()
    _user(session, "mgp.admin", "Mathilde Garnier", mgp, Role.MGP_ADMIN, pw)
    _user(session, "mgp.agent", "Paul Girard", mgp, Role.MGP_AGENT, pw)
    _user(session, "aptic.admin", "Amélie Perrin", aptic, Role.APTIC_ADMIN, pw)
    _user(session, "aptic.agent", "Thomas Icard", aptic, Role.APTIC_AGENT, pw)
    _user(session, "hub.admin", "Hélène Bruneau", hub, Role.HUB_ADMIN, pw)
    _user(session, "hub.agent", "Hugo Fabre", hub, Role.HUB_AGENT, pw)
    from portal.security import twofactor
    for local in ("mgp.admin", "aptic.admin", "hub.admin"):
        twofactor.enrol_with_secret(session, accounts.find_user(session, f"{local}@{DOMAIN}"),
                                    DEMO_TOTP_SECRET)

    for index, (slug, city, address, postal_code, insee) in enumerate(COMMUNES):
        commune = Tenant(kind=TenantKind.COMMUNE, slug=slug, name=city, parent_id=mgp.id,
                         address_line=f"Mairie {de(city)}, {address}",
                         postal_code=postal_code, city=city, insee_code=insee)
        session.add(commune)
        session.flush()
        _user(session, f"referent.{slug}", f"Référent {de(city)}", commune, Role.REFERENT, pw)
        _user(session, f"agent.{slug}", f"Agent communal {de(city)}", commune, Role.COMMUNE_AGENT, pw)
        for s_index, (suffix, pattern, prescripteur, operateur) in enumerate(STRUCTURES):
            siret = demo_siret(index * 10 + s_index)
            structure = Tenant(kind=TenantKind.STRUCTURE, slug=f"{slug}-{suffix}",
                               name=pattern.format(de_city=de(city)), parent_id=commune.id,
                               address_line=f"{10 + s_index} rue de la République",
                               postal_code=postal_code, city=city, siret=siret,
                               is_prescripteur=prescripteur, is_operateur=operateur)
            session.add(structure)
            session.flush()
            if prescripteur:
                _user(session, f"prescripteur.{slug}-{suffix}", f"Prescripteur {pattern.format(de_city=de(city))}",
                      structure, Role.PRESCRIPTEUR_AGENT, pw)
            if operateur:
                _user(session, f"operateur.{slug}-{suffix}", f"Médiateur {pattern.format(de_city=de(city))}",
                      structure, Role.OPERATEUR_AGENT, pw)
                _user(session, f"admin.{slug}-{suffix}", f"Responsable {pattern.format(de_city=de(city))}",
                      structure, Role.OPERATEUR_ADMIN, pw)
    _programmes(session, mgp, aptic, year)
    # A person working for two tenants, to show the tenant switcher.
    user = accounts.find_user(session, f"referent.neuilly-plaisance@{DOMAIN}")
    ccas = session.execute(sa.select(Tenant).where(
        Tenant.slug == "neuilly-plaisance-ccas")).scalar_one()
    accounts.add_membership(session, user, ccas, Role.PRESCRIPTEUR_AGENT)
    demo_operateurs.load_operateur_demo(session)
