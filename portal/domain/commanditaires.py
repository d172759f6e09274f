"""Commanditaires registered by the issuer, and their programmes (issue 13).

* #APTIC (the issuer, tenant kind ``mandataire``) registers each public body
  that buys pass from it — the Métropole, a département, a commune… (#APTIC
  served 80+ collectivités, DOMAIN.md) — and invites its first administrator.
  In the portal a commanditaire is a tenant of kind ``metropole``; its
  ``CommanditaireProfile`` says what kind of collectivité it is and which
  issuer serves it.
* A commanditaire's administrator creates a programme (dispositif) with every
  setting of its convention (``portal.domain.issuance``: convention MGP–commune
  art. 2–9), optionally starting from a template: the MGP 2021 convention's
  figures (AMI 1) or any earlier programme of the same commanditaire.
* An ended programme — its pass valid nowhere any more, after the tolerance
  date (#APTIC help centre, end of validity) — offers no new order, shipment or
  explanatory document (``ensure_running``).
"""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from slugify import slugify
from sqlalchemy.orm import Session
from stdnum.fr import siren as stdnum_siren

from portal.domain import calendar, issuance, journal
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.models import (Collectivite, CommanditaireProfile, Programme, ProgrammePerimeter,
                           Tenant)


# ------------------------------------------------------------------ shared helpers

def clean_email(value: str | None, field: str = "admin_email") -> str:
    """A valid address (email-validator, through ``invitations.clean_email``)."""
    from portal.domain import invitations
    return invitations.clean_email(value, field)


def clean_text(value: str | None, label: str, field: str, *, required: bool = True,
               max_length: int = 200) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=field)
    if len(text) > max_length:
        raise InvalidInput(f"Le champ « {label} » dépasse {max_length} caractères.", field=field)
    return text


def clean_postal_code(value: str | None, field: str = "postal_code") -> str:
    code = (value or "").strip().replace(" ", "")
    if not re.fullmatch(r"\d{5}", code):
        raise InvalidInput("Le code postal comporte 5 chiffres.", field=field)
    return code


def unique_slug(session: Session, name: str, *, prefix: str = "") -> str:
    base = slugify(f"{prefix} {name}".strip(), max_length=70) or "organisation"
    slug, n = base, 1
    while session.execute(sa.select(Tenant.id).where(Tenant.slug == slug)).first():
        n += 1
        slug = f"{base}-{n}"
    return slug


def snapshot(tenant: Tenant) -> dict:
    """What the action journal keeps of a tenant (before → after)."""
    return {"nom": tenant.name, "type": tenant.kind.value, "slug": tenant.slug,
            "adresse": tenant.full_address, "insee": tenant.insee_code, "siret": tenant.siret,
            "prescripteur": tenant.is_prescripteur, "operateur": tenant.is_operateur}


def record(session: Session, action: str, *, actor: Actor | None, tenant_id: int | None,
           target: str, target_id: int | None, before=None, after=None,
           ip: str | None = None) -> None:
    journal.record(session, action=action, actor=actor, tenant_id=tenant_id, target=target,
                   target_id=target_id, before=before, after=after, ip=ip)


def invite(session: Session, *, email: str, tenant: Tenant, role: Role, actor: Actor | None):
    """(invitation, raw token) — the caller sends it after COMMIT."""
    from portal.domain import invitations
    return invitations.invite(session, email=email, tenant=tenant, role=role, invited_by=actor)


# ------------------------------------------------------------------ commanditaires

def register(session: Session, *, issuer: Tenant, name: str, collectivite: str, siren: str,
             address_line: str, postal_code: str, city: str, admin_email: str,
             actor: Actor, ip: str | None = None):
    """#APTIC registers a commanditaire and invites its first administrator.
    Returns (tenant, invitation, raw token)."""
    if issuer.kind is not TenantKind.MANDATAIRE:
        raise InvalidInput("Seul l'émetteur enregistre un commanditaire.")
    name = clean_text(name, "Nom du commanditaire", "name")
    try:
        kind = Collectivite(collectivite)
    except ValueError:
        raise InvalidInput("Choisissez le type de collectivité.", field="collectivite") from None
    siren = re.sub(r"\s", "", siren or "")
    if siren:
        if not stdnum_siren.is_valid(siren):
            raise InvalidInput("Ce SIREN n'est pas valide (9 chiffres, clé de contrôle).",
                               field="siren")
        if session.execute(sa.select(CommanditaireProfile.id)
                           .where(CommanditaireProfile.siren == siren)).first():
            raise Conflict("Un commanditaire porte déjà ce SIREN.", field="siren")
    address_line = clean_text(address_line, "Adresse", "address_line")
    postal_code = clean_postal_code(postal_code)
    city = clean_text(city, "Ville", "city", max_length=120)
    email = clean_email(admin_email)
    if session.execute(sa.select(Tenant.id).where(Tenant.kind == TenantKind.METROPOLE,
                                                  sa.func.lower(Tenant.name) == name.lower())
                       ).first():
        raise Conflict("Un commanditaire porte déjà ce nom.", field="name")
    tenant = Tenant(kind=TenantKind.METROPOLE, slug=unique_slug(session, name), name=name,
                    address_line=address_line, postal_code=postal_code, city=city)
    session.add(tenant)
    session.flush()
    session.add(CommanditaireProfile(tenant_id=tenant.id, collectivite=kind, siren=siren or None,
                                     issuer_id=issuer.id, created_by_id=actor.user_id))
    session.flush()
    record(session, "tenant.created", actor=actor, tenant_id=tenant.id, target="tenant",
           target_id=tenant.id, after={**snapshot(tenant), "collectivite": kind.value,
                                       "siren": siren or None}, ip=ip)
    invitation, token = invite(session, email=email, tenant=tenant, role=Role.MGP_ADMIN,
                               actor=actor)
    return tenant, invitation, token


