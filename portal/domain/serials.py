"""Pass serial numbers, check characters, verification codes and QR payloads.

Every paper pass (10 EUR, sold in carnets of 10) carries:

* a **serial number**, printed in canonical form ``MGP1-0001234-07-54``::

      MGP1     programme prefix: 2-6 chars [A-Z0-9], starting with a letter
      0001234  carnet number: 7 digits, zero-padded, 1..9 999 999
      07       index of the pass in its carnet: 2 digits, 01..99 (01..10 in practice)
      54       check: 2 digits, ISO 7064 MOD 97-10 over "MGP1000123407"

  The check is computed as in IBAN: letters become two digits (A=10 ... Z=35),
  ``check = 98 - int(converted + "00") % 97``, zero-padded.  Equivalently the
  whole converted string (body + check) is congruent to 1 modulo 97.

  Why MOD 97-10 rather than Luhn: 97 is prime and larger than any digit
  difference, and 10 has order 96 modulo 97, so among digits (and among
  letters) MOD 97-10 detects 100 % of single substitutions, 100 % of
  adjacent transpositions and 100 % of jump transpositions (abc -> cba).
  Luhn misses the 09 <-> 90 transposition and every jump transposition.
  Desk agents type these numbers by hand, and those are the most frequent
  typing errors.

  Caveat of the IBAN letter conversion: a letter becomes *two* digits, so a
  letter <-> digit mix-up inside the prefix is not guaranteed to be caught
  (e.g. "B1" and "1B" both convert to "111").  Such errors only move digits
  inside the prefix, so whether they are caught depends on the prefix alone:
  :func:`undetected_prefix_errors` lists them, and a programme prefix should
  only be accepted when that list is empty ("MGP1", "MGP2" are fine).

  User input is normalised: surrounding and inner whitespace dropped,
  uppercased, Unicode dashes read as "-".  Hyphens are optional: with hyphens
  the text must have 4 groups; without, the last 11 characters are
  carnet(7) + index(2) + check(2) and the rest is the prefix.  No look-alike
  mapping (O/0, I/1) is done on serials: the check digits catch such typos.

* a **verification code** of 6 Crockford base32 characters (alphabet
  ``0123456789ABCDEFGHJKMNPQRSTVWXYZ``), the first 30 bits of
  ``HMAC-SHA256(key, b"vc|" + canonical serial)``, printed as ``ABC-DEF``.
  Typed at the desk with the serial when the QR code cannot be scanned, it
  proves the pass was printed by us.  Input accepts lowercase, hyphen/space,
  and the look-alikes O -> 0, I/L -> 1.

* a **QR code** whose payload is ``<BASE>/P/<canonical serial>-<kid><tag>``,
  e.g. ``HTTP://127.0.0.1:5000/P/MGP1-0001234-07-54-D1ABCDEFGHJKMN``, where
  ``kid`` is the 2-char id of the key that signed it and ``tag`` the first 65
  bits of ``HMAC-SHA256(key, b"qr|" + canonical serial)`` in 13 Crockford
  characters.  The payload is uppercase so it stays within the QR
  alphanumeric charset (denser code, smaller print).  Parsing accepts the full
  URL with any scheme/host (any case), the part after ``/P/``, or the bare
  ``<serial>-<kid><tag>`` token as typed by a USB scanner.

Errors raised for user input are :class:`~portal.domain.errors.InvalidInput`
with ``details["reason"]`` one of ``"illisible"`` (malformed),
``"faute_de_frappe"`` (well formed, check digits wrong: probably a typo) or
``"falsifie"`` (unknown key id or MAC mismatch).  Whether a well-formed,
authentic serial was actually issued is decided by the database layer.

Configuration errors (bad key ring, bad prefix passed by code) raise
``ValueError``.  This module imports neither Flask nor SQLAlchemy.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from portal.domain.errors import InvalidInput

__all__ = [
    "CROCKFORD_ALPHABET",
    "KeyRing",
    "MAX_INPUT_LENGTH",
    "REASON_FALSIFIE",
    "REASON_FAUTE_DE_FRAPPE",
    "REASON_ILLISIBLE",
    "ScannedPass",
    "Serial",
    "check_verification_code",
    "compute_check",
    "display_verification_code",
    "format_serial",
    "generate_key_config",
    "is_valid_prefix",
    "make_serial",
    "parse_any",
    "parse_qr_payload",
    "parse_serial",
    "qr_payload",
    "qr_tag",
    "undetected_prefix_errors",
    "verification_code",
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

REASON_ILLISIBLE = "illisible"
REASON_FAUTE_DE_FRAPPE = "faute_de_frappe"
REASON_FALSIFIE = "falsifie"

MAX_INPUT_LENGTH = 200

CARNET_DIGITS = 7
INDEX_DIGITS = 2
CHECK_DIGITS = 2
MAX_CARNET = 10 ** CARNET_DIGITS - 1
MAX_INDEX = 10 ** INDEX_DIGITS - 1

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VERIFICATION_CODE_LENGTH = 6   # 30 bits
QR_TAG_LENGTH = 13             # 65 bits
KEY_ID_LENGTH = 2
MIN_KEY_BYTES = 16

MSG_ILLISIBLE = "Numéro de pass illisible : vérifiez la saisie (ex. : MGP1-0001234-07-54)."
MSG_TROP_LONG = "Saisie trop longue : vérifiez ce qui a été saisi ou scanné."
MSG_FAUTE_DE_FRAPPE = (
    "Numéro de pass incorrect : probablement une faute de frappe "
    "(clé de contrôle invalide).")
MSG_FALSIFIE = (
    "Code non reconnu : ce pass n'a pas été émis par le Pass Numérique "
    "(code falsifié ou inconnu).")
MSG_QR_ILLISIBLE = (
    "QR code illisible : scannez-le à nouveau ou saisissez le numéro du pass.")
MSG_CODE_ILLISIBLE = (
    "Code de vérification illisible : il compte 6 caractères (ex. : 7KD-3QX).")

_TWO_DIGITS = ["%02d" % n for n in range(100)]
_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9]{1,5}")
_COMPACT_RE = re.compile(r"([A-Z][A-Z0-9]{1,5})([0-9]{7})([0-9]{2})([0-9]{2})")
_DIGITS7_RE = re.compile(r"[0-9]{7}")
_DIGITS2_RE = re.compile(r"[0-9]{2}")
_KEY_ID_RE = re.compile(r"[A-Z0-9]{2}")
_KIDTAG_RE = re.compile(r"[A-Z0-9]{2}[0-9A-HJKMNP-TV-Z]{13}")
_CODE_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{6}")
_BASE_URL_RE = re.compile(r"[0-9A-Z $%*+\-./:]*")

# IBAN conversion: A=10 ... Z=35.  Digits map to themselves: a miss in a
# str.translate table costs a KeyError internally, twice as slow.
_LETTERS_TO_DIGITS = str.maketrans(
    {**{chr(ord("A") + i): str(10 + i) for i in range(26)},
     **{d: d for d in "0123456789"}})
# Unicode dashes (copy-paste from PDFs, word processors) read as "-";
# invisible characters dropped.
_INPUT_CLEANUP = str.maketrans(
    {**{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"},
     **{c: None for c in "\u00ad\u200b\u200c\u200d\u2060\ufeff"}})
_CODE_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None})


def _error(message: str, reason: str) -> InvalidInput:
    return InvalidInput(message, reason=reason)


def _normalise(text: object, message: str) -> str:
    """Common clean-up of user input: ASCII, no whitespace, uppercase."""
    if not isinstance(text, str):
        raise _error(message, REASON_ILLISIBLE)
    if len(text) > MAX_INPUT_LENGTH:
        raise _error(MSG_TROP_LONG, REASON_ILLISIBLE)
    text = "".join(text.translate(_INPUT_CLEANUP).split())
    # Reject non-ASCII before uppercasing: str.upper() maps e.g. "ß" to "SS"
    # and int() accepts non-ASCII digits.
    if not text or not text.isascii():
        raise _error(message, REASON_ILLISIBLE)
    return text.upper()


# --------------------------------------------------------------------------
# Check characters
# --------------------------------------------------------------------------

def compute_check(body: str) -> str:
    """ISO 7064 MOD 97-10 check of ``body`` (prefix + carnet + index, no
    hyphens, [0-9A-Z] only), as two digits "02".."98"."""
    converted = body.translate(_LETTERS_TO_DIGITS) if isinstance(body, str) else ""
    # Only A-Z and 0-9 are in the table: anything else (lowercase, "-", "_",
    # non-ASCII digits that int() would accept) is left as is and rejected here.
    if not (converted.isascii() and converted.isdigit()):
        raise ValueError(f"check body must be non-empty [0-9A-Z], got {body!r}")
    return _TWO_DIGITS[98 - int(converted) * 100 % 97]


def _converted_mod97(text: str) -> int:
    return int(text.translate(_LETTERS_TO_DIGITS)) % 97


_prefix_mod97 = lru_cache(maxsize=256)(_converted_mod97)


def _serial_check(prefix: str, carnet_number: int, index: int) -> str:
    # compute_check(prefix + "%07d%02d" % (carnet_number, index)) without
    # re-converting the prefix: the body is the prefix followed by 9 digits.
    value = _prefix_mod97(prefix) * 1_000_000_000 + carnet_number * 100 + index
    return _TWO_DIGITS[98 - value * 100 % 97]


def is_valid_prefix(prefix: object) -> bool:
    """True when ``prefix`` matches the programme prefix pattern."""
    return isinstance(prefix, str) and _PREFIX_RE.fullmatch(prefix) is not None


def undetected_prefix_errors(prefix: str) -> list[str]:
    """Typos of ``prefix`` that the check digits would *not* catch.

    Single substitutions and adjacent/jump transpositions that stay inside
    the prefix and yield another valid prefix with the same converted value
    modulo 97 (only possible with letter <-> digit mix-ups).  Errors that
    cross into the carnet digits are always caught or break the structure.
    The result does not depend on the carnet/index, so an empty list means
    the whole programme is protected.  Returns the undetected variants.
    """
    if not is_valid_prefix(prefix):
        raise ValueError(f"invalid programme prefix {prefix!r}")
    reference = _converted_mod97(prefix)
    variants: set[str] = set()
    for i, original in enumerate(prefix):
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
            if c != original:
                variants.add(prefix[:i] + c + prefix[i + 1:])
    for gap in (1, 2):
        for i in range(len(prefix) - gap):
            chars = list(prefix)
            chars[i], chars[i + gap] = chars[i + gap], chars[i]
            variants.add("".join(chars))
    variants.discard(prefix)
    return sorted(v for v in variants
                  if is_valid_prefix(v) and _converted_mod97(v) == reference)


# --------------------------------------------------------------------------
# Serial numbers
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, order=True)
class Serial:
    """A well-formed serial whose check digits are correct.

    Construct it with :func:`make_serial` or :func:`parse_serial`; direct
    construction is validated too (``ValueError``).
    """
    prefix: str
    carnet_number: int
    index: int
    check: str

    def __post_init__(self) -> None:
        if not is_valid_prefix(self.prefix):
            raise ValueError(f"invalid programme prefix {self.prefix!r}")
        for name, value, top in (("carnet_number", self.carnet_number, MAX_CARNET),
                                 ("index", self.index, MAX_INDEX)):
            if type(value) is not int or not 1 <= value <= top:
                raise ValueError(f"{name} must be an int in 1..{top}, got {value!r}")
        if self.check != _serial_check(self.prefix, self.carnet_number, self.index):
            raise ValueError(f"wrong check digits {self.check!r} for {self.body}")

    @property
    def body(self) -> str:
        """Prefix + carnet + index without hyphens (what the check covers)."""
        return "%s%07d%02d" % (self.prefix, self.carnet_number, self.index)

    @property
    def canonical(self) -> str:
        """Printed form, e.g. ``MGP1-0001234-07-54``."""
        return "%s-%07d-%02d-%s" % (self.prefix, self.carnet_number, self.index,
                                    self.check)

    def __str__(self) -> str:
        return self.canonical


def _trusted_serial(prefix: str, carnet_number: int, index: int, check: str) -> Serial:
    # Skips __post_init__: callers have validated every field already.
    serial = object.__new__(Serial)
    object.__setattr__(serial, "prefix", prefix)
    object.__setattr__(serial, "carnet_number", carnet_number)
    object.__setattr__(serial, "index", index)
    object.__setattr__(serial, "check", check)
    return serial


def make_serial(prefix: str, carnet_number: int, index: int) -> Serial:
    """Build the :class:`Serial` of a pass (``ValueError`` on bad arguments)."""
    if not is_valid_prefix(prefix):
        raise ValueError(f"invalid programme prefix {prefix!r}")
    if type(carnet_number) is not int or not 1 <= carnet_number <= MAX_CARNET:
        raise ValueError(f"carnet_number must be in 1..{MAX_CARNET}, got {carnet_number!r}")
    if type(index) is not int or not 1 <= index <= MAX_INDEX:
        raise ValueError(f"index must be in 1..{MAX_INDEX}, got {index!r}")
    check = _serial_check(prefix, carnet_number, index)
    return _trusted_serial(prefix, carnet_number, index, check)


def format_serial(prefix: str, carnet_number: int, index: int) -> str:
    """Canonical printed serial, e.g. ``format_serial("MGP1", 1234, 7)``
    -> ``"MGP1-0001234-07-54"``."""
    return make_serial(prefix, carnet_number, index).canonical


def _split_serial(text: str) -> tuple[str, str, str, str] | None:
    """Split normalised text into (prefix, carnet, index, check) or None."""
    if "-" in text:
        groups = text.split("-")
        if len(groups) != 4:
            return None
        prefix, carnet, index, check = groups
        if (_PREFIX_RE.fullmatch(prefix) and _DIGITS7_RE.fullmatch(carnet)
                and _DIGITS2_RE.fullmatch(index) and _DIGITS2_RE.fullmatch(check)):
            return prefix, carnet, index, check
        return None
    match = _COMPACT_RE.fullmatch(text)
    if match is None:
        return None
    prefix, carnet, index, check = match.groups()
    return prefix, carnet, index, check


def _serial_from_text(text: str) -> Serial:
    """Parse already-normalised text (see :func:`parse_serial`)."""
    parts = _split_serial(text)
    if parts is None:
        raise _error(MSG_ILLISIBLE, REASON_ILLISIBLE)
    prefix, carnet, index, check = parts
    carnet_number, index_number = int(carnet), int(index)
    if carnet_number == 0 or index_number == 0:
        raise _error(MSG_ILLISIBLE, REASON_ILLISIBLE)
    if _serial_check(prefix, carnet_number, index_number) != check:
        raise _error(MSG_FAUTE_DE_FRAPPE, REASON_FAUTE_DE_FRAPPE)
    return _trusted_serial(prefix, carnet_number, index_number, check)


def parse_serial(text: str) -> Serial:
    """Parse a serial typed by a person.

    Raises ``InvalidInput`` with reason ``illisible`` (malformed) or
    ``faute_de_frappe`` (check digits do not match).
    """
    return _serial_from_text(_normalise(text, MSG_ILLISIBLE))


def _as_serial(serial: Serial | str) -> Serial:
    return serial if isinstance(serial, Serial) else parse_serial(serial)


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

def _decode_key(kid: str, encoded: str) -> bytes:
    encoded = encoded.strip().replace("-", "+").replace("_", "/")
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"pass MAC key {kid!r} is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"pass MAC key {kid!r} is {len(key)} bytes long; "
            f"at least {MIN_KEY_BYTES} are required (32 recommended)")
    return key


class KeyRing:
    """The HMAC keys that sign passes, by 2-character key id.

    Built from the ``PASS_MAC_KEYS`` setting ``"D1:<base64>,K2:<base64>"``.
    New passes are signed with the active key (``active_id``, default the
    last listed); older keys stay listed so passes already printed still
    verify.  Keys are never shown by ``repr``/``str``.
    """

    __slots__ = ("_keys", "_macs", "_active_id")

    def __init__(self, config: str, active_id: str | None = None):
        if not isinstance(config, str) or not config.strip():
            raise ValueError("pass MAC key ring is empty: expected 'D1:<base64 key>,...'")
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(config.split(","), start=1):
            entry = entry.strip()
            if not entry:  # tolerate a trailing comma
                continue
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep or not encoded.strip():
                raise ValueError(
                    f"pass MAC key ring entry #{number} must look like "
                    "'D1:<base64 key>'")
            if not _KEY_ID_RE.fullmatch(kid):
                raise ValueError(
                    f"pass MAC key id {kid!r} must be exactly 2 uppercase "
                    "letters or digits")
            if kid in keys:
                raise ValueError(f"pass MAC key id {kid!r} is listed twice")
            keys[kid] = _decode_key(kid, encoded)
        if not keys:
            raise ValueError("pass MAC key ring is empty: expected 'D1:<base64 key>,...'")
        if not active_id:
            active_id = list(keys)[-1]
        if active_id not in keys:
            raise ValueError(
                f"active pass MAC key id {active_id!r} is not in the key ring "
                f"({', '.join(keys)})")
        self._keys = keys
        self._active_id = active_id
        # Keying HMAC costs two compressions; copying a keyed object is cheap.
        self._macs = {
            kid: {purpose: hmac.new(key, purpose, hashlib.sha256)
                  for purpose in (b"qr|", b"vc|")}
            for kid, key in keys.items()
        }

    @property
    def active_id(self) -> str:
        """Id of the key that signs new passes."""
        return self._active_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def key(self, kid: str) -> bytes:
        """Raw key bytes; unknown id -> ``InvalidInput`` (reason falsifie)."""
        try:
            return self._keys[kid]
        except (KeyError, TypeError):
            raise _error(MSG_FALSIFIE, REASON_FALSIFIE) from None

    def _digest(self, kid: str, purpose: bytes, canonical: str) -> bytes:
        try:
            mac = self._macs[kid][purpose].copy()
        except (KeyError, TypeError):
            raise _error(MSG_FALSIFIE, REASON_FALSIFIE) from None
        mac.update(canonical.encode("ascii"))
        return mac.digest()

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={self.key_ids!r}, active_id={self._active_id!r})"

    __str__ = __repr__


def generate_key_config(*key_ids: str, nbytes: int = 32) -> str:
    """A fresh ``PASS_MAC_KEYS`` value, e.g. ``generate_key_config("D1")``."""
    if not key_ids:
        key_ids = ("D1",)
    config = ",".join(
        f"{kid}:{base64.b64encode(secrets.token_bytes(nbytes)).decode('ascii')}"
        for kid in key_ids)
    KeyRing(config)  # validate
    return config


_CROCKFORD_PAIRS = [a + b for a in CROCKFORD_ALPHABET for b in CROCKFORD_ALPHABET]


def _crockford(digest: bytes, chars: int) -> str:
    """First ``5 * chars`` bits of ``digest`` in Crockford base32 (big-endian,
    same bit order as RFC 4648 base32)."""
    nbytes = (chars * 5 + 7) // 8
    n = int.from_bytes(digest[:nbytes], "big") >> (nbytes * 8 - chars * 5)
    head = CROCKFORD_ALPHABET[n >> (chars * 5 - 5)] if chars % 2 else ""
    return head + "".join([_CROCKFORD_PAIRS[(n >> shift) & 1023]
                           for shift in range((chars // 2 - 1) * 10, -1, -10)])


# --------------------------------------------------------------------------
# Verification code (typed at the desk)
# --------------------------------------------------------------------------

def verification_code(ring: KeyRing, kid: str, serial: Serial | str) -> str:
    """6-character verification code of ``serial`` (no hyphen)."""
    canonical = _as_serial(serial).canonical
    return _crockford(ring._digest(kid, b"vc|", canonical), VERIFICATION_CODE_LENGTH)


def _normalise_code(typed: object) -> str:
    code = _normalise(typed, MSG_CODE_ILLISIBLE).translate(_CODE_LOOKALIKES)
    if not _CODE_RE.fullmatch(code):
        raise _error(MSG_CODE_ILLISIBLE, REASON_ILLISIBLE)
    return code


def display_verification_code(code: str) -> str:
    """``"ABCDEF"`` -> ``"ABC-DEF"`` (input normalised like user input)."""
    code = _normalise_code(code)
    return f"{code[:3]}-{code[3:]}"


def check_verification_code(ring: KeyRing, kid: str, serial: Serial | str,
                            typed: str) -> bool:
    """True when ``typed`` is the verification code of ``serial``.

    Raises ``InvalidInput`` (reason illisible) when ``typed`` is not 6
    base32 characters after normalisation, and (reason falsifie) when ``kid``
    is unknown.  30 bits make a blind guess succeed once in a billion tries:
    enough only if callers throttle failed attempts.
    """
    code = _normalise_code(typed)
    expected = verification_code(ring, kid, serial)
    return hmac.compare_digest(expected.encode("ascii"), code.encode("ascii"))


# --------------------------------------------------------------------------
# QR codes
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScannedPass:
    """A serial read from a QR code whose MAC has been verified."""
    serial: Serial
    key_id: str


def qr_tag(ring: KeyRing, kid: str, serial: Serial | str) -> str:
    """Key id + 13 Crockford characters (65 bits of HMAC)."""
    canonical = _as_serial(serial).canonical
    return kid + _crockford(ring._digest(kid, b"qr|", canonical), QR_TAG_LENGTH)


def qr_payload(base_url: str, ring: KeyRing, kid: str, serial: Serial | str) -> str:
    """``<BASE>/P/<serial>-<kid><tag>``, all uppercase (QR alphanumeric mode).

    ``base_url`` (e.g. ``PASS_BASE_URL``) is uppercased and stripped of a
    trailing slash; ``ValueError`` if it leaves the QR alphanumeric charset.
    """
    base = _qr_base(base_url)
    canonical = _as_serial(serial).canonical
    tag = _crockford(ring._digest(kid, b"qr|", canonical), QR_TAG_LENGTH)
    return f"{base}/P/{canonical}-{kid}{tag}"


@lru_cache(maxsize=32)
def _qr_base(base_url: str) -> str:
    base = base_url.strip().upper().rstrip("/")
    if not base.isascii() or not _BASE_URL_RE.fullmatch(base):
        raise ValueError(
            f"base URL {base_url!r} must only use QR alphanumeric characters "
            "(letters, digits, space, $%*+-./:)")
    return base


def _qr_token(text: str) -> str:
    """The ``<serial>-<kid><tag>`` part of normalised text."""
    if "/" in text:
        text = text.rstrip("/")
        cut = text.rfind("/P/")
        if cut < 0:
            raise _error(MSG_QR_ILLISIBLE, REASON_ILLISIBLE)
        text = text[cut + 3:]
    return text


def _scanned_from_token(ring: KeyRing, token: str,
                        unreadable: str = MSG_QR_ILLISIBLE) -> ScannedPass:
    serial_text, sep, kidtag = token.rpartition("-")
    if not sep or not _KIDTAG_RE.fullmatch(kidtag) or serial_text.count("-") != 3:
        raise _error(unreadable, REASON_ILLISIBLE)
    try:
        serial = _serial_from_text(serial_text)
    except InvalidInput as exc:
        if exc.details.get("reason") == REASON_ILLISIBLE:
            raise _error(unreadable, REASON_ILLISIBLE) from None
        raise
    kid, tag = kidtag[:KEY_ID_LENGTH], kidtag[KEY_ID_LENGTH:]
    expected = _crockford(ring._digest(kid, b"qr|", serial.canonical), QR_TAG_LENGTH)
    if not hmac.compare_digest(expected.encode("ascii"), tag.encode("ascii")):
        raise _error(MSG_FALSIFIE, REASON_FALSIFIE)
    return ScannedPass(serial, kid)


def parse_qr_payload(ring: KeyRing, text: str) -> ScannedPass:
    """Parse and verify a scanned QR payload (full URL, part after ``/P/``,
    or bare token; any case).

    Raises ``InvalidInput`` with reason ``illisible`` (malformed),
    ``faute_de_frappe`` (check digits wrong) or ``falsifie`` (unknown key
    id, MAC mismatch).
    """
    return _scanned_from_token(ring, _qr_token(_normalise(text, MSG_QR_ILLISIBLE)))


def parse_any(ring: KeyRing, text: str) -> ScannedPass | Serial:
    """Scan field that takes either a QR payload/token or a typed serial.

    Returns a verified :class:`ScannedPass` for a QR payload (text with a
    "/" or 5 hyphen-separated groups), otherwise a :class:`Serial` whose
    check digits are verified. A :class:`Serial` is NOT proof of a genuine
    pass (check digits are public): the caller must also verify the
    verification code — ``passcheck.authenticate`` does, and is the only
    domain caller.
    """
    normalised = _normalise(text, MSG_ILLISIBLE)
    if "/" in normalised:  # a scanned URL
        return _scanned_from_token(ring, _qr_token(normalised))
    if normalised.count("-") == 4:  # a bare token, probably typed
        return _scanned_from_token(ring, normalised, MSG_ILLISIBLE)
    return _serial_from_text(normalised)
