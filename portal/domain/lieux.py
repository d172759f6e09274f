"""The qualified places of a programme in the national data schema of
digital-mediation places (« lieux de médiation numérique » v1.0.2, ANCT /
La MedNum; the Table Schema is bundled as
``portal/data/schema_lieux_mediation_numerique.json``).

A place is exported when it is an opérateur qualified by #APTIC and approved
by its commune (the places where the programme's pass are accepted, art. 8:
the explanatory document lists them), in a commune of the programme's
perimeter (or named itself in the perimeter).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import pathlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.permissions import TenantKind
from portal.models import (LieuMediation, OperateurProfile, Programme, ProgrammePerimeter,
                           Qualification, Tenant)

SCHEMA_FILE = (pathlib.Path(__file__).resolve().parent.parent / "data"
               / "schema_lieux_mediation_numerique.json")


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def field_names() -> list[str]:
    return [f["name"] for f in schema()["fields"]]


def qualified_places(session: Session, programme: Programme) -> list[tuple[Tenant, LieuMediation | None]]:
    perimeter = sa.select(ProgrammePerimeter.tenant_id).where(
        ProgrammePerimeter.programme_id == programme.id)
    rows = session.execute(
        sa.select(Tenant, LieuMediation)
        .join(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
        .outerjoin(LieuMediation, LieuMediation.structure_id == Tenant.id)
        .where(Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True),
               OperateurProfile.qualification == Qualification.QUALIFIE,
               OperateurProfile.commune_approved_at.is_not(None),
               sa.or_(Tenant.parent_id.in_(perimeter), Tenant.id.in_(perimeter)))
        .order_by(Tenant.name, Tenant.id)).all()
    return [(t, lieu) for t, lieu in rows]


def records(session: Session, programme: Programme) -> list[dict]:
    """One dict per place, keys from the schema, empty fields left out."""
    communes = {t.id: t for t in session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE)).scalars()}
    commanditaire = programme.commanditaire
    out = []
    for structure, lieu in qualified_places(session, programme):
        commune = communes.get(structure.parent_id) if structure.parent_id else None
        updated = (lieu.updated_at if lieu is not None else structure.created_at)
        row = {
            "id": f"pass-numerique-{structure.slug}",
            "pivot": structure.siret or "",
            "nom": structure.name,
            "commune": structure.city or (commune.name if commune else ""),
            "code_postal": structure.postal_code,
            "code_insee": (commune.insee_code if commune else "") or "",
            "adresse": structure.address_line,
            "source": f"Pass Numérique — {commanditaire.name}",
            "date_maj": updated.date().isoformat(),
            "dispositif_programmes_nationaux": "",
        }
        if lieu is not None:
            row.update(services="|".join(lieu.services), telephone=lieu.telephone,
                       courriels=lieu.courriels, site_web=lieu.site_web, horaires=lieu.horaires,
                       presentation_resume=lieu.presentation_resume, typologie=lieu.typologie)
        out.append({k: v for k, v in row.items() if v not in ("", None)})
    return out


def to_csv(rows: list[dict]) -> str:
    """CSV as the schema's validators read it: comma, UTF-8, every column of
    the schema in its order, header first."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=field_names(), lineterminator="\r\n",
                            quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _safe_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _safe_cell(value):
    """No formula injection in spreadsheets (ENGINEERING.md): a text cell that
    begins with = + - @ is prefixed with an apostrophe. Schema fields never
    legitimately start so, except a telephone (+33…), which is kept."""
    if isinstance(value, str) and value[:1] in "=-@" and value:
        return "'" + value
    return value


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=1)
