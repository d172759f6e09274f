"""Monthly report of convention art. 9: "un retour mensuel sur la
consommation des Pass de la commune et le total sur l'ensemble des
territoires".

Figures come from ``flow_counts`` (the ledger's movements per Paris day),
so the report of a month says the same thing whenever it is generated:

* in the month — pass remis (distribution), scannés (scan − annulation),
  mis en contre-paiement (art. 5: consommés);
* cumulated at the month's end — reçus (livraison − restitution), remis,
  scannés, consommés, and consommés / reçus.

**Idempotence (choice):** generating a month that already has a report
returns the stored one unchanged; ``regenerate=True`` stores a new version
(``version`` + 1), the earlier ones stay readable. A commune reads its own
line and the total only.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import ledger, spreadsheet
from portal.domain.errors import InvalidInput
from portal.domain.ledger import Actor
from portal.formatting import pct_text
from portal.models import Convention, FlowCount, MonthlyReport, Programme, Tenant, utcnow
from portal.models.ledger import Nature

FIGURES = [("held", "Reçus"), ("handed_out", "Remis"), ("scanned", "Scannés"),
           ("consumed", "Mis en contre-paiement")]
_SIGN = {Nature.LIVRAISON: ("held", 1), Nature.RESTITUTION: ("held", -1),
         Nature.DISTRIBUTION: ("handed_out", 1), Nature.SCAN: ("scanned", 1),
         Nature.ANNULATION_SCAN: ("scanned", -1), Nature.CONTRE_PAIEMENT: ("consumed", 1)}


def parse_month(value: str) -> tuple[dt.date, dt.date]:
    """"2021-03" → (2021-03-01, 2021-04-01)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value or ""):
        raise InvalidInput("Mois invalide (format AAAA-MM).", field="month")
    first = dt.date(int(value[:4]), int(value[5:]), 1)
    if not 2000 <= first.year <= 2100:
        raise InvalidInput("Mois hors des bornes acceptées.", field="month")
    after = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, after


def previous_month(today: dt.date) -> str:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last:%Y-%m}"


def build_content(session: Session, programme: Programme, month: str) -> dict:
    first, after = parse_month(month)
    conventions = session.execute(
        sa.select(Convention.commune_id, Tenant.name).join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.programme_id == programme.id).order_by(Tenant.name)).all()
    in_month: dict = defaultdict(lambda: defaultdict(int))
    cumulated: dict = defaultdict(lambda: defaultdict(int))
    ledger.settle(session, programme.id)     # flow_counts count sealed entries only
    for commune, day, nature, n in session.execute(
            sa.select(FlowCount.commune_id, FlowCount.day, FlowCount.nature, FlowCount.count)
            .where(FlowCount.programme_id == programme.id, FlowCount.day < after,
                   FlowCount.nature.in_(list(_SIGN)))):
        key, sign = _SIGN[Nature(nature)]
        cumulated[commune][key] += sign * n
        if day >= first:
            in_month[commune][key] += sign * n

    def line(values):
        return {k: int(values.get(k, 0)) for k, _ in FIGURES}
    communes = []
    for commune_id, name in conventions:
        communes.append({"commune_id": commune_id, "commune": name,
                         "mois": line(in_month[commune_id]),
                         "cumul": line(cumulated[commune_id])})
    total = {"mois": {k: sum(c["mois"][k] for c in communes) for k, _ in FIGURES},
             "cumul": {k: sum(c["cumul"][k] for c in communes) for k, _ in FIGURES}}
    return {"programme": programme.name, "prefix": programme.prefix, "month": month,
            "threshold_pct": programme.abondement_threshold_pct,
            "communes": communes, "total": total}


def ratio(cumul: dict) -> float:
    return 100.0 * cumul["consumed"] / cumul["held"] if cumul["held"] else 0.0


def reports_of(session: Session, programme: Programme) -> list[MonthlyReport]:
    return list(session.execute(
        sa.select(MonthlyReport).where(MonthlyReport.programme_id == programme.id)
        .order_by(MonthlyReport.month.desc(), MonthlyReport.version.desc())).scalars())


def generate(session: Session, programme: Programme, month: str, *, actor: Actor,
             regenerate: bool = False) -> tuple[MonthlyReport, bool]:
    """Store the month's report; returns (report, created). See the module
    docstring for idempotence."""
    parse_month(month)
    latest = session.execute(
        sa.select(MonthlyReport).where(MonthlyReport.programme_id == programme.id,
                                       MonthlyReport.month == month)
        .order_by(MonthlyReport.version.desc()).limit(1)).scalar_one_or_none()
    if latest is not None and not regenerate:
        return latest, False
    content = build_content(session, programme, month)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False)
                            .encode()).hexdigest()
    report = MonthlyReport(programme_id=programme.id, month=month,
                           version=(latest.version + 1) if latest else 1, content=content,
                           sha256=digest, generated_at=utcnow(), generated_by_id=actor.user_id)
    session.add(report)
    session.flush()
    return report, True


def visible_lines(content: dict, commune_id: int | None) -> list[dict]:
    """The commune's own line only; every line for the Métropole."""
    return [c for c in content["communes"] if commune_id is None or c["commune_id"] == commune_id]


# ---------------------------------------------------------------- exports

def _header() -> list[str]:
    return (["Commune"] + [f"{label} dans le mois" for k, label in FIGURES if k != "held"]
            + [f"{label} (cumul)" for _k, label in FIGURES] + ["Consommés / reçus (%)"])


def _cells(name: str, line: dict) -> list:
    return ([name] + [line["mois"][k] for k, _ in FIGURES if k != "held"]
            + [line["cumul"][k] for k, _ in FIGURES]
            + [pct_text(ratio(line['cumul']))])


def to_csv(report: MonthlyReport, commune_id: int | None = None) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    writer = spreadsheet.csv_writer(out)
    c = report.content
    writer.writerow([f"Rapport mensuel — {c['programme']}", c["month"], f"version {report.version}"])
    writer.writerow(_header())
    for line in visible_lines(c, commune_id):
        writer.writerow(_cells(line["commune"], line))
    writer.writerow(_cells("Total de tous les territoires", c["total"]))
    return out.getvalue()


def to_pdf(report: MonthlyReport, commune_id: int | None = None) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from portal.printing.carnets import _fonts
    fonts = _fonts()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = fonts.regular
    c = report.content
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm,
                            title=f"Rapport mensuel {c['month']}")
    data = [_header()] + [_cells(line["commune"], line) for line in visible_lines(c, commune_id)]
    data.append(_cells("Total de tous les territoires", c["total"]))
    table = Table([[str(cell) for cell in row] for row in data], repeatRows=1)
    table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), fonts.regular, 7),
                               ("FONT", (0, 0), (-1, 0), fonts.bold, 7),
                               ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf7"))]))
    doc.build([Paragraph(f"Rapport mensuel de consommation — {c['programme']}", styles["Title"]),
               Paragraph(f"Mois : {c['month']} · version {report.version} · Métropole du Grand "
                         "Paris (convention, art. 9)", styles["Normal"]),
               Spacer(1, 4 * mm), table, Spacer(1, 4 * mm),
               Paragraph(f"Empreinte SHA-256 : {report.sha256}", styles["Normal"])])
    return out.getvalue()


def referent_emails(session: Session, programme: Programme) -> list[tuple[str, str]]:
    """(commune name, référent e-mail) of every convention with a référent."""
    return [(name, email) for name, email in session.execute(
        sa.select(Tenant.name, Convention.referent_email)
        .join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.programme_id == programme.id, Convention.referent_email != "")
        .order_by(Tenant.name))]
