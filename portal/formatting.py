"""French formatting of amounts, counts and dates (no Flask)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"  # narrow no-break space: thousands separator in French
NBSP = "\u00a0"


def format_count(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n:,}".replace(",", NNBSP)


def format_eur(cents: int | None) -> str:
    """1234567 → '12 345,67 €' (French spaces)."""
    if cents is None:
        return "–"
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{format_count(euros)},{rest:02d}{NBSP}€"


def format_pct(value: float | None, digits: int = 1) -> str:
    """12.5 → '12,5 %' (French decimal comma, no-break space)."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace(".", ",") + f"{NNBSP}%"


def format_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        value = value.astimezone(PARIS).date() if value.tzinfo else value.date()
    return value.strftime("%d/%m/%Y")


def format_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    if value.tzinfo:
        value = value.astimezone(PARIS)
    return value.strftime("%d/%m/%Y à %H:%M")
