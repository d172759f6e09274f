"""Notifications sent by e-mail on domain events."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain.permissions import Role
from portal.extensions import db
from portal.mail import send_mail
from portal.models import Convention, Membership, User


def referent_changed(convention: Convention, summary: str) -> int:
    """Convention art. 7: a change of référent is reported to the Métropole at once."""
    admins = db.session.execute(
        sa.select(User.email).join(Membership, Membership.user_id == User.id).where(
            Membership.tenant_id == convention.programme.commanditaire_id,
            Membership.role.in_((Role.MGP_ADMIN, Role.MGP_AGENT)))).scalars().all()
    for email in admins:
        send_mail(email, f"Pass Numérique : référent de {convention.commune.name}",
                  f"{convention.commune.name} — {convention.programme.name}\n\n{summary}\n")
    return len(admins)
