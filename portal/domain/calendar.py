"""Jours ouvrés: the delivery deadline of a tranche is "20 jours ouvrés" after
MGP's confirmation (convention art. 4 and 5).

A jour ouvré here is a weekday (Monday–Friday) that is not a French public
holiday. Two settings of the programme change the calendar:
* ``holiday_subdivision``: "57" (Moselle) or "6AE" (Alsace) adds Good Friday
  and 26 December (Alsace-Moselle local law);
* ``pentecost_worked``: Lundi de Pentecôte is often worked (journée de
  solidarité); when true it counts as a working day.
Holidays come from the maintained ``holidays`` package (ENGINEERING.md).
Its holiday *names* follow the process locale (« Lundi de Pentecôte » under
``LANG=fr_FR.UTF-8``), so no rule matches a name: Lundi de Pentecôte is
computed (Easter Sunday + 50 days, ``dateutil.easter``, which ``holidays``
itself uses).
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
from dateutil.easter import easter

SUBDIVISIONS = {"": "Droit commun", "57": "Moselle", "6AE": "Alsace"}


@lru_cache(maxsize=64)
def _holidays(year: int, subdivision: str, pentecost_worked: bool) -> frozenset[dt.date]:
    calendar = holidays.France(years=year, subdiv=subdivision or None)
    days = set(calendar)
    if pentecost_worked:
        days.discard(pentecost_monday(year))
    return frozenset(days)


def pentecost_monday(year: int) -> dt.date:
    """Lundi de Pentecôte: the 50th day after Easter Sunday."""
    return easter(year) + dt.timedelta(days=50)


def is_working_day(day: dt.date, subdivision: str = "", pentecost_worked: bool = False) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year, subdivision, pentecost_worked)


def add_working_days(start: dt.date, days: int, subdivision: str = "",
                     pentecost_worked: bool = False) -> dt.date:
    """The date ``days`` jours ouvrés after ``start`` (``start`` itself not counted)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    current = start
    counted = 0
    while counted < days:
        current += dt.timedelta(days=1)
        if is_working_day(current, subdivision, pentecost_worked):
            counted += 1
    return current
