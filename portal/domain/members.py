"""Members of a tenant: roles, removal, bulk invitation (issue 13 item 5).

* a role only exists for one kind of tenant (``permissions.ROLE_KIND``);
* the last administrator (a role that may manage members) can be neither
  removed nor demoted: a tenant is never left without anybody able to
  invite;
* removing a member ends all their sign-in sessions at once (their copied
  cookie stops working on the next request);
* every change is written to the action journal with before → after.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import invitations, journal
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.permissions import Permission, Role, permissions_of, roles_for_kind
from portal.models import AuthSession, Membership, Tenant, User, utcnow


def is_admin_role(role: Role) -> bool:
    return Permission.MANAGE_MEMBERS in permissions_of(role)


def _admin_count(session: Session, tenant_id: int) -> int:
    admin_roles = [r for r in Role if is_admin_role(r)]
    return session.execute(sa.select(sa.func.count()).select_from(Membership).where(
        Membership.tenant_id == tenant_id, Membership.role.in_(admin_roles))).scalar_one()


def _check_not_last_admin(session: Session, membership: Membership, message: str) -> None:
    if is_admin_role(membership.role) and _admin_count(session, membership.tenant_id) <= 1:
        raise Conflict(message)


def change_role(session: Session, membership: Membership, role, *, actor) -> Membership:
    tenant = session.get_one(Tenant, membership.tenant_id)
    role = invitations.check_role(tenant, role)
    before = membership.role
    if role is before:
        return membership
    if not is_admin_role(role) and is_admin_role(before) \
            and _admin_count(session, membership.tenant_id) <= 1:
        raise InvalidInput("C'est le dernier administrateur de l'organisation : nommez d'abord "
                           "un autre administrateur.", field="role")
    membership.role = role
    session.flush()
    journal.record(session, action="member.role_changed", actor=actor, tenant_id=tenant.id,
                   target="membre", target_id=membership.user_id,
                   before={"email": membership.user.email, "rôle": before.label},
                   after={"rôle": role.label})
    return membership


def remove(session: Session, membership: Membership, *, actor) -> None:
    """Remove the membership and sign the person out everywhere at once."""
    _check_not_last_admin(session, membership,
                          "C'est le dernier administrateur de l'organisation : il ne peut pas "
                          "être retiré.")
    user_id, tenant_id = membership.user_id, membership.tenant_id
    before = {"email": membership.user.email, "rôle": membership.role.label}
    session.delete(membership)
    session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user_id))
    session.flush()
    journal.record(session, action="member.removed", actor=actor, tenant_id=tenant_id,
                   target="membre", target_id=user_id, before=before)


def members_of(session: Session, tenant: Tenant) -> list[Membership]:
    return list(session.execute(
        sa.select(Membership).join(User).where(Membership.tenant_id == tenant.id)
        .options(sa.orm.contains_eager(Membership.user)).order_by(User.full_name)).scalars())


# --------------------------------------------------------------- bulk invitation (CSV)

MAX_CSV_BYTES = 200_000
MAX_CSV_LINES = 500
SEPARATORS = (";", ",")


@dataclass
class ImportLine:
    number: int
    email: str
    role: Role | None
    status: str            # "create", "exists", "rejected"
    message: str = ""


@dataclass
class ImportPreview:
    lines: list[ImportLine] = field(default_factory=list)

    @property
    def to_create(self) -> list[ImportLine]:
        return [line for line in self.lines if line.status == "create"]

    @property
    def existing(self) -> list[ImportLine]:
        return [line for line in self.lines if line.status == "exists"]

    @property
    def rejected(self) -> list[ImportLine]:
        return [line for line in self.lines if line.status == "rejected"]


def decode_csv(data: bytes) -> str:
    """UTF-8 with or without BOM; Windows-1252 (French Excel) otherwise."""
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"Fichier trop volumineux ({MAX_CSV_BYTES // 1000} ko au plus).",
                           field="file")
    if b"\x00" in data:
        raise InvalidInput("Ce fichier n'est pas un fichier texte CSV.", field="file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _role_lookup(tenant: Tenant) -> dict[str, Role]:
    lookup = {}
    for role in roles_for_kind(tenant.kind):
        lookup[role.value] = role
        lookup[role.label.lower()] = role
    return lookup


def preview_csv(session: Session, tenant: Tenant, text: str, *, now=None) -> ImportPreview:
    """Read ``adresse;rôle`` lines and say, per line, what confirming would
    do. Writes nothing. The header line is optional; the role is its code or
    its French label (roles of this kind of tenant only)."""
    now = now or utcnow()
    text = text.lstrip("\ufeff")
    raw_lines = text.splitlines()
    if not any(line.strip() for line in raw_lines):
        raise InvalidInput("Le fichier est vide.", field="file")
    if len(raw_lines) > MAX_CSV_LINES + 1:
        raise InvalidInput(f"Trop de lignes ({MAX_CSV_LINES} au plus par fichier).", field="file")
    first = next(line for line in raw_lines if line.strip())
    separator = next((s for s in SEPARATORS if s in first), ";")
    roles = _role_lookup(tenant)
    allowed = ", ".join(f"« {r.label} » ({r.value})" for r in roles_for_kind(tenant.kind))
    preview = ImportPreview()
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO("\n".join(raw_lines)), delimiter=separator)
    for number, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if number == 1 and "@" not in cells[0]:
            continue                      # header line
        if len(cells) < 2 or not cells[1]:
            preview.lines.append(ImportLine(number, cells[0][:80], None, "rejected",
                                            "Ligne illisible : deux colonnes attendues, l'adresse "
                                            "et le rôle, séparées par un point-virgule (;)."))
            continue
        if len(cells) > 2 and any(cells[2:]):
            preview.lines.append(ImportLine(number, cells[0][:80], None, "rejected",
                                            "Trop de colonnes : seules l'adresse et le rôle sont "
                                            "attendus."))
            continue
        try:
            email = invitations.clean_email(cells[0])
        except InvalidInput as error:
            preview.lines.append(ImportLine(number, cells[0][:80], None, "rejected", error.message))
            continue
        role = roles.get(cells[1].lower())
        if role is None:
            preview.lines.append(ImportLine(number, email, None, "rejected",
                                            f"Rôle inconnu « {cells[1][:40]} » pour {tenant.name}. "
                                            f"Rôles possibles : {allowed}."))
            continue
        if email in seen:
            preview.lines.append(ImportLine(number, email, role, "rejected",
                                            f"Doublon : adresse déjà présente ligne {seen[email]}."))
            continue
        seen[email] = number
        if invitations.is_member(session, tenant, email):
            preview.lines.append(ImportLine(number, email, role, "exists", "Déjà membre."))
        elif invitations.pending_for(session, tenant, email, now) is not None:
            preview.lines.append(ImportLine(number, email, role, "exists",
                                            "Invitation déjà en attente."))
        else:
            preview.lines.append(ImportLine(number, email, role, "create", "Sera invité(e)."))
    if not preview.lines:
        raise InvalidInput("Aucune ligne à lire après l'en-tête.", field="file")
    return preview


def import_csv(session: Session, tenant: Tenant, text: str, *, actor, now=None):
    """Confirmed import: invite every « create » line (one transaction).
    Returns the preview and the (invitation, token) pairs to e-mail."""
    preview = preview_csv(session, tenant, text, now=now)
    sent = [invitations.invite(session, email=line.email, tenant=tenant, role=line.role,
                               invited_by=actor, now=now) for line in preview.to_create]
    return preview, sent
