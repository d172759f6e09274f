"""Today's date for the views, in Paris time.

``PORTAL_TODAY`` (ISO date) pretends another day in development and tests,
e.g. to walk through the AMI 1 calendar of 2021; it is ignored in production.
"""
from __future__ import annotations

import datetime as dt

from flask import current_app

from portal.formatting import PARIS


def today() -> dt.date:
    forced = current_app.config.get("PORTAL_TODAY")
    if forced and current_app.config["PORTAL_ENV"] in ("development", "testing"):
        return dt.date.fromisoformat(forced)
    return dt.datetime.now(PARIS).date()
