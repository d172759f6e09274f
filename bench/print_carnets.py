"""Bench: print 1 000 carnets (10 000 Pass Numériques) to PDF.

Run from the project root:  .venv/bin/python bench/print_carnets.py

1. builds 1 000 carnets with payloads of the real shape
   ``HTTP://127.0.0.1:5000/P/MGP1-0001234-07-42-D1ABCDEFGHJKMNP``
   (check digits and tags are random, the bench is about printing);
2. renders them to a temporary PDF (``print_s``);
3. encodes the same 10 000 payloads with qrcode's defaults at level Q
   (``encode_default_s``), the reference cost of "just making the QR codes";
4. reports the peak RSS of the process;
5. rasterises a sample of pages at 150 dpi with pdftoppm and decodes every
   QR code on them with zxing-cpp, checking each against its payload.

Last line: ``RESULT print_s=… encode_default_s=… ratio=… peak_mb=… decoded_ok=0|1``
Goals: ratio <= 0.5, peak_mb <= 300, decoded_ok=1.
"""

from __future__ import annotations

import datetime
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import qrcode  # noqa: E402
from qrcode.constants import ERROR_CORRECT_Q  # noqa: E402

from portal.printing.carnets import (  # noqa: E402
    PrintableCarnet,
    PrintablePass,
    render_carnets_pdf,
)

N_CARNETS = 1000
PASSES_PER_CARNET = 10
SAMPLE_PAGES = 5
DPI = 150
BASE_URL = "HTTP://127.0.0.1:5000/P/"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def build_carnets(rnd: random.Random) -> list[PrintableCarnet]:
    carnets = []
    valid_until = datetime.date(2022, 1, 31)
    for n in range(N_CARNETS):
        number = 1000 + n
        passes = []
        for i in range(1, PASSES_PER_CARNET + 1):
            serial = f"MGP1-{number:07d}-{i:02d}-{rnd.randrange(100):02d}"
            key_id = "D" + rnd.choice("123456789")
            tag = "".join(rnd.choice(CROCKFORD) for _ in range(13))
            code = "".join(rnd.choice(CROCKFORD) for _ in range(6))
            passes.append(
                PrintablePass(
                    serial=serial,
                    verification_code=f"{code[:3]}-{code[3:]}",
                    qr_payload=f"{BASE_URL}{serial}-{key_id}{tag}",
                )
            )
        carnets.append(
            PrintableCarnet(
                carnet_label=f"MGP1-{number:07d}",
                programme_name="Pass Numérique 2021 — Inclusion numérique des séniors",
                commanditaire="Ville de Saint-Denis — Centre communal d'action sociale",
                face_value_cents=1000,
                valid_until=valid_until,
                commune_name="Saint-Denis",
                passes=passes,
            )
        )
    return carnets


def encode_default(payloads: list[str]) -> None:
    for payload in payloads:
        qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
        qr.add_data(payload)
        qr.make(fit=True)


def check_sample(pdf_path: str, carnets: list[PrintableCarnet], workdir: str) -> bool:
    """Rasterise a few pages and decode every QR code on them."""
    if shutil.which("pdftoppm") is None:
        print("pdftoppm absent: install poppler-utils (apt-get install -y "
              "poppler-utils) to check the QR codes; decoded_ok=0")
        return False
    try:
        import zxingcpp
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        print(f"zxing-cpp / Pillow missing ({exc}); decoded_ok=0")
        return False

    n_pages = len(carnets)
    pages = sorted(
        {1 + round(k * (n_pages - 1) / (SAMPLE_PAGES - 1)) for k in range(SAMPLE_PAGES)}
    )
    ok = True
    total = 0
    for page in pages:
        prefix = os.path.join(workdir, f"page{page}")
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-f", str(page), "-l", str(page),
             "-png", pdf_path, prefix],
            check=True,
        )
        png = [
            f for f in os.listdir(workdir)
            if f.startswith(f"page{page}") and f.endswith(".png")
        ]
        if len(png) != 1:
            print(f"page {page}: rasterisation failed")
            ok = False
            continue
        path = os.path.join(workdir, png[0])
        with Image.open(path) as img:
            results = zxingcpp.read_barcodes(img)
        os.unlink(path)
        got = Counter(r.text for r in results)
        expected = Counter(p.qr_payload for p in carnets[page - 1].passes)
        total += sum(got.values())
        status = "ok" if got == expected else "MISMATCH"
        print(f"page {page}: {sum(got.values())}/{sum(expected.values())} QR decoded — {status}")
        if got != expected:
            ok = False
            for text in (expected - got):
                print(f"  not decoded: {text}")
            for text in (got - expected):
                print(f"  unexpected:  {text}")
    print(f"decoded {total} QR codes on {len(pages)} pages")
    return ok


def main() -> int:
    rnd = random.Random(20211231)
    carnets = build_carnets(rnd)
    payloads = [p.qr_payload for c in carnets for p in c.passes]
    print(f"{len(carnets)} carnets, {len(payloads)} passes, payload length {len(payloads[0])}")

    with tempfile.TemporaryDirectory(prefix="bench-carnets-") as workdir:
        pdf_path = os.path.join(workdir, "carnets.pdf")
        t0 = time.perf_counter()
        with open(pdf_path, "wb") as out:
            pages = render_carnets_pdf(carnets, out, total=len(carnets))
        print_s = time.perf_counter() - t0
        size_mb = os.path.getsize(pdf_path) / 1e6
        print(f"print: {pages} pages, {size_mb:.1f} MB, {print_s:.2f} s "
              f"({print_s / len(payloads) * 1000:.3f} ms per pass)")

        t0 = time.perf_counter()
        encode_default(payloads)
        encode_default_s = time.perf_counter() - t0
        print(f"encode (qrcode defaults, level Q): {encode_default_s:.2f} s "
              f"({encode_default_s / len(payloads) * 1000:.3f} ms per QR)")

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak_mb:.1f} MB")

        decoded_ok = check_sample(pdf_path, carnets, workdir) and pages == len(carnets)

    ratio = print_s / encode_default_s
    print(
        f"RESULT print_s={print_s:.3f} encode_default_s={encode_default_s:.3f} "
        f"ratio={ratio:.3f} peak_mb={peak_mb:.1f} decoded_ok={int(decoded_ok)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
