"""Parsing of form fields into Python values, with French messages.

Each helper raises ``InvalidInput`` naming the field; the error handler
shows the message and answers 422. Nothing is written before parsing ends.
"""
from __future__ import annotations

import datetime as dt
import re

from flask import request

from portal.domain.errors import InvalidInput

_MAX_TEXT = 2000
_MAX_INTEGER = 2**31 - 1


def _raw(name: str) -> str:
    value = request.form.get(name, "")
    if "\x00" in value:
        raise InvalidInput("Caractère interdit dans la saisie.", field=name)
    return value.strip()


def text(name: str, label: str, *, required: bool = True, max_length: int = 200) -> str:
    value = _raw(name)
    if required and not value:
        raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=name)
    if len(value) > min(max_length, _MAX_TEXT):
        raise InvalidInput(f"Le champ « {label} » dépasse {max_length} caractères.", field=name)
    return value


def integer(name: str, label: str, *, minimum: int | None = None,
            maximum: int | None = None, required: bool = True) -> int | None:
    value = _raw(name).replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if not value:
        if required:
            raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=name)
        return None
    if not re.fullmatch(r"[+-]?\d{1,12}", value):
        raise InvalidInput(f"« {label} » doit être un nombre entier.", field=name)
    number = int(value)
    if maximum is None and abs(number) > _MAX_INTEGER:
        # Beyond a database INTEGER (PostgreSQL would refuse it with a 500).
        raise InvalidInput(f"« {label} » est trop grand.", field=name)
    if minimum is not None and number < minimum:
        raise InvalidInput(f"« {label} » doit être au moins {minimum}.", field=name)
    if maximum is not None and number > maximum:
        raise InvalidInput(f"« {label} » doit être au plus {maximum}.", field=name)
    return number


def date(name: str, label: str, *, required: bool = True) -> dt.date | None:
    value = _raw(name)
    if not value:
        if required:
            raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=name)
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise InvalidInput(f"« {label} » n'est pas une date valide (jj/mm/aaaa).", field=name)


def choice(name: str, label: str, choices, *, required: bool = True):
    """``choices`` is an Enum class or an iterable of allowed strings."""
    value = _raw(name)
    if not value:
        if required:
            raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=name)
        return None
    try:
        if isinstance(choices, type):
            return choices(value)
        if value in choices:
            return value
    except ValueError:
        pass
    raise InvalidInput(f"Valeur non reconnue pour « {label} ».", field=name)


def boolean(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "true", "oui")


def number_list(name: str, label: str, *, required: bool = False) -> list[int]:
    """"12, 15-18" → [12, 15, 16, 17, 18] (carnet numbers)."""
    ranges = number_ranges(name, label, required=required)
    return [n for first, last in ranges for n in range(first, last + 1)]


def number_ranges(name: str, label: str, *, required: bool = True,
                  limit: int = 1_000_000) -> list[tuple[int, int]]:
    """"1-500, 612" → [(1, 500), (612, 612)]."""
    value = _raw(name).replace(" ", "").replace("\u2013", "-").replace(";", ",")
    if not value:
        if required:
            raise InvalidInput(f"Le champ « {label} » est obligatoire.", field=name)
        return []
    ranges, total = [], 0
    for part in value.split(","):
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9}))?", part)
        if not match:
            raise InvalidInput(f"« {label} » : « {part[:20]} » n'est pas un numéro ni une plage "
                               "(ex. 1-500, 612).", field=name)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first:
            raise InvalidInput(f"« {label} » : plage {first}-{last} invalide.", field=name)
        total += last - first + 1
        if total > limit:
            raise InvalidInput(f"« {label} » : trop de numéros.", field=name)
        ranges.append((first, last))
    return ranges


def query_date(name: str, label: str, default: dt.date) -> dt.date:
    """A date from the query string (``?debut=2021-01-01``), or ``default``."""
    value = (request.args.get(name) or "").strip()
    if not value:
        return default
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value[:10], fmt).date()
        except ValueError:
            continue
    raise InvalidInput(f"« {label} » n'est pas une date valide (jj/mm/aaaa).", field=name)
