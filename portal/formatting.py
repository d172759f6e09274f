"""French formatting of amounts, counts and dates (no Flask)."""
from __future__ import annotations

import datetime as dt
import math
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


def pct_text(value: float, digits: int = 1) -> str:
    """12.5 → '12,5'. Truncated, never rounded up: 2 499 / 5 000 shows
    49,9 and not 50,0, so a figure never claims a threshold the rule
    (integer comparison, convention art. 5) says is not reached."""
    scale = 10 ** digits
    floored = math.floor(value * scale + 1e-9) / scale
    return f"{floored:.{digits}f}".replace(".", ",")


def format_pct(value: float | None, digits: int = 1) -> str:
    """12.5 → '12,5 %' (French decimal comma, no-break space; truncated)."""
    if value is None:
        return "–"
    return pct_text(value, digits) + f"{NNBSP}%"


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


_VOWELS = "AEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŸ"
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")


def of_place(name: str) -> str:
    """« de Bondy », « d'Aubervilliers », « du Blanc-Mesnil », « des Lilas »."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[:1].upper() in _VOWELS:
        return "d'" + name
    return "de " + name


def format_month(period: str) -> str:
    """'2021-03' → 'mars 2021' (a period stays as is when it is not YYYY-MM)."""
    year, _, month = period.partition("-")
    if year.isdigit() and month.isdigit() and 1 <= int(month) <= 12:
        return f"{MONTHS[int(month) - 1]} {year}"
    return period
