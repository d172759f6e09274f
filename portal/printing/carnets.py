"""PDF rendering of carnets of Pass Numériques and of the explanatory leaflet.

Plain data in, PDF bytes out: no database access and no Flask import here,
so the rendering can run in a worker and be tested in isolation.

Carnets
    One A4 page per carnet: 10 vouchers (2 columns x 5 rows) separated by
    dashed cut lines. Each voucher shows its QR code (error correction Q,
    4-module quiet zone, 36 mm wide with the quiet zone), its serial, its
    verification code, the face value, the validity date, the programme, the
    mentions "Pass Numérique" and "Métropole du Grand Paris" (publicity rule,
    convention art. 10).

Performance notes
    * QR matrices come from :mod:`portal.printing.qr` (fixed version and
      mask, ~0.2 ms per code) and each QR is drawn as ONE filled path made of
      its merged horizontal runs of dark modules, appended as a pre-formatted
      operator string (``x y w 1 re`` in module units under a ``cm``
      transform, then ``f``), ~0.4 ms per code.
    * Everything on a voucher that does not depend on the pass (titles,
      programme, value, validity...) is drawn once into a Form XObject that
      every voucher of every carnet sharing those values reuses.
    * reportlab keeps the content of every page in memory until ``save()``
      (and then compresses it, with a slow pure-Python ASCII85 pass). Here
      each page is zlib-compressed as soon as it is finished (~7 kB per
      carnet page, ~7 MB for 1 000 carnets), so memory stays far below the
      300 MB budget without chunking / merging PDFs. The document itself is
      still written to ``out`` in one go by ``save()`` at the end.
"""

from __future__ import annotations

import datetime
import os
import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO, Callable, Iterable
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from portal.printing.qr import QUIET_ZONE, qr_rows

__all__ = [
    "PrintableCarnet",
    "PrintablePass",
    "PASSES_PER_PAGE",
    "format_date",
    "format_euros",
    "render_carnets_pdf",
    "render_explanatory_document",
]

MGP = "Métropole du Grand Paris"
PASS_NUMERIQUE = "Pass Numérique"
NBSP = "\u00a0"

PASSES_PER_PAGE = 10
COLUMNS = 2
ROWS = 5

PAGE_W, PAGE_H = A4
MARGIN_X = 8 * mm
HEADER_H = 16 * mm
MARGIN_BOTTOM = 8 * mm
CELL_W = (PAGE_W - 2 * MARGIN_X) / COLUMNS
CELL_H = (PAGE_H - HEADER_H - MARGIN_BOTTOM) / ROWS
PAD = 3 * mm
#: Side of the square reserved for a QR code, quiet zone included.
QR_BOX = 36 * mm
TEXT_X = PAD + QR_BOX + 3 * mm  # left edge of the text column, in a cell
TEXT_W = CELL_W - TEXT_X - PAD

FONT_DIR = "/usr/share/fonts/truetype/dejavu"


# --------------------------------------------------------------------------
# Input data
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrintablePass:
    serial: str
    verification_code: str
    qr_payload: str


@dataclass(slots=True)
class PrintableCarnet:
    carnet_label: str
    programme_name: str
    commanditaire: str
    face_value_cents: int
    valid_until: datetime.date
    commune_name: str
    passes: list[PrintablePass] = field(default_factory=list)


# --------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------


