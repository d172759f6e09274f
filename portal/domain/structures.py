"""Structures of a commune and applications of mediation places (issue 13).

* The commune's référent (or #APTIC) registers the structures working on its
  territory — name, SIRET, address, prescripteur and/or opérateur (convention
  art. 8: prescripteurs hand out carnets, opérateurs scan them) — and invites
  each one's first administrator.
* A mediation place may apply on the public page « Devenir lieu qualifié »
  (SIRET, address, services, contact). It becomes a structure of its commune
  waiting in #APTIC's qualification pipeline (``portal.domain.operateurs``,
  #APTIC help centre: opérateur onboarding), then for its commune's approval
  (Docaposte/Applicam FAQ); once both are given the applicant is invited as
  the structure's administrator (``invite_accepted_applicant``).
* The public fields of a place follow the national schema of digital-mediation
  places (« lieux de médiation numérique » v1.0.2, ANCT / La MedNum):
  ``SERVICES`` are the schema's service categories; ``portal.domain.lieux``
  exports the qualified places of a programme in that schema.
"""
from __future__ import annotations

from typing import Any
import re

import sqlalchemy as sa
from sqlalchemy.orm import Session
from stdnum.fr import siret as stdnum_siret

from portal.domain import operateurs
from portal.domain.commanditaires import (clean_email, clean_postal_code, clean_text, invite,
                                          record, snapshot, unique_slug)
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.models import Candidature, LieuMediation, Tenant, utcnow

# The service categories of the national schema (field « services »).
SERVICES = [
    "Aide aux démarches administratives",
    "Maîtrise des outils numériques du quotidien",
    "Insertion professionnelle via le numérique",
    "Utilisation sécurisée du numérique",
    "Parentalité et éducation avec le numérique",
    "Loisirs et créations numériques",
    "Compréhension du monde numérique",
    "Accès internet et matériel informatique",
    "Acquisition de matériel informatique à prix solidaire",
]
# The schema's telephone pattern: +33 (or an overseas prefix) then 6 to 9 digits.
PHONE = re.compile(r"\+(33|590|594|262|596|269|687|689|508|681)\d{6,9}")


def clean_siret(session: Session, value: str | None, *, field: str = "siret") -> str:
    """14 digits with a valid check key (INSEE; python-stdnum also knows La
    Poste's exception), unique among structures (#APTIC onboarding)."""
    siret = re.sub(r"[\s.\-]", "", value or "")
    if not siret:
        raise InvalidInput("Le SIRET est obligatoire.", field=field)
    if not re.fullmatch(r"\d{14}", siret):
        raise InvalidInput("Le SIRET comporte 14 chiffres.", field=field)
    if not stdnum_siret.is_valid(siret):
        raise InvalidInput("Ce SIRET n'est pas valide (clé de contrôle incorrecte) : vérifiez "
                           "la saisie.", field=field)
    if session.execute(sa.select(Tenant.id).where(Tenant.siret == siret)).first():
        raise Conflict("Ce SIRET est déjà enregistré pour une structure.", field=field)
    return siret


def clean_phone(value: str | None, field: str = "telephone") -> str:
    """A French number as the schema stores it (+33XXXXXXXXX); empty allowed."""
    digits = re.sub(r"[\s.\-()]", "", value or "")
    if not digits:
        return ""
    if re.fullmatch(r"0\d{9}", digits):
        digits = "+33" + digits[1:]
    if not PHONE.fullmatch(digits):
        raise InvalidInput("Numéro de téléphone invalide (exemple : 01 23 45 67 89).",
                           field=field)
    return digits


def clean_services(values: list[str]) -> list[str]:
    chosen = [v for v in SERVICES if v in set(values or [])]
    if set(values or []) - set(SERVICES):
        raise InvalidInput("Service inconnu.", field="services")
    return chosen


def _address(data: dict) -> dict:
    return {"address_line": clean_text(data.get("address_line"), "Adresse", "address_line"),
            "postal_code": clean_postal_code(data.get("postal_code")),
            "city": clean_text(data.get("city"), "Ville", "city", max_length=120)}


