"""Fast QR code matrix builder for printed vouchers.

The vouchers of a print run all carry payloads of the same shape (same
length, QR alphanumeric charset), so most of the work ``qrcode`` redoes for
every code can be done once:

* the version is FIXED per payload length: the smallest version that holds
  the payload at error correction level Q (alphanumeric mode), cached;
* the mask pattern is FIXED (no automatic mask search, which alone costs
  8 full matrix builds and penalty evaluations per code);
* the "template" of a version (finder, alignment and timing patterns,
  format and version information, built with ``qrcode`` itself) and the
  placement order of the data modules, with the mask bit of each of them,
  are computed once per version;
* the Reed-Solomon error correction words are computed with a
  table-driven shift register (generator polynomials from ``qrcode``)
  instead of ``qrcode``'s recursive polynomial division.

The resulting matrix is bit-for-bit the one ``qrcode`` produces with
``QRCode(version=v, error_correction=ERROR_CORRECT_Q, mask_pattern=MASK_PATTERN)``
(this is checked by the tests), at a fraction of the cost.

Payloads outside the QR alphanumeric charset (e.g. lowercase letters) are
still accepted and encoded in byte mode (UTF-8), but the printing code
always produces uppercase payloads.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from functools import lru_cache

from qrcode import base, constants, util
from qrcode.LUT import rsPoly_LUT
from qrcode.main import QRCode

__all__ = [
    "ERROR_CORRECTION",
    "MASK_PATTERN",
    "QUIET_ZONE",
    "dark_runs",
    "qr_matrix",
    "qr_rows",
    "qr_runs",
    "qr_size",
    "qr_version",
    "runs_from_matrix",
]

#: Error correction level of every printed QR code (recovers ~25 % damage).
ERROR_CORRECTION = constants.ERROR_CORRECT_Q
#: Fixed mask pattern. Pattern 4 had the lowest worst-case penalty gap to the
#: best mask on a sample of real-shaped voucher payloads (version 4-Q).
MASK_PATTERN = 4
#: Width of the light margin required around the symbol, in modules.
QUIET_ZONE = 4

_ALNUM = util.ALPHA_NUM.decode("ascii")
_ALNUM_INDEX = {ch: i for i, ch in enumerate(_ALNUM)}
_ALNUM_RE = re.compile("[" + re.escape(_ALNUM) + "]*")
_DARK_RUN_RE = re.compile("1+")
_BIT_LIMITS = util.BIT_LIMIT_TABLE[ERROR_CORRECTION]  # index = version


def _payload_mode(payload: str) -> int:
    if _ALNUM_RE.fullmatch(payload):
        return util.MODE_ALPHA_NUM
    return util.MODE_8BIT_BYTE


def _payload_bits(mode: int, length: int) -> int:
    """Number of data bits of a segment of ``length`` chars (alnum) or bytes."""
    if mode == util.MODE_ALPHA_NUM:
        return 11 * (length // 2) + 6 * (length % 2)
    return 8 * length


@lru_cache(maxsize=None)
def _version_for(mode: int, length: int) -> int:
    needed = _payload_bits(mode, length) + 4
    for version in range(1, 41):
        if needed + util.length_in_bits(mode, version) <= _BIT_LIMITS[version]:
            return version
    raise ValueError(
        f"payload of {length} characters too long for a QR code at level Q"
    )


def qr_version(payload: str) -> int:
    """QR version used for ``payload`` (fixed per payload length and mode)."""
    if _payload_mode(payload) == util.MODE_ALPHA_NUM:
        return _version_for(util.MODE_ALPHA_NUM, len(payload))
    return _version_for(util.MODE_8BIT_BYTE, len(payload.encode("utf-8")))


def qr_size(payload: str) -> int:
    """Width of the symbol of ``payload`` in modules, WITHOUT quiet zone."""
    return qr_version(payload) * 4 + 17


@lru_cache(maxsize=None)
def _rs_table(ec_count: int) -> tuple[tuple[int, ...], ...]:
    """For each factor f, the products f * g_i of the generator coefficients."""
    generator = rsPoly_LUT.get(ec_count)
    if generator is None:  # pragma: no cover - all QR EC counts are in the LUT
        poly = base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * base.Polynomial([1, base.gexp(i)], 0)
        generator = list(poly)
    log, exp = base.LOG_TABLE, base.EXP_TABLE
    coefs = generator[1:]
    table = [tuple([0] * ec_count)]
    for factor in range(1, 256):
        lf = log[factor]
        table.append(
            tuple(exp[(lf + log[g]) % 255] if g else 0 for g in coefs)
        )
    return tuple(table)


def _rs_remainder(data: bytes, ec_count: int) -> list[int]:
    """Error correction codewords of one block (LFSR division)."""
    table = _rs_table(ec_count)
    xor = operator.xor
    rem = [0] * ec_count
    for byte in data:
        rem.append(0)
        rem = list(map(xor, rem[1:], table[byte ^ rem[0]]))
    return rem


@dataclass(frozen=True, slots=True)
class _Layout:
    version: int
    size: int
    data_bits: int  # data capacity (bits) before error correction
    codewords: int  # total codewords (data + error correction)
    blocks: tuple[tuple[int, int], ...]  # (data_count, ec_count) per block
    n_positions: int  # data modules, incl. remainder bits
    mask: int  # mask bits in placement order, as an integer
    interleave: operator.itemgetter | None  # data+ec blocks -> codeword order
    gather: operator.itemgetter  # bits+"01" -> matrix chars, row-major


@lru_cache(maxsize=None)
def _layout(version: int) -> _Layout:
    size = version * 4 + 17
    # Let qrcode build the function patterns and format/version information.
    q = QRCode(
        version=version,
        error_correction=ERROR_CORRECTION,
        mask_pattern=MASK_PATTERN,
        border=0,
    )
    q.modules_count = size
    q.modules = [[None] * size for _ in range(size)]
    q.setup_position_probe_pattern(0, 0)
    q.setup_position_probe_pattern(size - 7, 0)
    q.setup_position_probe_pattern(0, size - 7)
    q.setup_position_adjust_pattern()
    q.setup_timing_pattern()
    q.setup_type_info(False, MASK_PATTERN)
    if version >= 7:
        q.setup_type_number(False)
    modules = q.modules

    # Placement order of the data modules (same walk as QRCode.map_data).
    mask_func = util.mask_func(MASK_PATTERN)
    order: dict[int, int] = {}
    mask_bits = []
    inc, row = -1, size - 1
    for col in range(size - 1, 0, -2):
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if modules[row][c] is None:
                    order[row * size + c] = len(mask_bits)
                    mask_bits.append("1" if mask_func(row, c) else "0")
            row += inc
            if row < 0 or row >= size:
                row -= inc
                inc = -inc
                break

    n_positions = len(mask_bits)
    light, dark = n_positions, n_positions + 1  # indexes of "0", "1" appended
    gather_idx = []
    for r in range(size):
        for c in range(size):
            i = r * size + c
            if i in order:
                gather_idx.append(order[i])
            else:
                gather_idx.append(dark if modules[r][c] else light)

    rs = base.rs_blocks(version, ERROR_CORRECTION)
    blocks = tuple((b.data_count, b.total_count - b.data_count) for b in rs)
    # Interleaving: codeword i of the symbol is item interleave_idx[i] of
    # "all data blocks, then all error correction blocks" concatenated.
    starts, offset = [], 0
    for dc, _ in blocks:
        starts.append(offset)
        offset += dc
    ec_starts = []
    for _, ec in blocks:
        ec_starts.append(offset)
        offset += ec
    interleave_idx = []
    for i in range(max(dc for dc, _ in blocks)):
        interleave_idx += [s + i for s, (dc, _) in zip(starts, blocks) if i < dc]
    for i in range(max(ec for _, ec in blocks)):
        interleave_idx += [s + i for s, (_, ec) in zip(ec_starts, blocks) if i < ec]
    return _Layout(
        version=version,
        size=size,
        data_bits=8 * sum(d for d, _ in blocks),
        codewords=sum(b.total_count for b in rs),
        blocks=blocks,
        n_positions=n_positions,
        mask=int("".join(mask_bits), 2),
        interleave=(
            operator.itemgetter(*interleave_idx) if len(blocks) > 1 else None
        ),
        gather=operator.itemgetter(*gather_idx),
    )


def _data_codewords(payload: str, mode: int, version: int, limit: int) -> bytes:
    if mode == util.MODE_ALPHA_NUM:
        idx = _ALNUM_INDEX
        n = len(payload)
        parts = [
            f"{mode:04b}",
            format(n, f"0{util.length_in_bits(mode, version)}b"),
        ]
        parts += [
            format(idx[payload[i]] * 45 + idx[payload[i + 1]], "011b")
            for i in range(0, n - 1, 2)
        ]
        if n % 2:
            parts.append(format(idx[payload[-1]], "06b"))
    else:
        raw = payload.encode("utf-8")
        parts = [
            f"{mode:04b}",
            format(len(raw), f"0{util.length_in_bits(mode, version)}b"),
        ]
        parts += [format(b, "08b") for b in raw]
    bits = "".join(parts)
    bits += "0" * min(limit - len(bits), 4)  # terminator
    bits += "0" * (-len(bits) % 8)  # byte boundary
    data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    pad_count = limit // 8 - len(data)
    return data + (b"\xec\x11" * (pad_count // 2 + 1))[:pad_count]


def qr_rows(payload: str) -> list[str]:
    """Rows of the symbol as strings of ``"0"`` (light) / ``"1"`` (dark).

    Fastest representation; no quiet zone.
    """
    mode = _payload_mode(payload)
    version = qr_version(payload)
    layout = _layout(version)
    data = _data_codewords(payload, mode, version, layout.data_bits)

    # Split in blocks, compute error correction, interleave.
    ec_words: list[int] = []
    offset = 0
    for dc, ec in layout.blocks:
        ec_words += _rs_remainder(data[offset : offset + dc], ec)
        offset += dc
    codewords = data + bytes(ec_words)
    if layout.interleave is not None:
        codewords = bytes(layout.interleave(codewords))

    # Codeword bits in placement order, remainder bits = 0, then masked.
    n = layout.n_positions
    value = int.from_bytes(codewords, "big") << (n - 8 * len(codewords))
    bits = format(value ^ layout.mask, f"0{n}b") + "01"
    flat = "".join(layout.gather(bits))
    size = layout.size
    return [flat[i : i + size] for i in range(0, size * size, size)]


def qr_matrix(payload: str) -> list[list[bool]]:
    """Module matrix of ``payload`` (True = dark), WITHOUT quiet zone.

    Error correction Q, fixed version for the payload length, fixed mask.
    """
    return [[ch == "1" for ch in row] for row in qr_rows(payload)]


def dark_runs(rows: list[str]) -> list[list[tuple[int, int]]]:
    """Horizontal runs of dark modules per row: ``[(start_col, length), ...]``.

    ``rows`` is the output of :func:`qr_rows`; coordinates exclude the quiet
    zone (add :data:`QUIET_ZONE` when drawing).
    """
    finditer = _DARK_RUN_RE.finditer
    return [
        [(s, e - s) for s, e in [m.span() for m in finditer(row)]] for row in rows
    ]


def runs_from_matrix(matrix: list[list[bool]]) -> list[list[tuple[int, int]]]:
    """Same as :func:`dark_runs` for a boolean matrix."""
    return dark_runs(["".join("1" if m else "0" for m in row) for row in matrix])


def qr_runs(payload: str) -> list[list[tuple[int, int]]]:
    """Horizontal dark runs per row of the symbol of ``payload``."""
    return dark_runs(qr_rows(payload))
