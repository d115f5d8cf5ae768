"""The embedded store's on-disk format, shared by the store and the `wxtoken token` hot path.

Kept free of heavy imports (no typing, dataclasses or hashlib) because the hot path imports it
before anything else. One definition of the format means the two readers cannot drift.
"""

from __future__ import annotations

import binascii

SCHEMA_VERSION = 3  # the store schema this release writes (store/migrations.py)
SEALED_VERSION = b"\x01"  # sealed value = version byte | 12-byte nonce | ciphertext+tag
NONCE_LEN = 12
KEY_LEN = 32


def ad(profile: str, field: str, extra: str = "") -> str:
    """Associated data binding a sealed value to its profile, field and (for tokens) expiry."""
    return f"wxtoken:v1|{profile}|{field}|{extra}"


def exp(value: float | None) -> str:
    return "none" if value is None else repr(float(value))


def split_sealed(blob: bytes) -> tuple[bytes, bytes] | None:
    if len(blob) < 1 + NONCE_LEN + 16 or blob[:1] != SEALED_VERSION:
        return None
    return blob[1 : 1 + NONCE_LEN], blob[1 + NONCE_LEN :]


def decode_keyfile(raw: bytes) -> bytes | None:
    """A key file holds 32 random bytes, base64, one line."""
    try:
        key = binascii.a2b_base64(raw.strip())
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_LEN else None
