"""Anomalies flagged to #APTIC (issue 6, point 10): a pass scanned twice, a
whole carnet scanned within minutes at one place, a pass confié to one
commune used at a place of another commune.

Flags never block a scan by themselves (the double scan is refused by the
exactly-once rule): they are for #APTIC to review.

Where a pass may be used (issue 12): the programme's perimeter
(``programme_perimeter``: communes or structures; empty = everywhere) is the
commanditaire's territory, so a place outside it is refused
(``scanning.check_usable``). Inside it a beneficiary may go to any qualified
place: the convention has prescripteurs orient toward the opérateurs « du
territoire » (art. 8) but does not tie a pass to one commune's opérateurs,
and the pass still counts for the commune it was confié to (art. 5, 9). Such
a scan is accepted and recorded as ``AUTRE_COMMUNE`` so #APTIC and the
communes see the flows between territories.
"""
from __future__ import annotations

from typing import cast
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import (Anomaly, AnomalyKind, Programme, ProgrammePerimeter, Scan, Tenant,
                           utcnow)

# A whole carnet at one place within this window is suspicious.
BURST_WINDOW = dt.timedelta(minutes=15)


_ANOMALIES = cast(sa.Table, Anomaly.__table__)


def _add(session: Session, kind: AnomalyKind, dedup_key: str, *, check: bool = True,
         **values) -> str:
    """Insert once per (kind, dedup_key); returns the French label. ``check``
    False when the key cannot exist yet (one idempotency key, one anomaly).
    One Core INSERT, no unit of work: anomalies are written on the scan's
    hot path (issue 18)."""
    exists = None
    if check:
        exists = session.execute(sa.select(Anomaly.id).where(
            Anomaly.kind == kind, Anomaly.dedup_key == dedup_key[:120])).first()
    if exists is None:
        session.execute(_ANOMALIES.insert(), {"kind": kind, "dedup_key": dedup_key[:120],
                                              "created_at": utcnow(), **values})
    return kind.label


_PERIMETER = sa.select(ProgrammePerimeter.tenant_id).where(
    ProgrammePerimeter.programme_id == sa.bindparam("programme_id"))
_BURST = sa.select(sa.func.count()).where(
    Scan.carnet_id == sa.bindparam("carnet_id"), Scan.structure_id == sa.bindparam("structure_id"),
    Scan.cancelled_at.is_(None), Scan.scanned_at >= sa.bindparam("since"))


def outside_perimeter(session: Session, programme_id: int, structure: Tenant) -> bool:
    """A programme with a perimeter accepts its pass at the listed
    structures and at every structure of the listed communes."""
    rows = set(session.execute(_PERIMETER, {"programme_id": programme_id}).scalars())
    if not rows:
        return False
    return structure.id not in rows and structure.parent_id not in rows


def from_other_commune(pass_commune_id: int | None, structure: Tenant) -> bool:
    """A pass confié to a commune, scanned at a place of another commune."""
    return (pass_commune_id is not None and structure.parent_id is not None
            and pass_commune_id != structure.parent_id)


def flag_other_commune(session: Session, scan: Scan, *, commune_name: str | None,
                       structure_name: str | None) -> str:
    """The names come with the scan's context (no statement of their own)."""
    return _add(session, AnomalyKind.AUTRE_COMMUNE, f"scan:{scan.id}", check=False,
                programme_id=scan.programme_id, structure_id=scan.structure_id,
                pass_id=scan.pass_id, serial=scan.serial,
                detail=f"Pass confié à {commune_name or 'une autre commune'}, "
                       f"utilisé chez {structure_name or 'ce lieu'}.")


def flag_carnet_burst(session: Session, scan: Scan, programme: Programme, now: dt.datetime,
                      *, count: int | None = None) -> str | None:
    """Flag when every pass of one carnet was scanned at one place within
    ``BURST_WINDOW``. ``count``: those scans, this one included, when the
    caller already read them (the scan's one-statement context)."""
    if count is None:
        count = session.execute(_BURST, {"carnet_id": scan.carnet_id,
                                         "structure_id": scan.structure_id,
                                         "since": scan.scanned_at - BURST_WINDOW}).scalar_one()
    if count < programme.pass_per_carnet:
        return None
    return _add(session, AnomalyKind.CARNET_EN_RAFALE,
                f"carnet:{scan.carnet_id}:{scan.structure_id}",
                programme_id=scan.programme_id, structure_id=scan.structure_id,
                pass_id=scan.pass_id, serial=scan.serial,
                detail=f"{count} pass du même carnet scannés en moins de "
                       f"{int(BURST_WINDOW.total_seconds() // 60)} minutes au même endroit.")


def flag_double_scan(session: Session, error, structure: Tenant, key: str) -> str:
    details = error.details
    return _add(session, AnomalyKind.DOUBLE_SCAN,
                f"pass:{details.get('pass_id')}:{structure.id}:{key}", check=False,
                programme_id=details.get("programme_id"), structure_id=structure.id,
                pass_id=details.get("pass_id"), serial=details.get("serial", ""),
                detail=f"Second scan refusé : {error.message}")


def open_anomalies(session: Session, *, limit: int = 200) -> list[Anomaly]:
    return list(session.execute(sa.select(Anomaly).where(Anomaly.reviewed_at.is_(None))
                                .order_by(Anomaly.id.desc()).limit(limit)).scalars())


def mark_reviewed(session: Session, anomaly: Anomaly, user_id: int | None) -> None:
    anomaly.reviewed_at = utcnow()
    anomaly.reviewed_by_id = user_id
