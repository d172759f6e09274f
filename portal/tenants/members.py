"""Members, invitations and the action journal of every tenant (issue 13).

Registered on each tenant blueprint by ``common.add_common_views``. Views
are thin: parse, load through ``scoping.get_or_404`` (another tenant's row is
404), one domain call, commit, then e-mail.
"""
from __future__ import annotations

from flask import flash, request, url_for

from portal.domain import invitations, journal
from portal.domain import members as member_rules
from portal.domain.errors import InvalidInput
from portal.domain.permissions import Permission, roles_for_kind
from portal.extensions import db
from portal.models import Invitation, Membership, utcnow
from portal.notifications import send_invitation
from portal.web.actor import current_actor
from portal.web.gate import TenantBlueprint, current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


def _members_page():
    tenant = current_tenant()
    return render("tenants/members.html",
                  members=member_rules.members_of(db.session, tenant),
                  invitations=invitations.invitations_of(db.session, tenant),
                  roles=roles_for_kind(tenant.kind), now=utcnow())


def _send_all(pairs) -> None:
    for invitation, token in pairs:
        send_invitation(invitation, token)


def add_member_views(bp: TenantBlueprint) -> None:
    @bp.route("/membres", permission=Permission.MANAGE_MEMBERS)
    def members():
        return _members_page()

    @bp.route("/membres/inviter", methods=["POST"], permission=Permission.MANAGE_MEMBERS)
    def invite_member():
        # A refused address or role: the page comes back filled (portal/web/refill.py).
        invitation, token = invitations.invite(
            db.session, email=request.form.get("email", "")[:300], tenant=current_tenant(),
            role=request.form.get("role", ""), invited_by=current_actor())
        db.session.commit()
        send_invitation(invitation, token)
        flash(f"Invitation envoyée à {invitation.email} (lien valable 7 jours).", "success")
        return redirect_to(url_for(".members"))

    @bp.route("/membres/invitations/<int:invitation_id>/renvoyer", methods=["POST"],
              permission=Permission.MANAGE_MEMBERS)
    def resend_invitation(invitation_id: int):
        invitation = get_or_404(Invitation, invitation_id)
        token = invitations.resend(db.session, invitation, actor=current_actor())
        db.session.commit()
        send_invitation(invitation, token)
        flash(f"Invitation renvoyée à {invitation.email} : l'ancien lien ne fonctionne plus.",
              "success")
        return redirect_to(url_for(".members"))

    @bp.route("/membres/invitations/<int:invitation_id>/annuler", methods=["POST"],
              permission=Permission.MANAGE_MEMBERS)
    def cancel_invitation(invitation_id: int):
        invitation = get_or_404(Invitation, invitation_id)
        invitations.cancel(db.session, invitation, actor=current_actor())
        db.session.commit()
        flash(f"Invitation de {invitation.email} annulée.", "info")
        return redirect_to(url_for(".members"))

    @bp.route("/membres/<int:membership_id>/role", methods=["POST"],
              permission=Permission.MANAGE_MEMBERS)
    def change_member_role(membership_id: int):
        membership = get_or_404(Membership, membership_id)
        member_rules.change_role(db.session, membership, request.form.get("role", ""),
                                 actor=current_actor())
        db.session.commit()
        flash(f"Rôle de {membership.user.full_name} : {membership.role.label}.", "success")
        return redirect_to(url_for(".members"))

    @bp.route("/membres/<int:membership_id>/retirer", methods=["POST"],
              permission=Permission.MANAGE_MEMBERS)
    def remove_member(membership_id: int):
        membership = get_or_404(Membership, membership_id)
        name = membership.user.full_name
        member_rules.remove(db.session, membership, actor=current_actor())
        db.session.commit()
        flash(f"{name} ne fait plus partie de {current_tenant().name} ; ses sessions sont "
              "fermées.", "success")
        return redirect_to(url_for(".members"))

    @bp.route("/membres/import", methods=["GET", "POST"], permission=Permission.MANAGE_MEMBERS)
    def import_members():
        """Bulk invitation: upload → preview (nothing written) → confirm."""
        tenant = current_tenant()
        context = {"roles": roles_for_kind(tenant.kind), "preview": None, "csv_text": ""}
        if request.method == "GET":
            return render("tenants/members_import.html", **context)
        confirm = request.form.get("confirm") == "1"
        # An unreadable file: the upload form comes back with the message at its field.
        if confirm:
            text = request.form.get("csv_text", "")
            if len(text) > member_rules.MAX_CSV_BYTES:
                raise InvalidInput("Fichier trop volumineux.", field="file")
            preview, sent = member_rules.import_csv(db.session, tenant, text,
                                                    actor=current_actor())
            db.session.commit()
        else:
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise InvalidInput("Choisissez un fichier CSV.", field="file")
            text = member_rules.decode_csv(upload.read(member_rules.MAX_CSV_BYTES + 1))
            preview = member_rules.preview_csv(db.session, tenant, text)
        if confirm:
            _send_all(sent)
            flash(f"{len(sent)} invitation(s) envoyée(s) ; {len(preview.existing)} ligne(s) déjà "
                  f"à jour ; {len(preview.rejected)} ligne(s) rejetée(s).", "success")
            return redirect_to(url_for(".members"))
        context.update(preview=preview, csv_text=text)
        return render("tenants/members_import.html", **context)

    @bp.route("/journal-des-actions", permission=Permission.READ_JOURNAL)
    def action_journal():
        tenant = current_tenant()
        action = request.args.get("action") or None
        if action not in journal.ACTIONS:
            action = None
        entries = journal.entries_for(db.session, tenant, limit=300, action=action)
        return render("tenants/journal.html", entries=entries, action=action,
                      actions=journal.ACTIONS, label=journal.action_label,
                      objects=journal.objects(db.session, entries), change=journal.change,
                      oversees=journal.overseen_tenant_ids(db.session, tenant) != [tenant.id])

    @bp.route("/journal-des-actions.csv", permission=Permission.READ_JOURNAL)
    def action_journal_csv():
        tenant = current_tenant()
        entries = journal.entries_for(db.session, tenant, limit=None)
        from portal.web.downloads import CSV, attachment
        return attachment(journal.to_csv(db.session, entries), f"journal-{tenant.slug}.csv", CSV)

