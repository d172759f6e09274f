"""The territory of a commanditaire: its communes (issue 13).

Communes come from the bundled reference list of the Métropole du Grand
Paris (``portal/data/communes_mgp.json``, built by
``scripts/build_communes_mgp.py`` from the npm package
``@etalab/decoupage-administratif``: members of the EPCI 200054781), or from a
CSV file (code INSEE, nom). Either way the commanditaire first sees a preview
— what will be created, what already exists, each rejected line with its
reason — and nothing is written until it confirms (``add_communes`` checks
every line again). Then it invites each commune's référent de projet
(convention MGP–commune art. 7).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import pathlib
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.commanditaires import (clean_email, invite, record, snapshot, unique_slug)
from portal.domain.errors import InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.models import Tenant

REFERENCE_FILE = pathlib.Path(__file__).resolve().parent.parent / "data" / "communes_mgp.json"
# INSEE commune code: 2 digits (or 2A/2B in Corsica) then 3 digits; 97x overseas.
INSEE = re.compile(r"(?:\d{2}|2[AB])\d{3}")
MAX_CSV_BYTES = 512 * 1024
MAX_LINES = 2000


@functools.lru_cache(maxsize=1)
def reference() -> dict:
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


def reference_communes() -> list[dict]:
    """[{insee, nom, departement}] of the Métropole du Grand Paris."""
    return reference()["communes"]


def departement_of(insee: str) -> str:
    return insee[:3] if insee.startswith("97") else insee[:2]


def normalise_insee(value: str) -> str | None:
    code = (value or "").strip().upper()
    if len(code) == 4 and code.isdigit():
        code = "0" + code          # a spreadsheet dropped the leading zero (01001 → 1001)
    if not INSEE.fullmatch(code) or code.startswith("00") or code.startswith("20"):
        return None
    return code


@dataclass
class Line:
    number: int            # line of the file (1 = first line), or 0 for the reference list
    insee: str
    name: str
    reason: str = ""       # why it is rejected


@dataclass
class Preview:
    to_create: list[Line] = field(default_factory=list)
    existing: list[Line] = field(default_factory=list)
    rejected: list[Line] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM; else Windows-1252 (Excel's « CSV » on Windows)."""
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput("Fichier trop volumineux (512 Ko au plus).", field="file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise InvalidInput("Fichier illisible : enregistrez-le en CSV UTF-8.",
                               field="file") from None


HEADER_WORDS = {"insee", "code_insee", "code insee", "code", "codgeo", "code commune"}


