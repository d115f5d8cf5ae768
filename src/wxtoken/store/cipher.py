"""Sealing of stored secrets: AES-256-GCM with associated data, keyed fingerprints, key checks.

Every sealed value carries associated data naming its profile and field (for tokens also the
expiry; for the client secret every security-relevant profile setting), so a ciphertext moved to
another row, or a row whose base URL or redirect URI was edited behind wxtoken's back, fails
authentication instead of being used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from .._format import SEALED_VERSION, split_sealed
from ..errors import TamperedData, WrongKey

KEYCHECK_AD = "wxtoken:v1|keycheck"
# The key check's plaintext also says which associated-data layout the store's client secrets
# use: 1 (release 0.1.0: profile, field, client id) or 2 (every security-relevant setting). A
# store is upgraded to 2 as a whole, in one transaction, so a row can never be downgraded alone.
_KEYCHECK_PREFIX = "wxtoken key check v"
CURRENT_LAYOUT = 2


class Cipher:
    """AES-256-GCM with per-value random nonces; never returns partial plaintext."""

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise WrongKey("the store key has the wrong length", fix="check WXTOKEN_KEY_FILE")
        self._aead = AESGCM(key)
        # A separate key for fingerprints, so a fingerprint never helps attack the data key.
        self._fp_key = hmac.new(key, b"wxtoken fingerprint key", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "Cipher(<AES-256-GCM>)"

    def seal(self, plaintext: str, ad: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), ad.encode())
        return SEALED_VERSION + nonce + sealed

    def open(self, blob: bytes, ad: str, *, what: str) -> str:
        from cryptography.exceptions import InvalidTag

        fix = _refill(what)
        parts = split_sealed(blob)
        if parts is None:
            raise TamperedData(f"the stored {what} is damaged (bad header)", fix=fix)
        try:
            plain = self._aead.decrypt(parts[0], parts[1], ad.encode())
        except InvalidTag:
            raise TamperedData(
                f"the stored {what} failed its integrity check (modified, or moved from "
                "another profile, or the profile's settings were edited outside wxtoken)",
                fix=fix,
            ) from None
        return plain.decode("utf-8")

    def fingerprint(self, secret: str) -> str:
        """A keyed fingerprint (HMAC-SHA256, 16 hex): logs correlate without revealing."""
        return hmac.new(self._fp_key, secret.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _refill(what: str) -> str:
    """How to replace a stored value that cannot be opened."""
    if what == "client secret":
        return (
            "restore the store from a backup, or check the profile (`wxtoken profile show "
            "{profile}`) and enter the secret again: wxtoken profile set {profile} "
            "--client-secret-stdin"
        )
    return "restore the store from a backup, or sign in again: wxtoken login -p {profile}"


def make_keycheck(cipher: Cipher, layout: int = CURRENT_LAYOUT) -> str:
    return base64.b64encode(cipher.seal(f"{_KEYCHECK_PREFIX}{layout}", KEYCHECK_AD)).decode()


def keycheck_layout(cipher: Cipher, value: str) -> int | None:
    """The layout a key check records, or None when this key does not open it."""
    try:
        plain = cipher.open(base64.b64decode(value), KEYCHECK_AD, what="key check")
    except (TamperedData, ValueError):
        return None
    if not plain.startswith(_KEYCHECK_PREFIX) or not plain[len(_KEYCHECK_PREFIX) :].isdigit():
        return None
    return int(plain[len(_KEYCHECK_PREFIX) :])
