"""Demo data for development (``flask --app wsgi demo-data``). Idempotent.

Fifteen communes of the Métropole, each with a prescripteur structure,
an opérateur structure and one structure that is both (convention art. 8:
two distinct persons then do the two jobs). All demo accounts share the
password ``DEMO_PASSWORD`` — development only.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import demo_operateurs
from portal.domain import accounts, allocation, clock, distribution, issuance, mandate
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.models import OpinionKind, ProgrammePerimeter, Tenant

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


def _programmes(session: Session, mgp: Tenant, aptic: Tenant) -> None:
    """AMI 1 with the convention's dates; AMI 2 current, with activated stock."""
    communes = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE).order_by(Tenant.name)).scalars().all()
    publics = ["demandeurs_emploi", "seniors", "habitants_qpv"]
    ami1 = issuance.create_programme(
        session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 1",
        prefix="MGP1", target_publics=publics)
    year = clock.today().year
    ami2 = issuance.create_programme(
        session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 2",
        prefix="MGP2", total_stock=230_000, target_publics=publics + ["jeunes"],
        valid_until=dt.date(year + 1, 12, 31), tolerance_until=dt.date(year + 2, 1, 31),
        request_window_start=dt.date(year, 1, 1), request_window_end=dt.date(year + 1, 10, 1),
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
    accord_end = dt.date(today.year + 1, 12, 31)
    mandat = mandate.create_mandate(
        session, mandant=mgp, mandataire=aptic, reference=f"MANDAT-MGP-{today.year}",
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
    user, structure = agent("neuilly-plaisance-ccas")
    stock = distribution.structure_stock(session, structure)[programme.id]
    for index, (number, _left) in enumerate(stock[:6]):
        distribution.hand_out(
            session, programme=programme, structure=structure, user_id=user.id,
            carnet_number=number, pass_count=None,
            target_public=programme.target_publics[index % len(programme.target_publics)],
            needs=["demarches", "courriel"][: 1 + index % 2],
            answers={"tranche_age": "60_plus", "equipement": "smartphone",
                     "orientation": "service_social"},
            request_token=f"demo-{number}", today=today)
    commune = session.execute(sa.select(Tenant).where(Tenant.slug == "montreuil")).scalar_one()
    user, structure = agent("montreuil-ccas")
    mandate.request_habilitation(session, commune, user=user, structure=structure,
                                 starts_on=today, ends_on=mandat.ends_on,
                                 actor=Actor(None, commune.id))


def load_demo_data(session: Session) -> bool:
    """Create the demo tenants and users; returns False if already there."""
    if session.execute(sa.select(Tenant).where(Tenant.slug == "mgp")).scalar_one_or_none():
        return False
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
    _programmes(session, mgp, aptic)
    # A person working for two tenants, to show the tenant switcher.
    user = accounts.find_user(session, f"referent.neuilly-plaisance@{DOMAIN}")
    ccas = session.execute(sa.select(Tenant).where(
        Tenant.slug == "neuilly-plaisance-ccas")).scalar_one()
    accounts.add_membership(session, user, ccas, Role.PRESCRIPTEUR_AGENT)
    demo_operateurs.load_operateur_demo(session)
    from portal.domain import ledger
    ledger.seal(session, commit=False)     # the demo's ledger entries, as the sealer would
    return True
