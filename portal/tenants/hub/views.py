"""Views of the Hub tenant."""
from __future__ import annotations

from portal.domain.permissions import Permission
from portal.tenants.common import todo_items
from portal.tenants.hub import bp
from portal.web.render import render


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    return render("tenants/hub/home.html", todo=todo_items())