def register_structure(session: Session, commune: Tenant, data: dict, *, actor: Actor,
                       ip: str | None = None):
    """The référent (or #APTIC) registers a structure of the commune and invites
    its first administrator. ``data``: name, siret, address_line, postal_code,
    city, is_prescripteur, is_operateur, admin_email.
    Returns (structure, invitation, raw token)."""
    if commune.kind is not TenantKind.COMMUNE:
        raise NotAllowed("Une structure est rattachée à une commune.")
    name = clean_text(data.get("name"), "Nom de la structure", "name")
    siret = clean_siret(session, data.get("siret"))
    address = _address(data)
    is_prescripteur, is_operateur = bool(data.get("is_prescripteur")), bool(data.get("is_operateur"))
    if not (is_prescripteur or is_operateur):
        raise InvalidInput("Cochez prescripteur, opérateur ou les deux.", field="roles")
    email = clean_email(data.get("admin_email"))
    structure = Tenant(kind=TenantKind.STRUCTURE, slug=unique_slug(session, name),
                       name=name, parent_id=commune.id, siret=siret,
                       is_prescripteur=is_prescripteur, is_operateur=is_operateur, **address)
    session.add(structure)
    session.flush()
    if is_operateur:
        operateurs.profile_of(session, structure)      # enters the qualification pipeline
    record(session, "tenant.created", actor=actor, tenant_id=structure.id, target="tenant",
           target_id=structure.id, after={**snapshot(structure), "commune": commune.name}, ip=ip)
    role = Role.OPERATEUR_ADMIN if is_operateur else Role.PRESCRIPTEUR_AGENT
    invitation, token = invite(session, email=email, tenant=structure, role=role, actor=actor)
    return structure, invitation, token


def structures_of(session: Session, commune: Tenant) -> list[Tenant]:
    return list(session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id == commune.id)
        .order_by(Tenant.name)).scalars())


def applicable_communes(session: Session) -> list[Tenant]:
    """Communes a place may apply in: those of a commanditaire's territory."""
    return list(session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE, Tenant.parent_id.is_not(None))
        .order_by(Tenant.name)).scalars())


def apply(session: Session, data: dict, *, ip: str | None = None) -> Candidature:
    """« Devenir lieu qualifié »: a mediation place applies. ``data``: name,
    siret, address_line, postal_code, city, commune_id, services (list),
    telephone, site_web, horaires, presentation_resume, contact_name,
    contact_email, contact_phone."""
    name = clean_text(data.get("name"), "Nom du lieu", "name")
    siret = clean_siret(session, data.get("siret"))
    address = _address(data)
    commune_id = data.get("commune_id")
    commune = session.get(Tenant, commune_id) if isinstance(commune_id, int) else None
    if commune is None or commune.kind is not TenantKind.COMMUNE or commune.parent_id is None:
        raise InvalidInput("Choisissez la commune où se trouve le lieu.", field="commune_id")
    services = clean_services(data.get("services") or [])
    if not services:
        raise InvalidInput("Cochez au moins un service proposé.", field="services")
    telephone = clean_phone(data.get("telephone"))
    site_web = clean_text(data.get("site_web"), "Site web", "site_web", required=False,
                          max_length=254)
    if site_web and not re.fullmatch(r"https?://\S+", site_web):
        raise InvalidInput("Le site web commence par https://.", field="site_web")
    horaires = clean_text(data.get("horaires"), "Horaires", "horaires", required=False,
                          max_length=500)
    resume = clean_text(data.get("presentation_resume"), "Présentation", "presentation_resume",
                        required=False, max_length=280)
    contact_name = clean_text(data.get("contact_name"), "Nom du contact", "contact_name")
    contact_email = clean_email(data.get("contact_email"), "contact_email")
    contact_phone = clean_phone(data.get("contact_phone"), "contact_phone")
    structure = Tenant(kind=TenantKind.STRUCTURE, slug=unique_slug(session, name), name=name,
                       parent_id=commune.id, siret=siret, is_operateur=True, **address)
    session.add(structure)
    session.flush()
    operateurs.profile_of(session, structure)           # en attente of #APTIC's decision
    session.add(LieuMediation(structure_id=structure.id, services=services, telephone=telephone,
                              courriels=contact_email, site_web=site_web, horaires=horaires,
                              presentation_resume=resume))
    candidature = Candidature(structure_id=structure.id, contact_name=contact_name,
                              contact_email=contact_email, contact_phone=contact_phone)
    session.add(candidature)
    session.flush()
    record(session, "tenant.created", actor=None, tenant_id=structure.id,
           target="tenant", target_id=structure.id,
           after={**snapshot(structure), "commune": commune.name, "services": services,
                  "candidature": contact_email}, ip=ip)
    return candidature


