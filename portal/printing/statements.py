"""PDF of a monthly contre-paiement statement and the attestation a public
opérateur needs for its régie de recettes (issue 6, point 8). DejaVu Sans
as for the carnets (French spaces, €)."""
from __future__ import annotations

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from portal.formatting import format_count, format_date, format_datetime, format_eur
from portal.printing.carnets import _fonts


def _header(pdf, fonts, title: str, statement) -> float:
    width, height = A4
    pdf.setFont(fonts.bold, 14)
    pdf.drawString(20 * mm, height - 20 * mm, title)
    pdf.setFont(fonts.regular, 10)
    y = height - 30 * mm
    for text in (f"Opérateur : {statement.structure.name}",
                 f"Adresse : {statement.structure.full_address}",
                 f"SIRET : {statement.structure.siret or '–'}",
                 f"Mois : {statement.period} — relevé n° {statement.id} "
                 f"({statement.status.label})"):
        pdf.drawString(20 * mm, y, text)
        y -= 6 * mm
    return y - 4 * mm


def render_statement_pdf(statement, out) -> None:
    fonts = _fonts()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.setTitle(f"Relevé de contre-paiement {statement.period}")
    y = _header(pdf, fonts, "Pass Numérique — relevé de contre-paiement", statement)
    pdf.setFont(fonts.bold, 9)
    for x, text in ((20, "Date"), (60, "N° de pass"), (105, "Service"), (175, "Montant")):
        pdf.drawString(x * mm, y, text)
    y -= 5 * mm
    pdf.setFont(fonts.regular, 9)
    for line in statement.lines:
        if y < 25 * mm:
            pdf.showPage()
            pdf.setFont(fonts.regular, 9)
            y = A4[1] - 20 * mm
        pdf.drawString(20 * mm, y, format_datetime(line.occurred_at))
        pdf.drawString(60 * mm, y, line.serial or "correction")
        pdf.drawString(105 * mm, y, line.label[:40])
        pdf.drawRightString(190 * mm, y, format_eur(line.amount_cents))
        y -= 5 * mm
    pdf.setFont(fonts.bold, 10)
    pdf.drawString(20 * mm, y - 4 * mm, f"Total : {format_count(len(statement.lines))} ligne(s)")
    pdf.drawRightString(190 * mm, y - 4 * mm, format_eur(statement.total_cents))
    if statement.bank_reference:
        pdf.setFont(fonts.regular, 9)
        pdf.drawString(20 * mm, y - 12 * mm, f"Payé le {format_date(statement.paid_on)}, "
                                             f"référence {statement.bank_reference}")
    pdf.showPage()
    pdf.save()


def render_attestation_pdf(statement, out) -> None:
    """Attestation for a public opérateur's régie de recettes."""
    fonts = _fonts()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.setTitle("Attestation de contre-paiement")
    y = _header(pdf, fonts, "Attestation de contre-paiement — régie de recettes", statement)
    pdf.setFont(fonts.regular, 11)
    for text in (
            "#APTIC, mandataire de la Métropole du Grand Paris, atteste que l'opérateur",
            f"ci-dessus a accepté {format_count(sum(1 for line in statement.lines if line.pass_id))} "
            f"Pass Numérique au cours du mois {statement.period},",
            f"pour un montant total de {format_eur(statement.total_cents)}, versé au titre du "
            "contre-paiement.",
            f"Paiement : {format_date(statement.paid_on)} — référence "
            f"{statement.bank_reference or 'à venir'}.",
            "Pièce justificative à joindre à l'encaissement par la régie de recettes."):
        pdf.drawString(20 * mm, y, text)
        y -= 8 * mm
    pdf.showPage()
    pdf.save()
