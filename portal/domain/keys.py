"""Process-wide key material, loaded from the environment at start-up.

The keys never enter the database: the pass codes (``serials.KeyRing``) and
the ledger's HMAC chain key are configured here by ``create_app`` (or a
command) and read by the domain modules that need them.
"""
from __future__ import annotations

import base64
import binascii

from portal.domain.serials import KeyRing

_state: dict = {}


def configure(pass_mac_keys: str, active_key: str | None, ledger_key_b64: str) -> None:
    try:
        ledger_key = base64.b64decode(ledger_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("LEDGER_HMAC_KEY must be base64") from None
    if len(ledger_key) < 16:
        raise ValueError("LEDGER_HMAC_KEY must decode to at least 16 bytes")
    _state["ring"] = KeyRing(pass_mac_keys, active_key or None)
    _state["ledger"] = ledger_key


def pass_ring() -> KeyRing:
    return _state["ring"]


def ledger_key() -> bytes:
    return _state["ledger"]
