"""Opérateur structures ("lieux qualifiés #APTIC"): qualification by #APTIC,
approval by the commune, SIRET, service catalogue and bank details.

Sources: #APTIC help centre (opérateur onboarding: organisation with a unique
SIRET, service catalogue, IBAN + documents, validation; qualification by
#APTIC), the Docaposte/Applicam partner FAQ (the collectivité approves each
partner), DOMAIN.md ("Contre-paiement: monthly … to a validated IBAN").
"""
from __future__ import annotations

from typing import Literal, overload
import re

import sqlalchemy as sa
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.orm import Session

from portal.domain import journal
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.models import (BankDetails, OperateurProfile, OperateurService, Qualification,
                           QualificationEvent, ReviewStatus, Tenant, utcnow)

# ------------------------------------------------------------------ identifiers


def luhn_ok(digits: str) -> bool:
    """Luhn checksum, as INSEE uses for SIREN/SIRET."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def normalise_siret(text: str) -> str:
    """A SIRET is 14 digits whose Luhn sum is a multiple of 10 (INSEE). The
    only documented exception, La Poste (SIREN 356000000), uses the sum of
    digits modulo 5; it is accepted too."""
    siret = re.sub(r"[\s.\-]", "", text or "")
    if not re.fullmatch(r"\d{14}", siret):
        raise InvalidInput("Le SIRET doit comporter 14 chiffres.", field="siret")
    if siret.startswith("356000000"):
        if sum(int(c) for c in siret) % 5 == 0:
            return siret
    elif luhn_ok(siret) and luhn_ok(siret[:9]):
        return siret
    raise InvalidInput("Ce SIRET n'est pas valide (clé de contrôle incorrecte). Vérifiez la "
                       "saisie.", field="siret")


def iban_ok(iban: str) -> bool:
    """ISO 13616 with the national formats of the IBAN registry (country
    code, length and BBAN structure per country, then the mod-97 key), as
    maintained by schwifty — not a home-made regex."""
    try:
        IBAN(iban)
    except SchwiftyException:
        return False
    return True


def normalise_iban(text: str) -> str:
    try:
        iban = IBAN(re.sub(r"\s", "", text or "").upper())
    except SchwiftyException:
        raise InvalidInput("Cet IBAN n'est pas valide (pays, longueur, format ou clé de contrôle). "
                           "Vérifiez la saisie.", field="iban") from None
    return iban.compact


def normalise_bic(text: str) -> str:
    """ISO 9362: 4 letters (bank), an ISO 3166 country, 2 alphanumerics
    (place), optionally 3 alphanumerics (branch) — checked by schwifty."""
    try:
        bic = BIC(re.sub(r"\s", "", text or "").upper())
    except SchwiftyException:
        raise InvalidInput("Ce BIC n'est pas valide (8 ou 11 caractères, code pays existant).",
                           field="bic") from None
    return bic.compact


def set_siret(session: Session, structure: Tenant, text: str) -> str:
    """SIRET unique across structures (#APTIC onboarding)."""
    siret = normalise_siret(text)
    other = session.execute(sa.select(Tenant.id).where(Tenant.siret == siret,
                                                       Tenant.id != structure.id)).first()
    if other is not None:
        raise Conflict("Ce SIRET est déjà enregistré pour une autre structure.", field="siret")
    structure.siret = siret
    return siret


# ------------------------------------------------------------------ qualification

ALLOWED_QUALIFICATION_CHANGES = {
    Qualification.EN_ATTENTE: {Qualification.QUALIFIE, Qualification.DEQUALIFIE},
    Qualification.QUALIFIE: {Qualification.SUSPENDU, Qualification.DEQUALIFIE},
    Qualification.SUSPENDU: {Qualification.QUALIFIE, Qualification.DEQUALIFIE},
    Qualification.DEQUALIFIE: {Qualification.EN_ATTENTE},
}


@overload
def profile_of(session: Session, structure: Tenant,
               *, create: Literal[True] = True) -> OperateurProfile:
    ...


@overload
def profile_of(session: Session, structure: Tenant,
               *, create: bool) -> OperateurProfile | None:
    ...


def profile_of(session: Session, structure: Tenant, *, create: bool = True) -> OperateurProfile | None:
    profile = session.execute(sa.select(OperateurProfile).where(
        OperateurProfile.structure_id == structure.id)).scalar_one_or_none()
    if profile is None and create:
        if structure.kind is not TenantKind.STRUCTURE or not structure.is_operateur:
            raise Conflict("Cette structure n'est pas un opérateur.")
        profile = OperateurProfile(structure_id=structure.id, qualification=Qualification.EN_ATTENTE,
                                   qualification_changed_at=utcnow())
        session.add(profile)
        session.flush()
    return profile


def set_qualification(session: Session, structure: Tenant, to: Qualification, *, reason: str,
                      actor: Actor, now=None) -> OperateurProfile:
    """#APTIC qualifies, suspends or disqualifies a place (help centre). A
    reason is required for anything but a qualification."""
    now = now or utcnow()
    profile = profile_of(session, structure)
    if to not in ALLOWED_QUALIFICATION_CHANGES[profile.qualification]:
        raise Conflict(f"Passage de « {profile.qualification.label} » à « {to.label} » "
                       "impossible.")
    reason = (reason or "").strip()
    if to is not Qualification.QUALIFIE and not reason:
        raise InvalidInput("Indiquez le motif de la décision.", field="reason")
    journal.record(session, action="qualification.decided", actor=actor, tenant_id=structure.id,
                   target="lieu", target_id=structure.id,
                   before={"qualification": profile.qualification.label},
                   after={"qualification": to.label, "motif": reason[:500]})
    profile.qualification = to
    profile.qualification_changed_at = now
    profile.qualification_reason = reason[:500]
    session.add(QualificationEvent(structure_id=structure.id, qualification=to, reason=reason[:500],
                                   decided_at=now, decided_by_id=actor.user_id))
    session.flush()
    return profile


def approve_by_commune(session: Session, commune: Tenant, structure: Tenant, *, approve: bool,
                       actor: Actor, now=None) -> OperateurProfile:
    """The collectivité approves each partner working on its territory
    (Docaposte/Applicam FAQ). Only the commune the structure belongs to."""
    if structure.parent_id != commune.id:
        raise NotAllowed("Cette structure ne relève pas de votre commune.")
    profile = profile_of(session, structure)
    profile.commune_approved_at = (now or utcnow()) if approve else None
    profile.commune_approved_by_id = actor.user_id if approve else None
    session.flush()
    journal.record(session, action="operateur.commune_decision", actor=actor,
                   tenant_id=structure.id, target="lieu", target_id=structure.id,
                   after={"approuvé par la commune": "oui" if approve else "non"})
    return profile


def set_identity(session: Session, structure: Tenant, *, legal_representative: str,
                 is_public_body: bool) -> OperateurProfile:
    """Legal representative (#APTIC onboarding) and whether the opérateur is
    a public body collecting through a régie de recettes (it then gets an
    attestation with each statement)."""
    profile = profile_of(session, structure)
    profile.legal_representative = (legal_representative or "").strip()[:200]
    profile.is_public_body = bool(is_public_body)
    session.flush()
    return profile


# ------------------------------------------------------------------ services

def add_service(session: Session, structure: Tenant, *, name: str, price_pass: int,
                duration_minutes: int) -> OperateurService:
    """Service catalogue: a name, a price in pass, a duration (#APTIC onboarding)."""
    if not 1 <= price_pass <= 10:
        raise InvalidInput("Le prix d'un service est de 1 à 10 pass.", field="price_pass")
    if not 5 <= duration_minutes <= 600:
        raise InvalidInput("La durée d'un service est de 5 à 600 minutes.", field="duration_minutes")
    service = OperateurService(structure_id=structure.id, name=name.strip()[:200],
                               price_pass=price_pass, duration_minutes=duration_minutes, active=True)
    session.add(service)
    session.flush()
    return service


def active_services(session: Session, structure_id: int, user_id: int | None = None
                    ) -> list[OperateurService]:
    """The structure's active services by name; with ``user_id``, the service this person
    used last at this structure comes first (the scan forms preselect the first one)."""
    services = list(session.execute(sa.select(OperateurService).where(
        OperateurService.structure_id == structure_id, OperateurService.active.is_(True))
        .order_by(OperateurService.name)).scalars())
    if user_id is not None:
        last = last_used_service(session, user_id, structure_id)
        services.sort(key=lambda s: s.id != last)
    return services


def last_used_service(session: Session, user_id: int, structure_id: int | None = None
                      ) -> int | None:
    """The service of this person's latest scan (at ``structure_id`` when given): kept per
    user by the scans themselves, no setting to maintain."""
    from portal.models import Scan
    query = sa.select(Scan.service_id).where(Scan.user_id == user_id,
                                             Scan.service_id.is_not(None))
    if structure_id is not None:
        query = query.where(Scan.structure_id == structure_id)
    return session.execute(query.order_by(Scan.id.desc()).limit(1)).scalar()


# ------------------------------------------------------------------ bank details

def submit_bank_details(session: Session, structure: Tenant, *, holder: str, iban: str, bic: str,
                        actor: Actor, now=None) -> BankDetails:
    """A new IBAN waits for #APTIC's review; the previous validated one stays
    in use until then (payment "to a validated IBAN", DOMAIN.md)."""
    details = BankDetails(structure_id=structure.id, holder=holder.strip()[:200],
                          iban=normalise_iban(iban), bic=normalise_bic(bic),
                          status=ReviewStatus.EN_ATTENTE, submitted_at=now or utcnow(),
                          submitted_by_id=actor.user_id)
    if not details.holder:
        raise InvalidInput("Indiquez le titulaire du compte.", field="holder")
    session.add(details)
    session.flush()
    return details


def review_bank_details(session: Session, details: BankDetails, *, accept: bool, reason: str,
                        actor: Actor, now=None) -> BankDetails:
    if details.status is not ReviewStatus.EN_ATTENTE:
        raise Conflict("Ces coordonnées bancaires ont déjà été examinées.")
    if not accept and not (reason or "").strip():
        raise InvalidInput("Indiquez le motif du refus.", field="reason")
    details.status = ReviewStatus.VALIDE if accept else ReviewStatus.REFUSE
    details.reviewed_at = now or utcnow()
    details.reviewed_by_id = actor.user_id
    details.review_reason = (reason or "").strip()[:500]
    session.flush()
    journal.record(session, action="iban.reviewed", actor=actor, tenant_id=details.structure_id,
                   target="coordonnées bancaires", target_id=details.id,
                   after={"décision": details.status.label, "motif": details.review_reason})
    return details


def current_bank_details(session: Session, structure_id: int) -> BankDetails | None:
    return session.execute(sa.select(BankDetails).where(
        BankDetails.structure_id == structure_id, BankDetails.status == ReviewStatus.VALIDE)
        .order_by(BankDetails.reviewed_at.desc(), BankDetails.id.desc()).limit(1)
    ).scalar_one_or_none()


def operateurs(session: Session, *, commune_id: int | None = None) -> list[tuple[Tenant, OperateurProfile | None]]:
    query = (sa.select(Tenant, OperateurProfile)
             .outerjoin(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
             .where(Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True))
             .order_by(Tenant.name))
    if commune_id is not None:
        query = query.where(Tenant.parent_id == commune_id)
    return [(t, p) for t, p in session.execute(query)]


def scan_places(session: Session, user_id: int) -> list[tuple[Tenant, list[OperateurService]]]:
    """Opérateur structures where ``user_id`` may scan, with their services
    (the pass page offers "Valider ce pass" for each)."""
    from portal.domain.permissions import Permission, permissions_of
    from portal.models import Membership
    rows = session.execute(
        sa.select(Membership.role, Tenant).join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user_id, Tenant.kind == TenantKind.STRUCTURE,
               Tenant.is_operateur.is_(True)).order_by(Tenant.name)).all()
    places = [(tenant, active_services(session, tenant.id, user_id)) for role, tenant in rows
              if Permission.SCAN_PASS in permissions_of(role)]
    # The place of this person's last scan first: the pass page offers it on top.
    last = last_used_service(session, user_id)
    places.sort(key=lambda place: not any(s.id == last for s in place[1]))
    return places
