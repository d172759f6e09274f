"""The commanditaire creates its programmes and builds its territory:
communes from the reference list or a CSV file (preview, then confirm), then
invites each commune's référent (issue 13)."""
from __future__ import annotations

from flask import abort, flash, request, url_for

from portal.domain import calendar, commanditaires, issuance, territory
from portal.domain.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.domain.permissions import Permission, Role
from portal.models import Membership, Programme, Tenant
from portal.tenants.metropole import bp
from portal.tenants.metropole.views import _settings_from_form
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.formpage import blank, client_ip, lieux_export, send_invitation
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404

# ------------------------------------------------------------------ programmes


def _programme_context(template_key: str) -> dict:
    tenant = current_tenant()
    return {"templates": commanditaires.templates_for(db.session, tenant),
            "template_key": template_key, "communes": commanditaires.communes_of(db.session, tenant),
            "target_publics": issuance.TARGET_PUBLICS, "subdivisions": calendar.SUBDIVISIONS,
            "int_settings": issuance.INT_SETTINGS, "date_settings": issuance.DATE_SETTINGS}


@bp.route("/programmes/nouveau", permission=Permission.MANAGE_PROGRAMMES)
def new_programme():
    key = (request.args.get("modele") or commanditaires.BUILTIN_TEMPLATE)[:12]
    context = _programme_context(key)
    values = blank(commanditaires.template_values(db.session, current_tenant(), key))
    for commune in context["communes"]:
        values.add("perimeter", str(commune.id))
    return render("onboarding/programme_new.html", values=values, **context)


@bp.route("/programmes/nouveau", methods=["POST"], permission=Permission.MANAGE_PROGRAMMES)
def create_programme():
    values = {"prefix": forms.text("prefix", "Préfixe de série", max_length=6),
              **_settings_from_form()}
    perimeter = []
    for raw in request.form.getlist("perimeter"):
        if not raw.isdigit() or len(raw) > 9:
            raise InvalidInput("Commune inconnue dans le périmètre.", field="perimeter")
        perimeter.append(int(raw))
    programme = commanditaires.create_programme(
        db.session, current_tenant(), values, perimeter_ids=perimeter,
        actor=current_actor(), ip=client_ip())
    db.session.commit()
    flash(f"Programme « {programme.name} » créé (préfixe {programme.prefix}). #APTIC peut "
          "maintenant en émettre les carnets.", "success")
    return redirect_to(url_for(".programme", programme_id=programme.id))


@bp.route("/programmes/<int:programme_id>/lieux.<any(csv, json):fmt>",
          permission=Permission.VIEW_TENANT)
def lieux_page(programme_id: int, fmt: str):
    return lieux_export(get_or_404(Programme, programme_id), fmt)


# ------------------------------------------------------------------ territory

def _referents(communes: list[Tenant]) -> dict[int, list[str]]:
    import sqlalchemy as sa
    from portal.models import User
    found: dict[int, list[str]] = {c.id: [] for c in communes}
    rows = db.session.execute(
        sa.select(Membership.tenant_id, User.full_name).join(User)
        .where(Membership.tenant_id.in_(list(found)), Membership.role == Role.REFERENT)).all()
    for tenant_id, name in rows:
        found[tenant_id].append(name)
    return found


def _territory():
    communes = commanditaires.communes_of(db.session, current_tenant())
    have = {c.insee_code for c in communes}
    reference = [c for c in territory.reference_communes() if c["insee"] not in have]
    return render("onboarding/territory.html", communes=communes,
                  referents=_referents(communes), reference=reference,
                  source=territory.reference()["source"],
                  values=blank())


@bp.route("/territoire", permission=Permission.MANAGE_TERRITORY)
def territory_page():
    return _territory()


@bp.route("/territoire/apercu", methods=["POST"], permission=Permission.MANAGE_TERRITORY)
def territory_preview():
    """What the reference-list choice or the CSV file would create — nothing written."""
    if request.form.get("source") == "reference":
        codes = request.form.getlist("insee")
        if not codes:
            raise InvalidInput("Cochez au moins une commune de la liste.", field="insee")
        if len(codes) > 1000:
            raise InvalidInput("Trop de communes cochées.", field="insee")
        lines = territory.reference_lines(codes)
    else:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput("Choisissez un fichier CSV.", field="file")
        try:
            data = upload.read(territory.MAX_CSV_BYTES + 1)
        finally:
            upload.close()
        lines = territory.parse_csv(data)
    result = territory.preview(db.session, current_tenant(), lines)
    return render("onboarding/territory_preview.html", preview=result)


@bp.route("/territoire/confirmer", methods=["POST"], permission=Permission.MANAGE_TERRITORY)
def territory_confirm():
    lines = []
    for raw in request.form.getlist("line")[:territory.MAX_LINES]:
        code, _sep, name = raw.partition("|")
        insee = territory.normalise_insee(code)
        name = " ".join(name.split())[:120]
        if insee and name:
            lines.append(territory.Line(0, insee, name))
    if not lines:
        flash("Aucune commune à ajouter.", "info")
        return redirect_to(url_for(".territory_page"))
    result = territory.add_communes(db.session, current_tenant(), lines, actor=current_actor(),
                                    ip=client_ip())
    db.session.commit()
    flash(f"{len(result.to_create)} commune(s) ajoutée(s) au territoire"
          + (f" ; {len(result.existing)} y figuraient déjà" if result.existing else "")
          + (f" ; {len(result.rejected)} refusée(s)" if result.rejected else "") + ".", "success")
    return redirect_to(url_for(".territory_page"))


@bp.route("/territoire/communes/<int:commune_id>/referent", methods=["POST"],
          permission=Permission.MANAGE_TERRITORY)
def invite_referent(commune_id: int):
    commune = db.session.get(Tenant, commune_id)
    if commune is None or commune.parent_id != current_tenant().id:
        abort(404)
    field = f"email-{commune.id}"
    try:
        invitation, token = territory.invite_referent(
            db.session, current_tenant(), commune, request.form.get(field, ""),
            actor=current_actor())
    except DomainError as error:
        error.field = field     # typed in this commune's row: the message goes there
        raise
    db.session.commit()
    send_invitation(invitation, token)
    flash(f"{invitation.email} est invité(e) comme référent de projet de {commune.name}.",
          "success")
    return redirect_to(url_for(".territory_page"))
