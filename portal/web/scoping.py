"""Tenant-scoped loading: the only way views fetch rows by id.

A model that can be reached from a tenant URL defines
``tenant_clause(tenant) -> SQL expression`` saying which rows that tenant
may see. ``get_or_404`` applies it, so a row of another tenant is simply
"not found".
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort

from portal.extensions import db
from portal.web.gate import current_tenant


def scoped_select(model, *criteria):
    return sa.select(model).where(model.tenant_clause(current_tenant()), *criteria)


def get_or_404(model, ident, *criteria):
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    if not (0 < ident < 2**62):
        abort(404)
    row = db.session.execute(
        scoped_select(model, model.id == ident, *criteria)).scalar_one_or_none()
    if row is None:
        abort(404)
    return row
