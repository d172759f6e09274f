"""#APTIC: funds of the mandate, SEPA payment runs, bank statements (issue 17).

A form error re-renders the funds page with the message next to its field and
the values typed kept (status 422 or 409), never a dead-end error page.
"""
from __future__ import annotations

from flask import Response, abort, flash, request, url_for

from portal.domain import camt, funds, sepa
from portal.domain.errors import DomainError, InvalidInput
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.formatting import format_eur
from portal.models import BankImport, FundCall, Mandate, PaymentRun, RunStatus
from portal.tenants.mandataire import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.downloads import attachment
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404, scoped_select


def _page(mandate: Mandate, *, errors: dict | None = None, form: str = "", status: int = 200):
    day = today()
    calls = db.session.execute(scoped_select(FundCall, FundCall.mandate_id == mandate.id)
                               .order_by(FundCall.id.desc())).scalars().all()
    from portal.models import FundAdvance
    advances = db.session.execute(scoped_select(FundAdvance, FundAdvance.mandate_id == mandate.id)
                                  .order_by(FundAdvance.id.desc())).scalars().all()
    return render("tenants/mandataire/funds.html", mandate=mandate, today=day,
                  position=funds.position(db.session, mandate, day), calls=calls,
                  advances=advances, payable=sepa.payable(db.session, mandate),
                  runs=sepa.runs(db.session, mandate), imports=camt.imports(db.session, mandate),
                  unmatched=camt.unmatched(db.session, mandate), errors=errors or {},
                  form=form, values=request.form if errors else {}, status_code=status)


def _retry(mandate: Mandate, form: str, action):
    """Run ``action``; on a domain error, roll back and show the page again."""
    try:
        result = action()
    except DomainError as error:
        db.session.rollback()
        return None, _page(mandate, errors={error.field or "_": error.message}, form=form,
                           status=error.status)
    db.session.commit()
    return result, None


@bp.route("/mandats/<int:mandate_id>/fonds", permission=Permission.VIEW_TENANT)
def funds_page(mandate_id: int):
    return _page(get_or_404(Mandate, mandate_id))


@bp.route("/mandats/<int:mandate_id>/fonds/compte", methods=["POST"],
          permission=Permission.MANAGE_FUNDS)
def funds_account(mandate_id: int):
    mandate = get_or_404(Mandate, mandate_id)
    _done, page = _retry(mandate, "compte", lambda: sepa.set_account(
        db.session, mandate, holder=forms.text("account_holder", "Titulaire", max_length=140),
        iban=forms.text("account_iban", "IBAN", max_length=50),
        bic=forms.text("account_bic", "BIC", max_length=20)))
    if page is not None:
        return page
    flash("Compte bancaire du mandat enregistré.", "success")
    return redirect_to(url_for(".funds_page", mandate_id=mandate.id))


def _euros(name: str, label: str) -> int:
    raw = forms.text(name, label, max_length=20).replace("\u202f", "").replace("\u00a0", "")
    raw = raw.replace(" ", "").replace("€", "").replace(",", ".")
    try:
        whole, _dot, frac = raw.partition(".")
        if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
            raise ValueError
        return int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    except ValueError:
        raise InvalidInput(f"« {label} » : montant en euros attendu (ex. 12 500,00).",
                           field=name) from None


@bp.route("/mandats/<int:mandate_id>/fonds/appels", methods=["POST"],
          permission=Permission.MANAGE_FUNDS)
def funds_call(mandate_id: int):
    mandate = get_or_404(Mandate, mandate_id)
    call, page = _retry(mandate, "appel", lambda: funds.call_for_funds(
        db.session, mandate, reference=forms.text("reference", "Référence", max_length=80),
        amount_cents=_euros("amount", "Montant"), called_on=forms.date("called_on", "Date"),
        note=forms.text("note", "Objet", required=False, max_length=500), actor=current_actor()))
    if page is not None:
        return page
    flash(f"Appel de fonds {call.reference} de {format_eur(call.amount_cents)} enregistré.",
          "success")
    return redirect_to(url_for(".funds_page", mandate_id=mandate.id))


@bp.route("/mandats/<int:mandate_id>/fonds/avances", methods=["POST"],
          permission=Permission.MANAGE_FUNDS)
