"""Today's date for the views, in Paris time, from the portal's one clock
(``portal.domain.clock``).

``PORTAL_TODAY`` (ISO date) pretends another day in development and tests,
e.g. to walk through the AMI 1 calendar of 2021; it is ignored in production.
``init_app`` applies it at start-up and before every request, so views, the
API, scans, month closing and ledger timestamps all see the same day.
"""
from __future__ import annotations

import datetime as dt

from flask import current_app

from portal.domain import clock


def _pretended(app) -> str | None:
    forced = app.config.get("PORTAL_TODAY")
    if forced and app.config["PORTAL_ENV"] in ("development", "testing"):
        return forced
    return None


def sync(app=None) -> None:
    clock.pretend(_pretended(app or current_app))


def today() -> dt.date:
    sync()
    return clock.today()


def init_app(app) -> None:
    sync(app)
    app.before_request(sync)
