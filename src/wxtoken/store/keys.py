"""Where a store's key comes from: the OS keyring, a passphrase, or a key file.

Key sources (a store remembers which one it was created with):
  keyring     a random 32-byte data key in the OS keyring, every call bounded by a timeout
  passphrase  scrypt(passphrase, salt) with the parameters stored beside the data
  keyfile     a random key in a 0600 file named by WXTOKEN_KEY_FILE (weaker: key beside data)
There is no plaintext mode and no fallback between sources.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._format import decode_keyfile
from .._local import Settings
from ..errors import CorruptStore, KeySourceError, UsageError, WrongKey
from .fs import create_private_file, read_private_file

KEYRING_SERVICE = "wxtoken"

# OWASP's scrypt minimum (N=2^17, r=8, p=1: 128 MiB, ~0.3 s here). Stored per store so it can be
# raised later without breaking existing stores.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
# Parameters read back from a store are bounded: a tampered store must not make wxtoken
# allocate a terabyte (memory is 128 * n * r bytes) or spin for hours.
_SCRYPT_N_RANGE = (2**14, 2**20)
_SCRYPT_R_RANGE = (1, 16)
_SCRYPT_P_RANGE = (1, 4)

KEY_SOURCES = ("keyring", "passphrase", "keyfile")
WEAKNESS = {
    "keyring": "OS keyring",
    "passphrase": "passphrase (scrypt)",
    "keyfile": "key file (weaker: the key sits on the same disk as the data)",
}


def hint(source: str) -> str:
    """How to give the key a store was created with."""
    return {
        "passphrase": "set WXTOKEN_PASSPHRASE to the passphrase this store was created with",
        "keyfile": "set WXTOKEN_KEY_FILE to the key file this store was created with",
        "keyring": "the keyring entry 'wxtoken' was changed; restore it or start a new "
        "store (new WXTOKEN_HOME) and sign in again",
    }.get(source, "restore the store from a backup")


def wrong_key(source: str) -> WrongKey:
    return WrongKey(
        f"the {WEAKNESS[source].split(' (')[0]} does not open this store", fix=hint(source)
    )


@dataclass
class KeyDecision:
    """A new store's key, the meta rows that describe it, and what must be saved with them.

    Prepared outside the store's write transaction (a passphrase prompt or scrypt can take a
    while); `save()` runs inside it, after the transaction has checked that no other process
    created the store's key first, so two first commands racing can never leave the store
    encrypted under a key that the keyring no longer holds.
    """

    source: str
    key: bytes = field(repr=False)
    new_meta: dict[str, str]
    save: Callable[[str], None] = field(default=lambda store_id: None, repr=False)


def _env_sources(settings: Settings) -> tuple[bool, bool]:
    """(passphrase set, key file set); both at once is a usage error."""
    has_pass = bool(settings.passphrase)
    has_file = settings.key_file is not None
    if has_pass and has_file:
        raise UsageError(
            "both WXTOKEN_PASSPHRASE and WXTOKEN_KEY_FILE are set; a store has one key source",
            fix="unset one of them",
        )
    return has_pass, has_file


def choose_new_source(settings: Settings) -> str:
    has_pass, has_file = _env_sources(settings)
    if has_pass:
        return "passphrase"
    if has_file:
        return "keyfile"
    wanted = settings.key_source
    if wanted:
        if wanted not in KEY_SOURCES:
            raise UsageError(
                f"WXTOKEN_KEY_SOURCE={wanted!r} is not a key source",
                fix=f"use one of: {', '.join(KEY_SOURCES)}",
            )
        if wanted == "keyfile":
            raise UsageError(
                "WXTOKEN_KEY_SOURCE=keyfile needs WXTOKEN_KEY_FILE=PATH",
                fix="export WXTOKEN_KEY_FILE=~/.config/wxtoken.key",
            )
        return wanted
    return "keyring"


def new_store_key(settings: Settings, prompt: Callable[[str, bool], str] | None) -> KeyDecision:
    source = choose_new_source(settings)
    if source == "keyfile":
        assert settings.key_file is not None
        path = Path(settings.key_file)
        key = _load_or_create_keyfile(path)
        return KeyDecision(source, key, {"key_source": source, "keyfile_hint": str(path)})
    if source == "passphrase":
        passphrase = _passphrase(settings, prompt, confirm=True)
        salt = secrets.token_bytes(16)
        params = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
        key = _scrypt(passphrase, salt, params)
        return KeyDecision(
            source,
            key,
            {
                "key_source": source,
                "kdf": "scrypt",
                "kdf_salt": base64.b64encode(salt).decode(),
                "kdf_params": f"{params['n']},{params['r']},{params['p']}",
            },
        )
    key = secrets.token_bytes(32)

    def save(store_id: str) -> None:
        _keyring_call("set", store_id, base64.b64encode(key).decode(), settings.keyring_timeout)

    return KeyDecision(source, key, {"key_source": source}, save)


def existing_store_key(
    settings: Settings,
    meta: Mapping[str, str],
    store_id: str,
    prompt: Callable[[str, bool], str] | None,
) -> bytes:
    source = meta.get("key_source", "")
    has_pass, has_file = _env_sources(settings)
    if source == "keyfile":
        if has_pass or not has_file:
            hint = meta.get("keyfile_hint", "PATH")
            raise KeySourceError(
                "this store is encrypted with a key file, and WXTOKEN_KEY_FILE is not set",
                fix=f"export WXTOKEN_KEY_FILE={hint}",
            )
        assert settings.key_file is not None
        return _read_keyfile(Path(settings.key_file))
    if source == "passphrase":
        if has_file:
            raise KeySourceError(
                "this store is encrypted with a passphrase, not a key file",
                fix="unset WXTOKEN_KEY_FILE and set WXTOKEN_PASSPHRASE (or answer the prompt)",
            )
        salt, params = _kdf_params(meta)
        return _scrypt(_passphrase(settings, prompt, confirm=False), salt, params)
    if source == "keyring":
        if has_pass or has_file:
            var = "WXTOKEN_PASSPHRASE" if has_pass else "WXTOKEN_KEY_FILE"
            raise KeySourceError(
                f"this store keeps its key in the OS keyring, but {var} is set",
                fix=f"unset {var}",
            )
        value = _keyring_call("get", store_id, None, settings.keyring_timeout)
        if not value:
            raise WrongKey(
                "the OS keyring has no key for this store (entry removed, or another keyring)",
                fix="restore the keyring entry, or start a new store (new WXTOKEN_HOME) and "
                "sign in again",
            )
        try:
            return base64.b64decode(value)
        except ValueError:
            raise WrongKey("the keyring entry for this store is damaged") from None
    raise KeySourceError(
        f"the store names an unknown key source {source!r}",
        fix="upgrade wxtoken, or restore the store from a backup",
    )


def _kdf_params(meta: Mapping[str, str]) -> tuple[bytes, dict[str, int]]:
    """The stored salt and scrypt parameters, refused unless within sane bounds."""
    try:
        salt = base64.b64decode(meta["kdf_salt"], validate=True)
        n, r, p = (int(x) for x in meta["kdf_params"].split(","))
    except (KeyError, ValueError, binascii.Error):
        n = r = p = -1
        salt = b""
    bounds = ((n, _SCRYPT_N_RANGE), (r, _SCRYPT_R_RANGE), (p, _SCRYPT_P_RANGE))
    if (
        meta.get("kdf") != "scrypt"
        or not 16 <= len(salt) <= 64
        or n & (n - 1)
        or any(not lo <= v <= hi for v, (lo, hi) in bounds)
    ):
        raise CorruptStore(
            "the store's key-derivation parameters are missing or outside sane bounds "
            "(damaged or tampered with)",
            fix="restore the store from a backup, or move it aside and sign in again",
        )
    return salt, {"n": n, "r": r, "p": p}


def _scrypt(passphrase: str, salt: bytes, params: Mapping[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"])
    return kdf.derive(passphrase.encode("utf-8"))


def _passphrase(
    settings: Settings, prompt: Callable[[str, bool], str] | None, *, confirm: bool
) -> str:
    value = settings.passphrase
    if value:
        return value
    if prompt is None:
        raise KeySourceError(
            "this store needs its passphrase and there is no terminal to ask on",
            fix="set WXTOKEN_PASSPHRASE in the service's environment",
        )
    value = prompt("Store passphrase", confirm)
    if not value:
        raise KeySourceError("an empty passphrase cannot protect the store", fix="try again")
    return value


def _load_or_create_keyfile(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            create_private_file(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        except FileExistsError:
            pass
        except OSError as exc:
            raise KeySourceError(
                f"cannot create the key file {path} ({exc.strerror})",
                fix="point WXTOKEN_KEY_FILE at a writable location",
            ) from None
    return _read_keyfile(path)


def _read_keyfile(path: Path) -> bytes:
    if not path.exists():
        raise KeySourceError(
            f"the key file {path} does not exist", fix="restore it from your backup"
        )
    key = decode_keyfile(read_private_file(path))
    if key is None:
        raise WrongKey(
            f"{path} is not a wxtoken key file (expected 32 bytes, base64)",
            fix="point WXTOKEN_KEY_FILE at the key file this store was created with",
        )
    return key


def _keyring_call(op: str, store_id: str, value: str | None, timeout: float) -> str | None:
    """Call the keyring in a daemon thread so a hung backend costs `timeout`, not forever."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            import keyring
            import keyring.backends.fail

            backend = keyring.get_keyring()
            if (
                isinstance(backend, keyring.backends.fail.Keyring)
                or "null" in type(backend).__module__.lower()
            ):
                result["error"] = "no usable OS keyring (no Secret Service, KWallet or Keychain)"
                return
            if op == "set":
                keyring.set_password(KEYRING_SERVICE, f"store-{store_id}", value or "")
            else:
                result["value"] = keyring.get_password(KEYRING_SERVICE, f"store-{store_id}")
        except Exception as exc:  # the keyring's own errors vary by backend
            result["error"] = f"{type(exc).__name__}"

    worker = threading.Thread(target=run, name="wxtoken-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    fix = (
        "unlock the keyring, or choose another key source: export WXTOKEN_PASSPHRASE=... "
        "or export WXTOKEN_KEY_FILE=PATH (weaker) before the first command"
    )
    if worker.is_alive():
        raise KeySourceError(f"the OS keyring did not answer within {timeout:g} s", fix=fix)
    if "error" in result:
        raise KeySourceError(f"the OS keyring is unavailable: {result['error']}", fix=fix)
    value_out = result.get("value")
    return value_out if isinstance(value_out, str) else None