def candidature_of(session: Session, structure: Tenant) -> Candidature | None:
    return session.execute(sa.select(Candidature).where(
        Candidature.structure_id == structure.id)).scalar_one_or_none()


def invite_accepted_applicant(session: Session, structure: Tenant, *, actor: Actor):
    """Once #APTIC has qualified the place and its commune has approved it, the
    applicant is invited as administrator of the structure (once). Returns
    (invitation, raw token) or None when nothing is due."""
    candidature = candidature_of(session, structure)
    if candidature is None or candidature.invited_at is not None:
        return None
    profile = operateurs.profile_of(session, structure, create=False)
    if profile is None or not profile.can_scan:
        return None
    candidature.invited_at = utcnow()
    session.flush()
    return invite(session, email=candidature.contact_email, tenant=structure,
                  role=Role.OPERATEUR_ADMIN, actor=actor)


def lieu_of(session: Session, structure: Tenant) -> LieuMediation | None:
    return session.execute(sa.select(LieuMediation).where(
        LieuMediation.structure_id == structure.id)).scalar_one_or_none()


TYPOLOGIES = {"": "—", "BIB": "Bibliothèque, médiathèque", "CCAS": "CCAS", "ASSO": "Association",
              "MUNI": "Mairie", "TIERS_LIEUX": "Tiers-lieu", "CS": "Centre social",
              "FRANCE_SERVICES": "France Services", "Autre": "Autre"}


def set_public_fields(session: Session, structure: Tenant, data: dict, *, actor: Actor,
                      ip: str | None = None) -> LieuMediation:
    """The place's administrator keeps its public fields up to date (schema
    « lieux de médiation numérique »: services, typologie, téléphone, courriels,
    site web, horaires, présentation); ``date_maj`` follows."""
    if structure.kind is not TenantKind.STRUCTURE or not structure.is_operateur:
        raise NotAllowed("Seul un lieu opérateur publie ces informations.")
    services = clean_services(data.get("services") or [])
    if not services:
        raise InvalidInput("Cochez au moins un service proposé.", field="services")
    typologie = data.get("typologie") or ""
    if typologie not in TYPOLOGIES:
        raise InvalidInput("Type de lieu inconnu.", field="typologie")
    values: dict[str, Any] = {
        "services": services, "typologie": typologie,
        "telephone": clean_phone(data.get("telephone")),
        "courriels": (clean_email(data.get("courriels"), "courriels")
                      if (data.get("courriels") or "").strip() else ""),
        "site_web": clean_text(data.get("site_web"), "Site web", "site_web", required=False,
                               max_length=254),
        "horaires": clean_text(data.get("horaires"), "Horaires", "horaires", required=False,
                               max_length=500),
        "presentation_resume": clean_text(data.get("presentation_resume"), "Présentation",
                                          "presentation_resume", required=False,
                                          max_length=280)}
    if values["site_web"] and not re.fullmatch(r"https?://\S+", values["site_web"]):
        raise InvalidInput("Le site web commence par https://.", field="site_web")
    lieu = lieu_of(session, structure)
    before = None
    if lieu is None:
        lieu = LieuMediation(structure_id=structure.id)
        session.add(lieu)
    else:
        before = {k: getattr(lieu, k) for k in values}
    for key, value in values.items():
        setattr(lieu, key, value)
    lieu.updated_at = utcnow()
    session.flush()
    record(session, "tenant.changed", actor=actor, tenant_id=structure.id, target="lieu",
           target_id=structure.id, before=before, after=values, ip=ip)
    return lieu
