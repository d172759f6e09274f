"""Jinja filters and globals (French formatting)."""
from __future__ import annotations


from flask import g, request, url_for
from markupsafe import Markup, escape
from flask_login import current_user

from portal.domain import accounts
from portal.extensions import db
from portal.formatting import format_count, format_date, format_datetime, format_eur, format_pct
from portal.domain.references import lower_first
from portal.web.clock import today


# Colour of a state's badge, by its value (tranches, statements, qualifications, requests).
BADGE_TONES = {
    "recue": "success", "valide": "success", "paye": "success", "qualifie": "success",
    "accordee": "success", "acceptee": "success",
    "demandee": "warning", "en_attente": "warning", "brouillon": "warning",
    "a_verifier": "warning",
    "confirmee": "info", "expediee": "info",
    "refusee": "error", "refuse": "error", "suspendu": "error", "dequalifie": "error",
    "revoquee": "error",
}


def init_app(app):
    app.jinja_env.filters.update(
        eur=format_eur, date_fr=format_date, datetime_fr=format_datetime, count=format_count,
        pct=format_pct)

    def validity_alerts():
        """End-of-validity alerts of the current tenant (issue 6)."""
        from portal.domain import validity
        tenant = g.get("tenant")
        if tenant is None:
            return []
        return validity.alerts_for(db.session, tenant, today())
    app.jinja_env.globals["validity_alerts"] = validity_alerts

    def nav_link(endpoint: str, label: str, **values) -> Markup:
        """A menu item; ``aria-current="page"`` on the page it opens and the pages under it
        (the home page only on itself)."""
        url = url_for(endpoint, **values)
        here = request.path
        home = endpoint.endswith(".home")
        current = here == url or (not home and here.startswith(url.rstrip("/") + "/"))
        attr = ' aria-current="page"' if current else ""
        return Markup(f'<li><a href="{escape(url)}"{attr}>{escape(label)}</a></li>')
    app.jinja_env.globals["nav_link"] = nav_link

    def state_badge(state) -> Markup:
        """A state (enum with ``value`` and ``label``) as a coloured badge (component set)."""
        tone = BADGE_TONES.get(getattr(state, "value", state), "")
        label = getattr(state, "label", state)
        return Markup(f'<span class="badge{" badge-" + tone if tone else ""}">'
                      f'{escape(label)}</span>')
    app.jinja_env.filters["badge"] = state_badge

    def reference(obj) -> str:
        """How people name a tranche, habilitation, print job or order
        (``portal.domain.references``); ids stay in URLs. The ranks of a
        convention's abondements and of a programme's orders are read once per
        request."""
        from portal.domain import references
        from portal.models import Habilitation, PassOrder, PrintJob, Tranche
        ranks = g.setdefault("reference_ranks", {})
        if isinstance(obj, Tranche):
            key = ("convention", obj.convention_id)
            if key not in ranks:
                ranks[key] = references.abondement_ranks(db.session, obj.convention_id)
            return references.tranche(obj, ranks[key])
        if isinstance(obj, PassOrder):
            key = ("programme", obj.programme_id)
            if key not in ranks:
                ranks[key] = references.order_ranks(db.session, obj.programme_id)
            return references.order(obj, ranks[key])
        if isinstance(obj, Habilitation):
            return references.habilitation(obj)
        if isinstance(obj, PrintJob):
            return references.print_job(obj)
        raise TypeError(f"no human reference for {type(obj).__name__}")
    app.jinja_env.globals["reference"] = reference
    app.jinja_env.filters["lower_first"] = lower_first

    def programme_ended(programme) -> bool:
        from portal.domain.commanditaires import is_ended
        return is_ended(programme, today())
    app.jinja_env.globals["programme_ended"] = programme_ended

    @app.context_processor
    def layout_context():
        memberships = []
        if current_user.is_authenticated:
            memberships = accounts.memberships_of(db.session, current_user.id)
        return {"my_memberships": memberships, "tenant": g.get("tenant"),
                "membership": g.get("membership"), "now_year": today().year}
