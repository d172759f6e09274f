"""Open data: an anonymised aggregate per commune and month, over every
programme — pass handed out (distribution), scanned (scans made in the
month) and consumed (mis en contre-paiement, convention art. 5).

Statistical secrecy: a cell counting between 1 and ``THRESHOLD − 1`` pass is
suppressed (published empty, with ``secret`` set); no total is published,
so a suppressed cell cannot be recovered by subtraction. Zero is published
as zero. Read from ``flow_counts`` only; no beneficiary data is involved.
"""
from __future__ import annotations

from typing import Any
import io
import json
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import ledger, spreadsheet
from portal.models import FlowCount, Tenant
from portal.models.ledger import Nature

THRESHOLD = 11
MEASURES = [("remis", Nature.DISTRIBUTION), ("scannes", Nature.SCAN),
            ("consommes", Nature.CONTRE_PAIEMENT)]


def raw_counts(session: Session) -> dict[tuple[int, str], dict[str, int]]:
    """(commune_id, YYYY-MM) → measure → pass, before suppression."""
    natures = {n: key for key, n in MEASURES}
    result: dict = defaultdict(lambda: {key: 0 for key, _ in MEASURES})
    ledger.settle(session)                    # flow_counts count sealed entries only
    for commune, day, nature, n in session.execute(
            sa.select(FlowCount.commune_id, FlowCount.day, FlowCount.nature, FlowCount.count)
            .where(FlowCount.nature.in_(list(natures)), FlowCount.commune_id != 0)):
        result[(commune, f"{day:%Y-%m}")][natures[Nature(nature)]] += int(n)
    return result


def suppress(value: int) -> int | None:
    return None if 0 < value < THRESHOLD else value


def rows(session: Session) -> list[dict]:
    names = dict(session.execute(sa.select(Tenant.id, sa.func.coalesce(Tenant.insee_code, ""))
                                 .where(Tenant.kind == "commune")).tuples().all())
    labels = dict(session.execute(sa.select(Tenant.id, Tenant.name)
                                  .where(Tenant.kind == "commune")).tuples().all())
    out = []
    for (commune, month), values in sorted(raw_counts(session).items(),
                                           key=lambda item: (labels.get(item[0][0], ""), item[0][1])):
        if commune not in labels:
            continue
        row: dict[str, Any] = {"commune": labels[commune], "code_insee": names.get(commune, ""),
                               "mois": month}
        secret = False
        for key, _nature in MEASURES:
            row[key] = suppress(values[key])
            secret = secret or row[key] is None
        row["secret_statistique"] = secret
        out.append(row)
    return out


def to_csv(data: list[dict]) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    writer = spreadsheet.csv_writer(out)
    header = ["commune", "code_insee", "mois"] + [k for k, _ in MEASURES] + ["secret_statistique"]
    writer.writerow(header)
    for row in data:
        writer.writerow(["" if row[h] is None else ("oui" if row[h] is True else
                                                    "non" if row[h] is False else row[h])
                         for h in header])
    return out.getvalue()


def to_json(data: list[dict]) -> str:
    return json.dumps({"description": "Pass Numérique : pass remis, scannés et consommés par "
                                      "commune et par mois. Cellules de 1 à "
                                      f"{THRESHOLD - 1} pass masquées (secret statistique).",
                       "seuil": THRESHOLD, "lignes": data}, ensure_ascii=False)
