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


def invitation_url(raw_token: str) -> str:
    """The accept link: from the current request's host, else from
    ``PORTAL_BASE_URL`` (the ``setup`` command runs outside any request)."""
    from flask import current_app, has_request_context, url_for
    if has_request_context():
        return url_for("invitations.accept", token=raw_token, _external=True)
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    return f"{base}/invitation/{raw_token}"


def send_invitation(invitation, raw_token: str) -> None:
    """The same message whether or not the address already has an account
    (sending never reveals which accounts exist)."""
    from portal.domain.invitations import VALIDITY
    tenant = invitation.tenant
    days = VALIDITY.days
    send_mail(invitation.email, f"Pass Numérique : invitation à rejoindre {tenant.name}",
              f"Bonjour,\n\nVous êtes invité(e) à rejoindre l'espace « {tenant.name} » du portail "
              f"Pass Numérique avec le rôle « {invitation.role.label} ».\n\n"
              f"Pour accepter, ouvrez ce lien (valable {days} jours, utilisable une seule fois) :\n"
              f"{invitation_url(raw_token)}\n\n"
              "Si vous ne vous attendiez pas à cette invitation, ignorez ce message.")
