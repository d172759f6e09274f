"""Pass Numérique portal: application factory."""
from __future__ import annotations

from flask import Flask

from portal.config import PROJECT_ROOT, load_config


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    app.config.update(load_config(overrides))
    app.config.setdefault("SCAN_UNDO_MINUTES", 30)
    if app.config["PORTAL_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix
        hops = app.config["PORTAL_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from portal.observability import web as observability
    observability.init_app(app)
    if app.config["PORTAL_ENV"] not in ("development", "testing"):
        from portal.printing.carnets import check_fonts
        check_fonts()           # production refuses to start without the PDF fonts

    from portal.domain import keys
    keys.configure(app.config["PASS_MAC_KEYS"], app.config["PASS_MAC_ACTIVE_KEY"],
                   app.config["LEDGER_HMAC_KEY"])

    from portal import database
    from portal.extensions import csrf, db, htmx, login_manager

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          database.engine_options(app.config["SQLALCHEMY_DATABASE_URI"],
                                                  app.config["DATABASE_CONNECT_TIMEOUT"]))
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        (PROJECT_ROOT / "instance").mkdir(exist_ok=True)
    db.init_app(app)
    with app.app_context():
        database.configure_engine(db.engine)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    from portal.security.throttle import Throttle, make_backend
    app.extensions["throttle"] = Throttle(make_backend(app.config["REDIS_URL"]),
                                          app.config["LOGIN_THROTTLE"])
    if app.testing:
        app.extensions["outbox"] = []

    from portal import jobs
    jobs.init_app(app)

    from portal.web import converters, errors, gate, headers, templating
    converters.init_app(app)
    from portal.web import clock
    clock.init_app(app)          # first before_request: one clock for the whole request
    from portal.web.render import french_redirect
    app.redirect = french_redirect   # flask.redirect() answers with a French body
    from portal.web import input_guard
    input_guard.init_app(app)
    gate.init_app(app)
    from portal.web import sessions
    sessions.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    templating.init_app(app)

    from portal import auth, cli, public
    from portal.auth import identity  # noqa: F401  (registers the user loader)
    from portal.tenants import register_tenant_blueprints
    app.register_blueprint(auth.bp)
    from portal.auth.twofactor import bp as second_factor_bp
    app.register_blueprint(second_factor_bp)
    from portal.auth.invitations import bp as invitations_bp
    app.register_blueprint(invitations_bp)
    app.register_blueprint(public.bp)
    from portal import opendata_views
    app.register_blueprint(opendata_views.bp)
    from portal import candidature
    app.register_blueprint(candidature.bp)
    register_tenant_blueprints(app)
    from portal import api
    api.init_app(app)
    cli.init_app(app)
    return app
