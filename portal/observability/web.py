"""Request ids, JSON logs, request latency, Sentry: wired into the app here."""
from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import g, request

from portal.observability import metrics
from portal.observability.context import RequestIdFilter, reset_request_id as _request_id_var_reset, set_request_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def configure_logging(app) -> None:
    """One handler on the root logger: JSON lines (production) or text (development)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_portal", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._portal = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if app.config["LOG_FORMAT"] == "json":
        from pythonjsonlogger.json import JsonFormatter
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    level = logging.INFO if app.debug or app.testing else app.config["LOG_LEVEL"]
    root.setLevel(level)


def init_sentry(app) -> None:
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return
    try:
        import sentry_sdk
    except ImportError:
        logging.getLogger("portal").warning(
            "SENTRY_DSN is set but sentry-sdk is not installed (pip install '.[sentry]')")
        return
    sentry_sdk.init(dsn=dsn, environment=app.config["PORTAL_ENV"], send_default_pii=False)


def init_app(app) -> None:
    configure_logging(app)
    init_sentry(app)

    @app.before_request
    def _start():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_id_token = set_request_id(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
        started = g.get("request_started")
        if started is not None:
            group = (request.blueprint or request.endpoint or "none").split(".")[0]
            metrics.REQUEST_LATENCY.labels(group=group, method=request.method).observe(
                time.perf_counter() - started)
        return response

    @app.teardown_request
    def _forget_request_id(_error=None):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                _request_id_var_reset(token)
            except ValueError:      # set in another context (should not happen)
                pass