def parse_csv(data: bytes) -> list[Line]:
    """Lines of a CSV of communes: code INSEE then nom, separated by ``;``
    (French Excel) or ``,``. A first line naming the columns is skipped.
    Returns every line, rejected ones with their reason."""
    text = decode(data)
    if "\x00" in text:
        raise InvalidInput("Fichier illisible (caractère nul) : envoyez un fichier CSV.",
                           field="file")
    rows = [r for r in text.splitlines()]
    if not any(r.strip() for r in rows):
        raise InvalidInput("Le fichier est vide.", field="file")
    if len(rows) > MAX_LINES:
        raise InvalidInput(f"Trop de lignes ({len(rows)}) : {MAX_LINES} au plus.", field="file")
    sample = next(r for r in rows if r.strip())
    delimiter = ";" if sample.count(";") >= max(sample.count(","), 1) else (
        "," if "," in sample else ";")
    lines: list[Line] = []
    for number, cells in enumerate(csv.reader(io.StringIO("\n".join(rows)), delimiter=delimiter),
                                   start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower().lstrip("\ufeff") in HEADER_WORDS:
            continue
        raw = delimiter.join(cells)
        if len(cells) < 2:
            other = "« , »" if delimiter == ";" else "« ; »"
            reason = ("une seule colonne : séparez le code INSEE et le nom par « ; » "
                      "(ou « , »)")
            if "\t" in cells[0] or ("," in cells[0] and delimiter == ";"):
                reason = f"séparateur non reconnu : utilisez « ; » ou {other}"
            lines.append(Line(number, raw[:40], "", reason))
            continue
        if len(cells) > 2 and any(cells[2:]):
            lines.append(Line(number, cells[0][:10], cells[1][:80],
                              "trop de colonnes : code INSEE ; nom attendus"))
            continue
        code, name = normalise_insee(cells[0]), " ".join(cells[1].split())
        if code is None:
            lines.append(Line(number, cells[0][:10], name[:80],
                              f"code INSEE « {cells[0][:10]} » invalide (5 caractères, "
                              "par exemple 93048)"))
        elif not name:
            lines.append(Line(number, code, "", "nom de la commune manquant"))
        elif len(name) > 120:
            lines.append(Line(number, code, name[:80], "nom trop long (120 caractères au plus)"))
        else:
            lines.append(Line(number, code, name))
    return lines


def reference_lines(codes: list[str]) -> list[Line]:
    """Lines for communes chosen in the bundled list (unknown codes rejected)."""
    by_code = {c["insee"]: c for c in reference_communes()}
    lines = []
    for code in codes:
        found = by_code.get((code or "").strip())
        if found is None:
            lines.append(Line(0, (code or "")[:10], "", "commune absente de la liste de "
                                                        "référence"))
        else:
            lines.append(Line(0, found["insee"], found["nom"]))
    return lines


def preview(session: Session, commanditaire: Tenant, lines: list[Line]) -> Preview:
    """Sort lines into created / already there / rejected, writing nothing."""
    result = Preview()
    seen: dict[str, int] = {}
    existing = {t.insee_code: t for t in session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE,
        Tenant.insee_code.in_([ln.insee for ln in lines if not ln.reason]))).scalars()}
    for line in lines:
        if line.reason:
            result.rejected.append(line)
            continue
        if line.insee in seen:
            where = f"ligne {seen[line.insee]}" if seen[line.insee] else "plus haut"
            result.rejected.append(Line(line.number, line.insee, line.name,
                                        f"doublon : code INSEE déjà présent ({where})"))
            continue
        seen[line.insee] = line.number
        tenant = existing.get(line.insee)
        if tenant is None:
            result.to_create.append(line)
        elif tenant.parent_id == commanditaire.id:
            result.existing.append(Line(line.number, line.insee, tenant.name))
        else:
            result.rejected.append(Line(line.number, line.insee, line.name,
                                        "commune déjà rattachée à un autre commanditaire"))
    return result


def add_communes(session: Session, commanditaire: Tenant, lines: list[Line], *, actor: Actor,
                 ip: str | None = None) -> Preview:
    """Create the communes of a confirmed preview (checked again: the preview
    may be stale). Existing and rejected lines change nothing."""
    if commanditaire.kind is not TenantKind.METROPOLE:
        raise NotAllowed("Seul un commanditaire ajoute des communes à son territoire.")
    result = preview(session, commanditaire, lines)
    for line in result.to_create:
        commune = Tenant(kind=TenantKind.COMMUNE, slug=unique_slug(session, line.name),
                         name=line.name, parent_id=commanditaire.id, insee_code=line.insee,
                         city=line.name)
        session.add(commune)
        session.flush()
        record(session, "tenant.created", actor=actor, tenant_id=commune.id, target="tenant",
               target_id=commune.id, after={**snapshot(commune),
                                            "commanditaire": commanditaire.name}, ip=ip)
    return result


def invite_referent(session: Session, commanditaire: Tenant, commune: Tenant, email: str, *,
                    actor: Actor):
    """The commanditaire invites the référent de projet of one of its communes
    (convention art. 7). Returns (invitation, raw token)."""
    if commune.kind is not TenantKind.COMMUNE or commune.parent_id != commanditaire.id:
        raise NotAllowed("Cette commune n'appartient pas à votre territoire.")
    return invite(session, email=clean_email(email, "email"), tenant=commune,
                  role=Role.REFERENT, actor=actor)
