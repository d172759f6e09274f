"""#APTIC's views of issue 6: qualification of opérateurs, review of bank
details, anomalies, monthly contre-paiement, oppositions, end of validity."""
from __future__ import annotations

import io

from flask import abort, flash, send_file, url_for

from portal.domain import structures
from portal.domain import anomalies, issuance, operateurs, sepa, settlement, validity
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.formatting import format_count, format_eur
from portal.models import Anomaly, BankDetails, Programme, Qualification, ReviewStatus, Statement, Tenant
from portal.printing.statements import render_attestation_pdf, render_statement_pdf
from portal.tenants.mandataire import bp
from portal.web import forms
from portal.web.formpage import send_invitation
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.downloads import CSV, attachment
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404, scoped_select


def _operateur_or_404(structure_id: int) -> Tenant:
    structure = db.session.get(Tenant, structure_id) if 0 < structure_id < 2**31 else None
    if structure is None or structure.kind is not TenantKind.STRUCTURE or not structure.is_operateur:
        abort(404)
    return structure


@bp.route("/operateurs", permission=Permission.QUALIFY_OPERATEURS)
def operateurs_page():
    pending = db.session.execute(scoped_select(BankDetails).where(
        BankDetails.status == ReviewStatus.EN_ATTENTE).order_by(BankDetails.id)).scalars().all()
    return render("tenants/mandataire/operateurs.html", rows=operateurs.operateurs(db.session),
                  pending=pending, Qualification=Qualification)


@bp.route("/operateurs/<int:structure_id>/qualification", methods=["POST"],
          permission=Permission.QUALIFY_OPERATEURS)
def qualify(structure_id: int):
    structure = _operateur_or_404(structure_id)
    operateurs.set_qualification(db.session, structure,
                                 forms.choice("qualification", "Qualification", Qualification),
                                 reason=forms.text("reason", "Motif", required=False, max_length=500),
                                 actor=current_actor())
    invited = structures.invite_accepted_applicant(db.session, structure, actor=current_actor())
    db.session.commit()
    flash(f"Qualification de {structure.name} enregistrée.", "success")
    if invited:
        send_invitation(*invited)
        flash(f"Candidature acceptée : {invited[0].email} est invité(e) à administrer le lieu.",
              "success")
    return redirect_to(url_for("mandataire.operateurs_page"))


@bp.route("/iban/<int:bank_id>/examen", methods=["POST"], permission=Permission.QUALIFY_OPERATEURS)
def review_bank(bank_id: int):
    details = get_or_404(BankDetails, bank_id)
    operateurs.review_bank_details(db.session, details, accept=forms.boolean("accept"),
                                   reason=forms.text("reason", "Motif", required=False,
                                                     max_length=500), actor=current_actor())
    db.session.commit()
    flash("Coordonnées bancaires examinées.", "success")
    return redirect_to(url_for("mandataire.operateurs_page"))


@bp.route("/anomalies", permission=Permission.QUALIFY_OPERATEURS)
def anomalies_page():
    return render("tenants/mandataire/anomalies.html",
                  anomalies=anomalies.open_anomalies(db.session))


@bp.route("/anomalies/<int:anomaly_id>/vue", methods=["POST"], permission=Permission.QUALIFY_OPERATEURS)
def anomaly_reviewed(anomaly_id: int):
    anomalies.mark_reviewed(db.session, get_or_404(Anomaly, anomaly_id), current_actor().user_id)
    db.session.commit()
    return redirect_to(url_for("mandataire.anomalies_page"))


# ------------------------------------------------------------------ contre-paiement

@bp.route("/contre-paiement", permission=Permission.CLOSE_MONTH)
def statements_page():
    return render("tenants/mandataire/statements.html",
                  statements=settlement.statements(db.session),
                  default_period=settlement.previous_period(today()))


@bp.route("/contre-paiement/cloture", methods=["POST"], permission=Permission.CLOSE_MONTH)
def close_month():
    period = settlement.parse_period(forms.text("period", "Mois", max_length=7))
    touched = settlement.close_month(db.session, period)
    db.session.commit()
    flash(f"Mois {period} clôturé : {len(touched)} relevé(s) créé(s) ou complété(s).", "success")
    return redirect_to(url_for("mandataire.statements_page"))


