"""Printing of carnets: QR matrices, carnet PDF, explanatory document.

No database and no Flask: the printing package works on plain data.
Rasterising / text extraction use poppler-utils (pdftoppm, pdftotext);
those tests are skipped, with the reason, when poppler is absent.
"""

from __future__ import annotations

import datetime
import io
import random
import re
import shutil
import subprocess
from collections import Counter

import pytest
import qrcode
import zxingcpp
from PIL import Image
from qrcode import util
from qrcode.constants import ERROR_CORRECT_Q

from portal.printing import carnets as carnets_mod
from portal.printing.carnets import (
    PrintableCarnet,
    PrintablePass,
    format_date,
    format_euros,
    render_carnets_pdf,
    render_explanatory_document,
)
from portal.printing.qr import (
    MASK_PATTERN,
    QUIET_ZONE,
    dark_runs,
    qr_matrix,
    qr_rows,
    qr_runs,
    qr_size,
    qr_version,
    runs_from_matrix,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ALNUM = util.ALPHA_NUM.decode("ascii")
VALID_UNTIL = datetime.date(2022, 1, 31)
PROGRAMME = "Inclusion numérique des séniors — édition 2021"


def _payload(rnd: random.Random, carnet: int, index: int) -> tuple[str, str]:
    serial = f"MGP1-{carnet:07d}-{index:02d}-{rnd.randrange(100):02d}"
    tag = "".join(rnd.choice(CROCKFORD) for _ in range(13))
    return serial, f"HTTP://127.0.0.1:5000/P/{serial}-D1{tag}"


def _carnet(rnd: random.Random, number: int) -> PrintableCarnet:
    passes = []
    for i in range(1, 11):
        serial, payload = _payload(rnd, number, i)
        code = "".join(rnd.choice(CROCKFORD) for _ in range(6))
        passes.append(PrintablePass(serial, f"{code[:3]}-{code[3:]}", payload))
    return PrintableCarnet(
        carnet_label=f"MGP1-{number:07d}",
        programme_name=PROGRAMME,
        commanditaire="Ville de Montreuil",
        face_value_cents=1000,
        valid_until=VALID_UNTIL,
        commune_name="Montreuil",
        passes=passes,
    )


def _decode(img: Image.Image) -> list[str]:
    return [
        b.text for b in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    ]


def _matrix_image(matrix: list[list[bool]], scale: int = 4) -> Image.Image:
    """Render a module matrix with its 4-module quiet zone, black on white."""
    n = len(matrix) + 2 * QUIET_ZONE
    img = Image.new("L", (n, n), 255)
    px = img.load()
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                px[c + QUIET_ZONE, r + QUIET_ZONE] = 0
    return img.resize((n * scale, n * scale), Image.NEAREST)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " "))


def _pdftotext(pdf: bytes, *args: str) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent (poppler-utils)")
    proc = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *args, "-", "-"],
        input=pdf, capture_output=True, check=True,
    )
    return proc.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def two_carnets() -> list[PrintableCarnet]:
    rnd = random.Random(2021)
    return [_carnet(rnd, 1234), _carnet(rnd, 1235)]


@pytest.fixture(scope="module")
def carnets_pdf(two_carnets) -> bytes:
    out = io.BytesIO()
    pages = render_carnets_pdf(two_carnets, out)
    assert pages == 2
    return out.getvalue()


# --------------------------------------------------------------------------
# QR matrices
# --------------------------------------------------------------------------

LENGTHS = [1, 2, 7, 20, 34, 35, 57, 58, 67, 68, 114, 200, 400]


def _random_alnum(rnd: random.Random, length: int) -> str:
    return "".join(rnd.choice(ALNUM) for _ in range(length))


