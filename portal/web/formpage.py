"""Helpers of the onboarding pages (issue 13): first values of a form, the client's
address, the invitation e-mail, the structure form, the lieux export.

A refused form is not handled here: the view lets its ``DomainError`` go, and
``portal/web/refill.py`` shows the page again filled, the message at its field.
"""
from __future__ import annotations

from flask import request
from werkzeug.datastructures import MultiDict

from portal.extensions import db


def blank(values: dict | None = None) -> MultiDict:
    """Initial values of a form (lists become repeated keys, e.g. checkboxes)."""
    data = MultiDict()
    for key, value in (values or {}).items():
        if isinstance(value, (list, tuple, set)):
            for item in value:
                data.add(key, item)
        elif isinstance(value, bool):
            if value:
                data.add(key, "1")
        elif value is not None:
            data.add(key, value.isoformat() if hasattr(value, "isoformat") else str(value))
    return data


def client_ip() -> str | None:
    return request.remote_addr


def send_invitation(invitation, token: str) -> None:
    """After COMMIT: the invitation e-mail (issue 13, part a)."""
    from portal import notifications
    notifications.send_invitation(invitation, token)


def structure_form_data() -> dict:
    """The structure form (référent's and #APTIC's pages)."""
    form = request.form
    return {"name": form.get("name", ""), "siret": form.get("siret", ""),
            "address_line": form.get("address_line", ""),
            "postal_code": form.get("postal_code", ""), "city": form.get("city", ""),
            "is_prescripteur": form.get("is_prescripteur") == "1",
            "is_operateur": form.get("is_operateur") == "1",
            "admin_email": form.get("admin_email", "")}


def lieux_export(programme, fmt: str):
    """The programme's qualified places in the national schema (CSV or JSON)."""
    from portal.domain import lieux
    rows = lieux.records(db.session, programme)
    name = f"lieux-mediation-numerique-{programme.prefix}.{fmt}"
    from portal.web.downloads import CSV, JSON, attachment
    if fmt == "csv":
        return attachment(lieux.to_csv(rows), name, CSV)
    return attachment(lieux.to_json(rows), name, JSON)