def funds_advance(mandate_id: int):
    mandate = get_or_404(Mandate, mandate_id)

    def action():
        call_id = forms.integer("fund_call_id", "Appel de fonds", minimum=1, required=False)
        call = None
        if call_id:
            call = db.session.execute(scoped_select(FundCall, FundCall.id == call_id,
                                                    FundCall.mandate_id == mandate.id)).scalar()
            if call is None:
                raise InvalidInput("Appel de fonds inconnu.", field="fund_call_id")
        return funds.record_advance(
            db.session, mandate, reference=forms.text("reference", "Référence", max_length=80),
            amount_cents=_euros("amount", "Montant"),
            received_on=forms.date("received_on", "Date de réception"), actor=current_actor(),
            fund_call=call)
    advance, page = _retry(mandate, "avance", action)
    if page is not None:
        return page
    flash(f"Avance de {format_eur(advance.amount_cents)} enregistrée.", "success")
    return redirect_to(url_for(".funds_page", mandate_id=mandate.id))


@bp.route("/mandats/<int:mandate_id>/virements", methods=["POST"],
          permission=Permission.MANAGE_FUNDS)
def prepare_run(mandate_id: int):
    mandate = get_or_404(Mandate, mandate_id)
    run, page = _retry(mandate, "campagne", lambda: sepa.prepare_run(
        db.session, mandate, execution_date=forms.date("execution_date", "Date d'exécution"),
        actor=current_actor(), today=today()))
    if page is not None:
        return page
    flash(f"Campagne préparée : {len(run.lines)} virement(s), {format_eur(run.total_cents)}.",
          "success")
    return redirect_to(url_for(".run_page", run_id=run.id))


@bp.route("/virements/<int:run_id>", permission=Permission.MANAGE_FUNDS)
def run_page(run_id: int):
    run = get_or_404(PaymentRun, run_id)
    return render("tenants/mandataire/run.html", run=run, mandate=db.session.get(Mandate, run.mandate_id))


def _file(run: PaymentRun, data: bytes) -> Response:
    return attachment(data, f"virements-{run.message_id}.xml", "application/xml")


@bp.route("/virements/<int:run_id>/export", methods=["POST"], permission=Permission.MANAGE_FUNDS)
def export_run(run_id: int):
    run = get_or_404(PaymentRun, run_id)
    data = sepa.export_run(db.session, db.session.get(Mandate, run.mandate_id), run,
                           actor=current_actor())
    db.session.commit()
    return _file(run, data)


@bp.route("/virements/<int:run_id>/pain001.xml", permission=Permission.MANAGE_FUNDS)
def run_file(run_id: int):
    run = get_or_404(PaymentRun, run_id)
    if run.status is not RunStatus.EXPORTEE:
        abort(404)
    return _file(run, run.file_xml.encode())


@bp.route("/virements/<int:run_id>/abandon", methods=["POST"], permission=Permission.MANAGE_FUNDS)
def cancel_run(run_id: int):
    run = get_or_404(PaymentRun, run_id)
    mandate_id = run.mandate_id
    sepa.cancel_run(db.session, run)
    db.session.commit()
    flash("Campagne abandonnée.", "success")
    return redirect_to(url_for(".funds_page", mandate_id=mandate_id))


@bp.route("/mandats/<int:mandate_id>/releves-bancaires", methods=["POST"],
          permission=Permission.MANAGE_FUNDS)
def import_bank_statement(mandate_id: int):
    mandate = get_or_404(Mandate, mandate_id)
    upload = request.files.get("fichier")
    data = upload.read(camt.MAX_BYTES + 1) if upload else b""
    result, page = _retry(mandate, "releve", lambda: camt.import_statement(
        db.session, mandate, data, filename=upload.filename if upload else "",
        actor=current_actor()))
    if page is not None:
        return page
    record, created = result
    if created:
        flash(f"Relevé importé : {record.paid} relevé(s) payé(s), {record.returned} virement(s) "
              f"retourné(s), {record.unknown} opération(s) non rapprochée(s).", "success")
    else:
        flash("Ce relevé bancaire a déjà été importé : rien n'a changé.", "info")
    return redirect_to(url_for(".bank_import_page", import_id=record.id))


@bp.route("/releves-bancaires/<int:import_id>", permission=Permission.MANAGE_FUNDS)
def bank_import_page(import_id: int):
    record = get_or_404(BankImport, import_id)
    return render("tenants/mandataire/bank_import.html", record=record,
                  mandate=db.session.get(Mandate, record.mandate_id))