@bp.route("/contre-paiement/<int:statement_id>", permission=Permission.CLOSE_MONTH)
def statement_page(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    return render("tenants/mandataire/statement.html", statement=statement,
                  bank=operateurs.current_bank_details(db.session, statement.structure_id),
                  profile=operateurs.profile_of(db.session, statement.structure, create=False),
                  transfers=sepa.lines_of_statement(db.session, statement.id))


@bp.route("/contre-paiement/<int:statement_id>/valider", methods=["POST"],
          permission=Permission.CLOSE_MONTH)
def statement_validate(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    settlement.validate(db.session, statement, actor=current_actor())
    db.session.commit()
    flash("Relevé validé : ses pass sont mis en contre-paiement.", "success")
    return redirect_to(url_for("mandataire.statement_page", statement_id=statement.id))


@bp.route("/contre-paiement/<int:statement_id>/correction", methods=["POST"],
          permission=Permission.CLOSE_MONTH)
def statement_correction(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    settlement.add_correction(db.session, statement,
                              amount_cents=forms.integer("amount_cents", "Montant (centimes)",
                                                         minimum=-10_000_000, maximum=10_000_000),
                              label=forms.text("label", "Motif", max_length=300),
                              actor=current_actor())
    db.session.commit()
    flash("Ligne de correction ajoutée.", "success")
    return redirect_to(url_for("mandataire.statement_page", statement_id=statement.id))


@bp.route("/contre-paiement/<int:statement_id>/releve.csv", permission=Permission.CLOSE_MONTH)
def statement_csv(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    return attachment(settlement.to_csv(statement),
                      f"releve-{statement.period}-{statement.id}.csv", CSV)


@bp.route("/contre-paiement/<int:statement_id>/releve.pdf", permission=Permission.CLOSE_MONTH)
def statement_pdf(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    out = io.BytesIO()
    render_statement_pdf(statement, out)
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"releve-{statement.period}-{statement.id}.pdf")


@bp.route("/contre-paiement/<int:statement_id>/attestation.pdf", permission=Permission.CLOSE_MONTH)
def statement_attestation(statement_id: int):
    statement = get_or_404(Statement, statement_id)
    out = io.BytesIO()
    render_attestation_pdf(statement, out)
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"attestation-{statement.period}-{statement.id}.pdf")


# ------------------------------------------------------------------ oppositions, end of validity

@bp.route("/fin-de-validite", permission=Permission.VIEW_TENANT)
def validity_page():
    programmes = issuance.programmes_of(db.session, current_tenant())
    return render("tenants/mandataire/validity.html", programmes=programmes,
                  today=today())


def _programme(programme_id: int) -> Programme:
    return get_or_404(Programme, programme_id)


@bp.route("/fin-de-validite/<int:programme_id>/opposition", methods=["POST"],
          permission=Permission.BLOCK_PASS)
def opposition(programme_id: int):
    programme = _programme(programme_id)
    count = validity.oppose(db.session, programme, forms.text("first", "Premier numéro", max_length=40),
                            forms.text("last", "Dernier numéro", required=False, max_length=40),
                            reason=forms.text("reason", "Motif", max_length=500),
                            actor=current_actor())
    db.session.commit()
    flash(f"Opposition enregistrée : {format_count(count)} pass bloqué(s).", "success")
    return redirect_to(url_for("mandataire.validity_page"))


@bp.route("/fin-de-validite/<int:programme_id>/proposer-blocage", methods=["POST"],
          permission=Permission.CLOSE_MONTH)
def propose_blocking(programme_id: int):
    validity.propose_blocking(db.session, _programme(programme_id), actor=current_actor(),
                              today=today())
    db.session.commit()
    flash("Blocage de la distribution proposé au commanditaire.", "success")
    return redirect_to(url_for("mandataire.validity_page"))


@bp.route("/fin-de-validite/<int:programme_id>/etat-contradictoire", methods=["POST"],
          permission=Permission.CLOSE_MONTH)
def closing_statement(programme_id: int):
    note = validity.closing_statement(db.session, _programme(programme_id), actor=current_actor(),
                                      today=today())
    db.session.commit()
    flash(f"État contradictoire : {format_count(note.pass_count)} pass non utilisés expirés, "
          f"avoir de {format_eur(note.amount_cents)}.", "success")
    return redirect_to(url_for("mandataire.validity_page"))
