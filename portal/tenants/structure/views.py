"""Views of a structure (prescripteur desk, opérateur scanning)."""
from __future__ import annotations

from portal.domain.permissions import Permission
from portal.tenants.structure import bp
from portal.web.render import render


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    return render("tenants/structure/home.html")
