"""JSON API for phones and integrations: ``/api/v1`` (issue 6, point 4).

Authentication is a bearer token of a structure, resolved by the tenant gate
(``portal.web.gate.ApiBlueprint``). The blueprint is exempt from CSRF only
because the gate refuses cookie-only requests there.
"""
from portal.web.gate import ApiBlueprint

bp = ApiBlueprint("api", __name__, url_prefix="/api/v1")

from portal.api import views  # noqa: E402,F401


def init_app(app):
    from portal.extensions import csrf
    from portal.security.throttle import Throttle, make_backend
    csrf.exempt(bp)
    app.extensions["scan_throttle"] = Throttle(
        make_backend(app.config["REDIS_URL"]),
        {"scan_failures": app.config.get("SCAN_FAILURE_LIMIT", (30, 600))}, prefix="pn:scan")
    app.register_blueprint(bp)