def commanditaires_of(session: Session, issuer: Tenant) -> list[tuple[Tenant, CommanditaireProfile | None]]:
    """Every commanditaire the issuer serves: registered ones, and those that
    already have a programme with it (tenants older than this module)."""
    with_programme = sa.select(Programme.commanditaire_id).where(Programme.issuer_id == issuer.id)
    rows = session.execute(
        sa.select(Tenant, CommanditaireProfile)
        .outerjoin(CommanditaireProfile, CommanditaireProfile.tenant_id == Tenant.id)
        .where(Tenant.kind == TenantKind.METROPOLE,
               sa.or_(CommanditaireProfile.issuer_id == issuer.id, Tenant.id.in_(with_programme)))
        .order_by(Tenant.name)).all()
    return [(t, p) for t, p in rows]


def issuer_of(session: Session, commanditaire: Tenant) -> Tenant:
    """The issuer serving a commanditaire: its profile's, else the issuer of
    its earlier programmes, else the only issuer of the installation."""
    issuer_id = session.execute(sa.select(CommanditaireProfile.issuer_id).where(
        CommanditaireProfile.tenant_id == commanditaire.id)).scalar()
    if issuer_id is None:
        issuer_id = session.execute(sa.select(Programme.issuer_id).where(
            Programme.commanditaire_id == commanditaire.id).limit(1)).scalar()
    if issuer_id is None:
        issuers = session.execute(sa.select(Tenant.id).where(
            Tenant.kind == TenantKind.MANDATAIRE).limit(2)).scalars().all()
        if len(issuers) != 1:
            raise Conflict("Aucun émetteur n'est rattaché à ce commanditaire.")
        issuer_id = issuers[0]
    return session.get_one(Tenant, issuer_id)


# ------------------------------------------------------------------ programmes

BUILTIN_TEMPLATE = "ami1"
BUILTIN_TEMPLATE_LABEL = "Convention MGP 2021 (AMI 1) : chiffres de la convention"
SETTING_NAMES = (list(issuance.INT_SETTINGS) + list(issuance.DATE_SETTINGS)
                 + ["holiday_subdivision", "pentecost_worked", "partial_last_tranche",
                    "allow_partial_carnet", "target_publics"])


def programme_settings(programme: Programme) -> dict:
    return {name: getattr(programme, name) for name in ["name", "prefix", *SETTING_NAMES]}


def journal_values(values: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()}


def templates_for(session: Session, commanditaire: Tenant) -> list[tuple[str, str]]:
    """(key, label) of the templates a new programme may start from."""
    earlier = session.execute(sa.select(Programme).where(
        Programme.commanditaire_id == commanditaire.id).order_by(Programme.id.desc())).scalars()
    return [(BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_LABEL)] + [
        (str(p.id), f"{p.name} ({p.prefix})") for p in earlier]


def template_values(session: Session, commanditaire: Tenant, key: str | None) -> dict:
    """Settings to pre-fill the form with. The AMI 1 figures come from the MGP
    2021 convention (art. 2–9, ``issuance.AMI1_DEFAULTS``); an earlier
    programme lends all its settings but its name and serial prefix."""
    if key and key != BUILTIN_TEMPLATE:
        programme = session.execute(sa.select(Programme).where(
            Programme.commanditaire_id == commanditaire.id,
            Programme.id == (int(key) if key.isdigit() and len(key) < 10 else -1))).scalar()
        if programme is not None:
            values = programme_settings(programme)
            values.update(name="", prefix="")
            return values
    return {**issuance.AMI1_DEFAULTS, "name": "", "prefix": "", "holiday_subdivision": "",
            "pentecost_worked": False, "partial_last_tranche": True,
            "allow_partial_carnet": False,
            "target_publics": ["demandeurs_emploi", "seniors", "habitants_qpv"]}