def format_euros(cents: int) -> str:
    """French amount: ``1000`` -> ``"10,00 €"`` (no-break spaces)."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(int(cents)), 100)
    grouped = f"{euros:,}".replace(",", NBSP)
    return f"{sign}{grouped},{rest:02d}{NBSP}€"


def format_date(value: datetime.date) -> str:
    """French short date: ``31/01/2022``."""
    return value.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class _Fonts:
    regular: str
    bold: str


class MissingFonts(RuntimeError):
    """The fonts the PDFs need are not installed: an error, never a silent
    fallback (Helvetica has no U+202F, the no-break space of French amounts)."""


def check_fonts() -> None:
    missing = [name for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
               if not os.path.exists(os.path.join(FONT_DIR, name))]
    if missing:
        raise MissingFonts(f"Fonts missing in {FONT_DIR}: {', '.join(missing)}. Install the "
                           "Debian package fonts-dejavu-core (scripts/system-deps.sh).")


@lru_cache(maxsize=1)
def _fonts() -> _Fonts:
    """Register DejaVu Sans (accents, €, no-break spaces); raise MissingFonts if absent."""
    check_fonts()
    regular = os.path.join(FONT_DIR, "DejaVuSans.ttf")
    bold = os.path.join(FONT_DIR, "DejaVuSans-Bold.ttf")
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans", regular))
    if "DejaVuSans-Bold" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", bold))
    pdfmetrics.registerFontFamily(
        "DejaVuSans",
        normal="DejaVuSans",
        bold="DejaVuSans-Bold",
        italic="DejaVuSans",
        boldItalic="DejaVuSans-Bold",
    )
    return _Fonts("DejaVuSans", "DejaVuSans-Bold")


def _fr(text: str) -> str:
    """French typography: no-break spaces inside « » and before : ? ! ;"""
    for a, b in ((" :", NBSP + ":"), (" ?", NBSP + "?"), (" !", NBSP + "!"),
                 (" ;", NBSP + ";"), ("« ", "«" + NBSP), (" »", NBSP + "»")):
        text = text.replace(a, b)
    return text


def _fit(text: str, font: str, size: float, width: float, min_size: float = 5.5):
    """Shrink ``text`` down to ``min_size`` then ellipsize it to fit ``width``."""
    sw = pdfmetrics.stringWidth
    while size > min_size and sw(text, font, size) > width:
        size = max(min_size, size - 0.5)
    if sw(text, font, size) > width:
        while text and sw(text + "…", font, size) > width:
            text = text[:-1]
        text = text.rstrip() + "…"
    return text, size


def _wrap(text: str, font: str, size: float, width: float, max_lines: int):
    """Wrap ``text`` on at most ``max_lines`` lines (shrinking if needed)."""
    min_size = 5.5
    while True:
        lines = simpleSplit(text, font, size, width)
        if len(lines) <= max_lines or size <= min_size:
            break
        size = max(min_size, size - 0.5)
    if len(lines) > max_lines:
        last, _ = _fit(" ".join(lines[max_lines - 1 :]) + "…", font, size, width, size)
        lines = lines[: max_lines - 1] + [last]
    return lines, size


# --------------------------------------------------------------------------
# QR drawing
# --------------------------------------------------------------------------

_DARK = re.compile("1+")


def _qr_ops(payload: str, x: float, y_top: float, box: float) -> str:
    """PDF operators drawing the QR of ``payload`` in a ``box`` square.

    ``(x, y_top)`` is the top-left corner of the box (quiet zone included).
    The symbol is drawn as one path of merged horizontal runs, in module
    units under a y-flipping transform, filled once.
    """
    rows = qr_rows(payload)
    size = len(rows)
    module = box / (size + 2 * QUIET_ZONE)
    ox = x + QUIET_ZONE * module
    oy = y_top - QUIET_ZONE * module
    stride = size + 1  # rows joined with a light separator module
    flat = "0".join(rows)
    runs = "\n".join(
        [
            f"{s % stride} {s // stride} {e - s} 1 re"
            for s, e in [m.span() for m in _DARK.finditer(flat)]
        ]
    )
    return f"q 0 g {module:.4f} 0 0 {-module:.4f} {ox:.3f} {oy:.3f} cm\n{runs}\nf Q"


# --------------------------------------------------------------------------
# Carnets
# --------------------------------------------------------------------------


def _cell_origin(index: int) -> tuple[float, float]:
    """Bottom-left corner of voucher cell ``index`` (0..9, row-major)."""
    col, row = index % COLUMNS, index // COLUMNS
    return MARGIN_X + col * CELL_W, PAGE_H - HEADER_H - (row + 1) * CELL_H


def _cut_lines_ops() -> str:
    """Dashed light-grey cut lines around the voucher cells."""
    ops = ["q 0.6 G 0.4 w [3 2] 0 d"]
    top = PAGE_H - HEADER_H
    bottom = top - ROWS * CELL_H
    for c in range(COLUMNS + 1):
        x = MARGIN_X + c * CELL_W
        ops.append(f"{x:.2f} {bottom:.2f} m {x:.2f} {top:.2f} l")
    for r in range(ROWS + 1):
        y = top - r * CELL_H
        ops.append(f"{MARGIN_X:.2f} {y:.2f} m {PAGE_W - MARGIN_X:.2f} {y:.2f} l")
    ops.append("S Q")
    return "\n".join(ops)


class _StreamingCanvas(Canvas):
    """Canvas compressing each page's content as soon as the page is done.

    reportlab keeps the content of every page as an uncompressed string until
    ``save()``, then compresses it with zlib and (by default, in pure Python)
    ASCII85. Compressing at ``showPage`` time instead keeps ~7 kB per carnet
    page in memory instead of ~40 kB, and skips the slow ASCII85 pass.
    Relies on reportlab internals (``_doc.Pages.pages``, ``PDFPage.stream``):
    if they change, the page is left alone and reportlab compresses it on
    save as usual.
    """

    def showPage(self):
        super().showPage()
        try:
            page = self._doc.Pages.pages[-1]
            stream = page.stream
        except (AttributeError, IndexError):  # pragma: no cover
            return
        if not stream or page.Contents:
            return
        if isinstance(stream, str):
            stream = stream.encode("utf-8")  # content is ASCII (escaped text)
        contents = pdfdoc.PDFStream(
            dictionary=pdfdoc.PDFDictionary(
                {"Filter": pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")])}
            ),
            content=zlib.compress(stream, 6),
        )
        contents.__Comment__ = "page stream"
        page.Contents = contents
        page.stream = None


#: Carnet fields drawn in the shared voucher form (everything but the pass).
_STATIC_KEYS = (
    "programme_name",
    "commanditaire",
    "face_value_cents",
    "valid_until",
    "commune_name",
)


class _CarnetRenderer:
    def __init__(self, canvas: Canvas):
        self.c = canvas
        self.fonts = _fonts()
        self.forms: dict[tuple, str] = {}
        self.cut_lines = _cut_lines_ops()

    # -- static part of a voucher, shared through a Form XObject ----------

    def _voucher_form(self, carnet: PrintableCarnet) -> str:
        key = tuple(getattr(carnet, k) for k in _STATIC_KEYS)
        name = self.forms.get(key)
        if name is not None:
            return name
        name = f"PNVoucher{len(self.forms)}"
        self.forms[key] = name
        c, f = self.c, self.fonts
        c.beginForm(name, 0, 0, CELL_W, CELL_H)
        top = CELL_H

        c.setFillColor(colors.black)
        c.setFont(f.bold, 14)
        c.drawString(TEXT_X, top - 6.5 * mm, PASS_NUMERIQUE)
        c.setFont(f.regular, 8)
        c.drawString(TEXT_X, top - 10.5 * mm, MGP)

        lines, size = _wrap(carnet.programme_name, f.regular, 7.5, TEXT_W, 2)
        c.setFont(f.regular, size)
        for i, line in enumerate(lines):
            c.drawString(TEXT_X, top - 14.5 * mm - i * (size + 1.5), line)

        value, vsize = _fit(format_euros(carnet.face_value_cents), f.bold, 22, TEXT_W)
        c.setFont(f.bold, vsize)
        c.drawString(TEXT_X, top - 26.5 * mm, value)
        c.setFont(f.regular, 7)
        c.drawString(TEXT_X, top - 30.5 * mm, "1 pass = 1 service")

        validity, size = _fit(
            f"Valable jusqu'au {format_date(carnet.valid_until)}", f.bold, 8, TEXT_W
        )
        c.setFont(f.bold, size)
        c.drawString(TEXT_X, top - 35 * mm, validity)
        c.setFont(f.regular, 7)
        c.drawString(TEXT_X, top - 40 * mm, "Code de vérification")

        commune, size = _fit(f"Commune : {carnet.commune_name}", f.regular, 6.5, QR_BOX)
        c.setFont(f.regular, size)
        c.drawCentredString(PAD + QR_BOX / 2, top - 45.5 * mm, commune)

        c.endForm()
        return name

    # -- one page --------------------------------------------------------

    def page(self, carnet: PrintableCarnet, passes: list[PrintablePass], page_no: int, pages: int):
        c, f = self.c, self.fonts
        form = self._voucher_form(carnet)

        # Header.
        label = f"Carnet {carnet.carnet_label}"
        if pages > 1:
            label += f" ({page_no}/{pages})"
        half = (PAGE_W - 2 * MARGIN_X) / 2 - 2 * mm
        text, size = _fit(label, f.bold, 11, half)
        c.setFont(f.bold, size)
        c.drawString(MARGIN_X, PAGE_H - 8 * mm, text)
        c.setFont(f.regular, 9)
        c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 8 * mm, f"{PASS_NUMERIQUE} — {MGP}")
        text, size = _fit(
            f"{carnet.commune_name} — {carnet.programme_name}", f.regular, 8, half
        )
        c.setFont(f.regular, size)
        c.drawString(MARGIN_X, PAGE_H - 12.5 * mm, text)
        text, size = _fit(f"Commanditaire : {carnet.commanditaire}", f.regular, 8, half)
        c.setFont(f.regular, size)
        c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 12.5 * mm, text)

        c.addLiteral(self.cut_lines)

        foot, foot_size = _fit(
            f"Carnet {carnet.carnet_label}", f.regular, 6, CELL_W - 2 * PAD
        )
        ops = []
        for i, p in enumerate(passes):
            x, y = _cell_origin(i)
            top = y + CELL_H
            c.addLiteral(f"q 1 0 0 1 {x:.3f} {y:.3f} cm")
            c.doForm(form)
            c.addLiteral("Q")
            ops.append(_qr_ops(p.qr_payload, x + PAD, top - PAD, QR_BOX))
            serial, size = _fit(p.serial, f.bold, 7.5, QR_BOX)
            c.setFont(f.bold, size)
            c.drawCentredString(x + PAD + QR_BOX / 2, top - PAD - QR_BOX - 3 * mm, serial)
            code, size = _fit(p.verification_code, f.bold, 12, TEXT_W)
            c.setFont(f.bold, size)
            c.drawString(x + TEXT_X, top - 45.5 * mm, code)
            c.setFont(f.regular, foot_size)
            c.drawString(x + PAD, y + 2.2 * mm, foot)
        c.addLiteral("\n".join(ops))
        c.showPage()


def render_carnets_pdf(
    carnets: Iterable[PrintableCarnet],
    out: BinaryIO,
    *,
    progress: Callable[[int, int], None] | None = None,
    total: int | None = None,
) -> int:
    """Render ``carnets`` (one A4 page per 10 passes) as a PDF into ``out``.

    ``progress(done, total)`` is called after each carnet (``total`` defaults
    to ``len(carnets)`` when available, else 0). Returns the number of pages
    written. Nothing is written to ``out`` before the whole document is
    ready; raises ``ValueError`` when there is no carnet to print.
    """
    if total is None:
        try:
            total = len(carnets)  # type: ignore[arg-type]
        except TypeError:
            total = 0
    canvas = _StreamingCanvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle("Carnets de Pass Numériques")
    canvas.setAuthor(MGP)
    canvas.setSubject(PASS_NUMERIQUE)
    canvas.setCreator("Portail Pass Numérique")
    renderer = _CarnetRenderer(canvas)
    pages = done = 0
    for carnet in carnets:
        passes = list(carnet.passes)
        chunks = [
            passes[i : i + PASSES_PER_PAGE]
            for i in range(0, max(len(passes), 1), PASSES_PER_PAGE)
        ]
        for no, chunk in enumerate(chunks, 1):
            renderer.page(carnet, chunk, no, len(chunks))
            pages += 1
        done += 1
        if progress is not None:
            progress(done, total)
    if not pages:
        raise ValueError("aucun carnet à imprimer")
    canvas.save()
    return pages


# --------------------------------------------------------------------------
# Explanatory document
# --------------------------------------------------------------------------


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_fr(text), style)


def render_explanatory_document(
    commune_name: str,
    programme_name: str,
    valid_until: datetime.date,
    operateurs: list[dict],
    out: BinaryIO,
) -> None:
    """Leaflet for beneficiaries: how to use the passes, where (A4, French).

    ``operateurs``: dicts with ``name``, ``address``, ``services`` (list of
    str) and optionally ``phone``.
    """
    f = _fonts()
    base = ParagraphStyle("pn-base", fontName=f.regular, fontSize=10.5, leading=14)
    title = ParagraphStyle(
        "pn-title", parent=base, fontName=f.bold, fontSize=20, leading=25, spaceAfter=4
    )
    banner = ParagraphStyle(
        "pn-banner", parent=base, fontName=f.bold, fontSize=13, leading=17,
        textColor=colors.HexColor("#1d3f8f"),
    )
    subtitle = ParagraphStyle("pn-sub", parent=base, fontSize=12, leading=16, spaceAfter=6)
    h2 = ParagraphStyle(
        "pn-h2", parent=base, fontName=f.bold, fontSize=13, leading=17,
        spaceBefore=10, spaceAfter=4, textColor=colors.HexColor("#1d3f8f"),
    )
    op_name = ParagraphStyle("pn-op", parent=base, fontName=f.bold, fontSize=11, leading=14)
    small = ParagraphStyle("pn-small", parent=base, fontSize=9, leading=12)
    highlight = ParagraphStyle(
        "pn-hl", parent=base, fontName=f.bold, fontSize=11.5, leading=15,
        alignment=TA_CENTER,
    )

    commune = escape(commune_name)
    programme = escape(programme_name)
    date = format_date(valid_until)

    story: list = [
        _para(f"{PASS_NUMERIQUE} — {MGP}", banner),
        Spacer(1, 2 * mm),
        _para("Comment utiliser vos Pass Numériques", title),
        _para(f"{commune} — {programme}", subtitle),
        _para("Qu'est-ce que le Pass Numérique ?", h2),
        _para(
            "Le Pass Numérique vous donne accès, gratuitement, à un accompagnement "
            "au numérique : ateliers, formations, aide personnalisée pour vos "
            "démarches en ligne, pour utiliser un ordinateur, une tablette ou un "
            f"smartphone. Ce carnet vous est remis par la commune de {commune} "
            f"dans le cadre du dispositif « {programme} », avec le soutien de la "
            f"<b>{MGP}</b>.",
            base,
        ),
        _para("Un pass = un service", h2),
        _para(
            "Chaque pass de votre carnet donne droit à <b>un service</b> "
            "(par exemple un atelier ou une séance d'accompagnement). Le lieu "
            "qui vous accueille conserve le pass correspondant au service rendu. "
            "Un pass ne peut être utilisé qu'une seule fois et ne peut être ni "
            "vendu, ni échangé contre de l'argent.",
            base,
        ),
        _para("Comment faire ?", h2),
        ListFlowable(
            [
                ListItem(_para(t, base), leftIndent=14)
                for t in (
                    "Choisissez un lieu qualifié dans la liste ci-dessous.",
                    "Contactez-le ou rendez-vous sur place pour convenir d'un "
                    "atelier ou d'un rendez-vous.",
                    "Présentez votre carnet : le lieu qualifié prend un pass "
                    "pour chaque service rendu et vérifie son code.",
                    "Gardez les pass restants pour vos prochains services.",
                )
            ],
            bulletType="1",
            bulletFontName=f.bold,
            leftIndent=14,
        ),
        _para("Date de validité", h2),
        Table(
            [[_para(f"Vos pass sont valables jusqu'au {date} inclus.", highlight)]],
            colWidths=[170 * mm],
            style=TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 1, colors.HexColor("#1d3f8f")),
                    ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#eef2fb")),
                    ("TOPPADDING", (0, 0), (-1, -1), 6),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ]
            ),
        ),
        Spacer(1, 1 * mm),
        _para("Après cette date, ils ne pourront plus être acceptés.", small),
        _para(f"Les lieux qualifiés — {commune}", h2),
    ]

    if not operateurs:
        story.append(
            _para(
                "La liste des lieux qualifiés vous sera communiquée par votre "
                "mairie.",
                base,
            )
        )
    for op in operateurs:
        block = [_para(escape(str(op.get("name", ""))), op_name)]
        if op.get("address"):
            block.append(_para(escape(str(op["address"])), base))
        if op.get("phone"):
            block.append(_para(f"Téléphone : {escape(str(op['phone']))}", base))
        services = [s for s in op.get("services") or [] if s]
        if services:
            block.append(
                _para("Services proposés : " + ", ".join(escape(s) for s in services), small)
            )
        block.append(Spacer(1, 3 * mm))
        story.append(KeepTogether(block))

    story += [
        Spacer(1, 4 * mm),
        _para(
            f"Une question ? Adressez-vous à votre mairie ({commune}) ou à l'un "
            "des lieux qualifiés ci-dessus.",
            small,
        ),
    ]

    def _on_page(canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(f.regular, 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(
            18 * mm, 10 * mm, f"{PASS_NUMERIQUE} — {MGP} — {commune_name}"
        )
        canvas.drawRightString(PAGE_W - 18 * mm, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title="Comment utiliser vos Pass Numériques",
        author=MGP,
        subject=f"{PASS_NUMERIQUE} — {commune_name}",
        pageCompression=1,
    )
    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)