@pytest.mark.parametrize("length", LENGTHS)
def test_qr_matrix_decodes(length):
    rnd = random.Random(length)
    payload = _random_alnum(rnd, length)
    matrix = qr_matrix(payload)
    assert len(matrix) == qr_size(payload) == qr_version(payload) * 4 + 17
    assert all(len(row) == len(matrix) for row in matrix)
    codes = zxingcpp.read_barcodes(
        _matrix_image(matrix), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert [c.text for c in codes] == [payload]
    assert codes[0].ec_level == "Q"


@pytest.mark.parametrize("length", LENGTHS)
def test_qr_matrix_is_qrcode_output_with_fixed_version_and_mask(length):
    rnd = random.Random(1000 + length)
    for _ in range(5):
        payload = _random_alnum(rnd, length)
        ref = qrcode.QRCode(
            version=qr_version(payload),
            error_correction=ERROR_CORRECT_Q,
            mask_pattern=MASK_PATTERN,
            border=0,
        )
        ref.add_data(util.QRData(payload, mode=util.MODE_ALPHA_NUM))
        ref.make(fit=False)
        assert qr_matrix(payload) == ref.modules


@pytest.mark.parametrize("length", LENGTHS)
def test_qr_version_is_smallest_fitting_at_level_q(length):
    payload = "A" * length
    ref = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    ref.add_data(util.QRData(payload, mode=util.MODE_ALPHA_NUM))
    ref.make(fit=True)
    assert qr_version(payload) == ref.version


def test_qr_version_fixed_per_length():
    rnd = random.Random(7)
    versions = {qr_version(_payload(rnd, n, 1)[1]) for n in range(50)}
    assert len(versions) == 1


def test_real_payload_decodes_and_non_alnum_payload_falls_back_to_bytes():
    rnd = random.Random(3)
    _, payload = _payload(rnd, 1234, 7)
    assert _decode(_matrix_image(qr_matrix(payload))) == [payload]
    lower = "https://pass.example.fr/p/mgp1-0001234-07-42"
    assert _decode(_matrix_image(qr_matrix(lower))) == [lower]


def test_qr_too_long_payload_is_rejected():
    with pytest.raises(ValueError):
        qr_matrix("A" * 5000)


def test_dark_runs_rebuild_the_matrix():
    rnd = random.Random(5)
    payload = _payload(rnd, 42, 3)[1]
    matrix = qr_matrix(payload)
    runs = qr_runs(payload)
    assert runs == dark_runs(qr_rows(payload)) == runs_from_matrix(matrix)
    rebuilt = [[False] * len(matrix) for _ in matrix]
    for r, row_runs in enumerate(runs):
        previous_end = -1
        for start, length in row_runs:
            assert length >= 1 and start > previous_end  # merged, ordered
            previous_end = start + length
            for c in range(start, start + length):
                rebuilt[r][c] = True
    assert rebuilt == matrix


# --------------------------------------------------------------------------
# Carnets
# --------------------------------------------------------------------------


def test_format_euros_and_date():
    assert format_euros(1000) == "10,00\u00a0€"
    assert format_euros(5) == "0,05\u00a0€"
    assert format_euros(123456) == "1\u00a0234,56\u00a0€"
    assert format_date(VALID_UNTIL) == "31/01/2022"


def test_carnet_pdf_has_one_page_per_carnet(two_carnets, carnets_pdf):
    assert carnets_pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page\b", carnets_pdf)) == 2
    calls = []
    out = io.BytesIO()
    pages = render_carnets_pdf(
        iter(two_carnets), out, progress=lambda done, total: calls.append((done, total)),
        total=2,
    )
    assert pages == 2
    assert calls == [(1, 2), (2, 2)]
    assert b"/FlateDecode" in out.getvalue()


def test_carnet_qr_codes_decode_at_150_dpi(two_carnets, carnets_pdf, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm absent (poppler-utils)")
    pdf = tmp_path / "carnets.pdf"
    pdf.write_bytes(carnets_pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True
    )
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == 2
    for png, carnet in zip(pngs, two_carnets):
        with Image.open(png) as img:
            decoded = _decode(img)
        assert Counter(decoded) == Counter(p.qr_payload for p in carnet.passes)


def test_carnet_page_text(two_carnets, carnets_pdf):
    for page, carnet in enumerate(two_carnets, 1):
        text = _norm(_pdftotext(carnets_pdf, "-f", str(page), "-l", str(page)))
        for p in carnet.passes:
            assert p.serial in text
            assert p.verification_code in text
        assert text.count("Code de vérification") == 10
        assert text.count("Métropole du Grand Paris") >= 10
        assert text.count("Valable jusqu'au 31/01/2022") == 10
        assert text.count("10,00 €") == 10
        assert "Pass Numérique" in text
        assert PROGRAMME in text
        assert carnet.carnet_label in text
        assert "Montreuil" in text
        other = two_carnets[2 - page]
        assert other.passes[0].serial not in text


def test_carnet_with_long_texts_and_more_than_ten_passes():
    rnd = random.Random(11)
    carnet = _carnet(rnd, 77)
    carnet.programme_name = "Programme très long " * 12
    carnet.commanditaire = "Établissement public territorial " * 6
    carnet.passes = carnet.passes + _carnet(rnd, 78).passes[:3]
    out = io.BytesIO()
    assert render_carnets_pdf([carnet], out) == 2
    text = _norm(_pdftotext(out.getvalue()))
    assert "…" in text
    for p in carnet.passes:
        assert p.serial in text


def test_no_carnet_is_an_error():
    out = io.BytesIO()
    with pytest.raises(ValueError):
        render_carnets_pdf([], out)
    assert out.getvalue() == b""


def test_missing_fonts_are_an_error_not_a_fallback(monkeypatch, two_carnets):
    monkeypatch.setattr(carnets_mod, "FONT_DIR", "/nonexistent")
    carnets_mod._fonts.cache_clear()
    try:
        with pytest.raises(carnets_mod.MissingFonts, match="fonts-dejavu-core"):
            render_carnets_pdf(two_carnets[:1], io.BytesIO())
    finally:
        carnets_mod._fonts.cache_clear()


# --------------------------------------------------------------------------
# Explanatory document
# --------------------------------------------------------------------------

OPERATEURS = [
    {
        "name": "Espace Public Numérique Croix-de-Chavaux",
        "address": "12 rue de Paris, 93100 Montreuil",
        "services": ["Ateliers smartphone", "Démarches administratives en ligne"],
        "phone": "01 48 70 00 00",
    },
    {
        "name": "Médiathèque Robert-Desnos & Cie",
        "address": "14 boulevard Rouget-de-Lisle, 93100 Montreuil",
        "services": ["Initiation à l'ordinateur"],
    },
]


def test_explanatory_document():
    out = io.BytesIO()
    render_explanatory_document("Montreuil", PROGRAMME, VALID_UNTIL, OPERATEURS, out)
    pdf = out.getvalue()
    assert pdf.startswith(b"%PDF-")
    text = _norm(_pdftotext(pdf))
    assert "Comment utiliser vos Pass Numériques" in text
    assert "Métropole du Grand Paris" in text
    assert "31/01/2022" in text
    assert "Montreuil" in text
    assert "un service" in text
    for op in OPERATEURS:
        assert op["name"] in text
        assert op["address"] in text
        for service in op["services"]:
            assert service in text
    assert "01 48 70 00 00" in text


def test_explanatory_document_many_operateurs_and_none():
    many = [
        {
            "name": f"Lieu qualifié n° {i}",
            "address": f"{i} avenue de la République, 93100 Montreuil",
            "services": ["Atelier"],
        }
        for i in range(1, 41)
    ]
    out = io.BytesIO()
    render_explanatory_document("Montreuil", PROGRAMME, VALID_UNTIL, many, out)
    text = _norm(_pdftotext(out.getvalue()))
    assert "Lieu qualifié n° 40" in text
    assert "40 avenue de la République, 93100 Montreuil" in text
    assert "Page 2" in text

    out = io.BytesIO()
    render_explanatory_document("Montreuil", PROGRAMME, VALID_UNTIL, [], out)
    assert "lieux qualifiés vous sera communiquée" in _norm(_pdftotext(out.getvalue()))