def create_programme(session: Session, commanditaire: Tenant, values: dict, *,
                     perimeter_ids: list[int], actor: Actor, ip: str | None = None) -> Programme:
    """A commanditaire's administrator creates a programme with every setting
    (``issuance.validate_settings`` checks them); the perimeter lists the
    commune tenants of the commanditaire where its pass are accepted."""
    communes = {t.id: t for t in communes_of(session, commanditaire)}
    unknown = set(perimeter_ids) - set(communes)
    if unknown:
        raise InvalidInput("Une commune choisie n'appartient pas à votre territoire.",
                           field="perimeter")
    if "holiday_subdivision" in values and values["holiday_subdivision"] not in calendar.SUBDIVISIONS:
        raise InvalidInput("Calendrier des jours ouvrés inconnu.", field="holiday_subdivision")
    programme = issuance.create_programme(session, commanditaire=commanditaire,
                                          issuer=issuer_of(session, commanditaire), **values)
    for tenant_id in sorted(set(perimeter_ids)):
        session.add(ProgrammePerimeter(programme_id=programme.id, tenant_id=tenant_id))
    session.flush()
    record(session, "programme.created", actor=actor, tenant_id=commanditaire.id,
           target="programme", target_id=programme.id,
           after=journal_values({**programme_settings(programme),
                                 "perimetre": sorted(communes[i].insee_code or communes[i].name
                                                     for i in set(perimeter_ids))}), ip=ip)
    return programme


def update_programme(session: Session, programme: Programme, values: dict, *, actor: Actor,
                     ip: str | None = None) -> Programme:
    """``issuance.update_programme`` with the change written to the journal
    (before → after, changed settings only)."""
    before = programme_settings(programme)
    issuance.update_programme(session, programme, **values)
    after = programme_settings(programme)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        record(session, "programme.changed", actor=actor, tenant_id=programme.commanditaire_id,
               target="programme", target_id=programme.id,
               before=journal_values({k: before[k] for k in changed}),
               after=journal_values({k: after[k] for k in changed}), ip=ip)
    return programme


def is_ended(programme: Programme, today: dt.date) -> bool:
    """After the tolerance date no pass of the programme is valid anywhere
    (#APTIC help centre: "after the tolerance pass are invalid")."""
    return today > programme.tolerance_until


def ensure_running(programme: Programme, today: dt.date, what: str) -> None:
    if is_ended(programme, today):
        raise Conflict(f"Le programme « {programme.name} » est terminé depuis le "
                       f"{programme.tolerance_until:%d/%m/%Y} : {what} impossible.")


def communes_of(session: Session, commanditaire: Tenant) -> list[Tenant]:
    return list(session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE, Tenant.parent_id == commanditaire.id)
        .order_by(Tenant.name)).scalars())


# ------------------------------------------------------------------ hubs

def hubs(session: Session) -> list[Tenant]:
    """The territorial hubs (Hub Francil'IN…) of the installation."""
    return list(session.execute(sa.select(Tenant).where(Tenant.kind == TenantKind.HUB)
                                .order_by(Tenant.name)).scalars())


def register_hub(session: Session, *, issuer: Tenant, name: str, address_line: str,
                 postal_code: str, city: str, agent_email: str, actor: Actor,
                 ip: str | None = None):
    """#APTIC registers a territorial hub and invites its first agent, as it
    registers a commanditaire. The Hub gives the two favourable opinions that
    gate the amorçage (convention MGP–commune art. 4, 3rd and 4th conditions):
    without a Hub tenant no commune could ever request it. The first agent is
    the Hub's administrator (it gives opinions and invites its colleagues).
    Returns (tenant, invitation, raw token)."""
    if issuer.kind is not TenantKind.MANDATAIRE:
        raise InvalidInput("Seul l'émetteur enregistre un Hub.")
    name = clean_text(name, "Nom du Hub", "name")
    address_line = clean_text(address_line, "Adresse", "address_line", required=False)
    postal_code = clean_postal_code(postal_code) if (postal_code or "").strip() else ""
    city = clean_text(city, "Ville", "city", required=False, max_length=120)
    email = clean_email(agent_email, "agent_email")
    if session.execute(sa.select(Tenant.id).where(Tenant.kind == TenantKind.HUB,
                                                  sa.func.lower(Tenant.name) == name.lower())
                       ).first():
        raise Conflict("Un Hub porte déjà ce nom.", field="name")
    tenant = Tenant(kind=TenantKind.HUB, slug=unique_slug(session, name), name=name,
                    address_line=address_line, postal_code=postal_code, city=city)
    session.add(tenant)
    session.flush()
    record(session, "tenant.created", actor=actor, tenant_id=tenant.id, target="tenant",
           target_id=tenant.id, after=snapshot(tenant), ip=ip)
    invitation, token = invite(session, email=email, tenant=tenant, role=Role.HUB_ADMIN,
                               actor=actor)
    return tenant, invitation, token
