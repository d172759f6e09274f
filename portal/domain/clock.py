"""The one clock of the portal: web, API, commands and the ledger.

Every timestamp the portal writes (ledger entries, scans, statements, the
``default=utcnow`` of every model) and every "today" it reads (views,
commands, month closing) comes from here, in UTC for storage and in Paris
time for the calendar (the conventions' dates are French civil dates).

``PORTAL_TODAY`` (development and tests only; ignored in production by
``portal.config``) pretends another day: the clock then runs at the real
time of day on that date, so that a programme's calendar (AMI 1 in 2021)
can be replayed end to end through the UI, scans and ``close-month``
included. The application sets it at start-up and before each request
(``portal.web.clock``), so a test that changes ``PORTAL_TODAY`` on the app
moves every part of the portal at once. Cost on the scan path: one global
read.
"""
from __future__ import annotations

import contextlib
import datetime as dt

from portal.formatting import PARIS

_pretended: dt.date | None = None


def pretend(day: dt.date | str | None) -> None:
    """Pretend ``day`` is today (None: the real date)."""
    global _pretended
    _pretended = dt.date.fromisoformat(day) if isinstance(day, str) else day


@contextlib.contextmanager
def pretending(day: dt.date | None):
    """Pretend ``day`` is today inside the block, then give the clock back
    what it said before (the demo data tells its last two months this way)."""
    global _pretended
    saved = _pretended
    pretend(day)
    try:
        yield
    finally:
        _pretended = saved


def now() -> dt.datetime:
    """The current instant, aware, in UTC."""
    real = dt.datetime.now(dt.timezone.utc)
    day = _pretended
    if day is None:
        return real
    return real + (day - real.astimezone(PARIS).date())


def today() -> dt.date:
    """Today's date in Paris."""
    return now().astimezone(PARIS).date()
