"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), no Flask.

30-second step, 6 digits, HMAC-SHA1 (what every authenticator app
implements), codes of the previous, current and next step accepted (clock
drift), and a code never accepted twice: the caller stores the last step
used and passes it back (``verify(..., last_step=...)``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP = 30
DIGITS = 6
WINDOW = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226 recommendation
ISSUER = "Pass Numérique MGP"


def new_secret() -> str:
    """A random base32 secret (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 HOTP value for ``counter``."""
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    binary = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10 ** DIGITS).zfill(DIGITS)


def step_at(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP)


def code_at(secret: str, now: float | None = None) -> str:
    return hotp(secret, step_at(now))


def normalise_code(code: str) -> str:
    return "".join((code or "").split())


def verify(secret: str, code: str, *, last_step: int | None = None,
           now: float | None = None) -> int | None:
    """The step matched by ``code`` (to store as the new ``last_step``), or
    None when the code is wrong, outside the window, or already used."""
    code = normalise_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_at(now)
    matched = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def provisioning_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI that authenticator apps read from the QR code."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (server-side, no script)."""
    import qrcode
    import qrcode.image.svg
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    return image.to_string(encoding="unicode")
