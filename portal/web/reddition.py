"""Reddition des comptes pages and exports, shared by the #APTIC and
Métropole faces (same statement, same files)."""
from __future__ import annotations

import datetime as dt

from flask import Response

from portal.domain import reddition
from portal.extensions import db
from portal.web import forms
from portal.web.clock import today
from portal.web.downloads import CSV, PDF, XLSX, attachment
from portal.web.render import render


def period() -> tuple[dt.date, dt.date]:
    day = today()
    first = day.replace(day=1)
    default_start = (first - dt.timedelta(days=1)).replace(day=1)
    start = forms.query_date("debut", "Début", default_start)
    end = forms.query_date("fin", "Fin", first - dt.timedelta(days=1))
    return start, end


def page(mandate, endpoint_prefix: str, can_close: bool):
    start, end = period()
    statement = reddition.build_statement(db.session, mandate, start, end, today())
    return render("tenants/reddition.html", mandate=mandate, statement=statement,
                  start=start, end=end, endpoint_prefix=endpoint_prefix, can_close=can_close,
                  years=[today().year - 1, today().year],
                  natures=[n for n in reddition.NATURE_ORDER if n in statement.total.natures])


def export(mandate, fmt: str) -> Response:
    start, end = period()
    statement = reddition.build_statement(db.session, mandate, start, end, today())
    name = f"reddition-{mandate.reference}-{start:%Y%m%d}-{end:%Y%m%d}"
    if fmt == "csv":
        return attachment(reddition.to_csv(statement), f"{name}.csv", CSV)
    if fmt == "xlsx":
        return attachment(reddition.to_xlsx(statement), f"{name}.xlsx", XLSX)
    return attachment(reddition.to_pdf(statement), f"{name}.pdf", PDF)


def verification(mandate):
    """The lazy panel of the page: every entry since emission, recomputed."""
    return render("tenants/reddition_verification_page.html",
                  partial="tenants/_reddition_verification.html", mandate=mandate,
                  results=reddition.full_verification(db.session, mandate))
