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
from portal.domain import accounts, issuance
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.models import ProgrammePerimeter, Tenant

DEMO_PASSWORD = "demo-pass-numerique"
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

# (suffix, name pattern, is_prescripteur, is_operateur)
STRUCTURES = [
    ("ccas", "CCAS de {city}", True, False),
    ("mediatheque", "Médiathèque de {city}", False, True),
    ("centre-social", "Centre social et numérique de {city}", True, True),
]


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
    year = dt.date.today().year
    ami2 = issuance.create_programme(
        session, commanditaire=mgp, issuer=aptic, name="Pass Numérique MGP — AMI 2",
        prefix="MGP2", total_stock=230_000, target_publics=publics + ["jeunes"],
        valid_until=dt.date(year + 1, 12, 31), tolerance_until=dt.date(year + 2, 1, 31),
        request_window_start=dt.date(year, 1, 1), request_window_end=dt.date(year + 1, 10, 1))
    for programme in (ami1, ami2):
        for commune in communes:
            session.add(ProgrammePerimeter(programme_id=programme.id, tenant_id=commune.id))
    system = Actor(None, aptic.id)
    order = issuance.order_carnets(session, ami2, 1_000, actor=system)
    issuance.record_payment_reference(session, order, f"MANDAT-{year}-0042",
                                      actor=Actor(None, mgp.id))
    issuance.activate_order(session, order, actor=system)
    issuance.order_carnets(session, ami2, 100, actor=system)   # awaiting its numéro de mandat


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

    for index, (slug, city, address, postal_code, insee) in enumerate(COMMUNES):
        commune = Tenant(kind=TenantKind.COMMUNE, slug=slug, name=city, parent_id=mgp.id,
                         address_line=f"Mairie de {city}, {address}",
                         postal_code=postal_code, city=city, insee_code=insee)
        session.add(commune)
        session.flush()
        _user(session, f"referent.{slug}", f"Référent de {city}", commune, Role.REFERENT, pw)
        _user(session, f"agent.{slug}", f"Agent communal de {city}", commune, Role.COMMUNE_AGENT, pw)
        for s_index, (suffix, pattern, prescripteur, operateur) in enumerate(STRUCTURES):
            siret = f"{21000000 + index * 10 + s_index:08d}00017"
            structure = Tenant(kind=TenantKind.STRUCTURE, slug=f"{slug}-{suffix}",
                               name=pattern.format(city=city), parent_id=commune.id,
                               address_line=f"{10 + s_index} rue de la République",
                               postal_code=postal_code, city=city, siret=siret,
                               is_prescripteur=prescripteur, is_operateur=operateur)
            session.add(structure)
            session.flush()
            if prescripteur:
                _user(session, f"prescripteur.{slug}-{suffix}", f"Prescripteur {pattern.format(city=city)}",
                      structure, Role.PRESCRIPTEUR_AGENT, pw)
            if operateur:
                _user(session, f"operateur.{slug}-{suffix}", f"Médiateur {pattern.format(city=city)}",
                      structure, Role.OPERATEUR_AGENT, pw)
                _user(session, f"admin.{slug}-{suffix}", f"Responsable {pattern.format(city=city)}",
                      structure, Role.OPERATEUR_ADMIN, pw)
    _programmes(session, mgp, aptic)
    # A person working for two tenants, to show the tenant switcher.
    user = accounts.find_user(session, f"referent.neuilly-plaisance@{DOMAIN}")
    ccas = session.execute(sa.select(Tenant).where(
        Tenant.slug == "neuilly-plaisance-ccas")).scalar_one()
    accounts.add_membership(session, user, ccas, Role.PRESCRIPTEUR_AGENT)
    demo_operateurs.load_operateur_demo(session)
    return True
