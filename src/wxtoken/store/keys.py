"""Where a store's key comes from: the OS keyring, a passphrase, or a key file.

Key sources (a store remembers which one it was created with):
  keyring     a random 32-byte data key in the OS keyring, every call bounded by a timeout
  passphrase  scrypt(passphrase, salt) with the parameters stored beside the data
  keyfile     a random key in a 0600 file named by WXTOKEN_KEY_FILE (weaker: key beside data)
There is no plaintext mode and no silent fallback between sources. A new store takes the source
the environment names, else the keyring; when no keyring is usable and a person is at a
terminal, they are offered a new passphrase instead, told plainly what it is for. A command
that asks for anything else (a client secret) calls `unlock(create=True)` first, so the key is
settled before anyone types a secret for a store that then could not be created.

Fix lines never put a passphrase on a command line (shell history, the process list): they
say how to set WXTOKEN_PASSPHRASE without either.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._format import decode_keyfile
from .._local import Settings
from ..errors import CorruptStore, KeySourceError, UsageError, WrongKey
from .cipher import Cipher, keycheck_layout
from .fs import create_private_file, read_private_file
from .oskeyring import KeyringTrouble, keyring_get, keyring_problem, keyring_set

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


# How to hand wxtoken a passphrase without leaving it in shell history or the process list.
SET_PASSPHRASE = (
    "`read -rs WXTOKEN_PASSPHRASE && export WXTOKEN_PASSPHRASE` in a shell, or for a service a "
    "systemd credential or an EnvironmentFile only its user can read"
)
NEW_STORE_FIX = (
    "give the store a key source before its first command: a passphrase in WXTOKEN_PASSPHRASE, "
    f"set without shell history ({SET_PASSPHRASE}), or WXTOKEN_KEY_FILE=PATH (weaker: the key "
    "sits beside the data)"
)
# A wrong passphrase typed at the prompt is asked again this many times before giving up.
PASSPHRASE_RETRIES = 3
PASSPHRASE_LABEL = (
    "Store passphrase (the local one chosen for wxtoken's store, not your Webex password; "
    "input hidden)"
)
NEW_PASSPHRASE_LABEL = (
    "Choose a NEW passphrase for wxtoken's local store: it encrypts the tokens and the client "
    "secret on this machine. It is not your Webex password. Every command that uses the "
    "tokens asks for it (a service reads it from WXTOKEN_PASSPHRASE).\n"
    "New store passphrase (input hidden)"
)


def hint(source: str) -> str:
    """How to give the key a store was created with."""
    return {
        "passphrase": "use the passphrase this store was created with: at the prompt, or in "
        f"WXTOKEN_PASSPHRASE set without shell history ({SET_PASSPHRASE})",
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
    else:
        wanted = "keyring"
    if wanted == "keyring" and settings.store_url:
        # The keyring is one machine's: other hosts sharing the store could never unlock it.
        raise KeySourceError(
            "a store shared by several hosts cannot keep its key in this machine's keyring",
            fix="give every host the same key: WXTOKEN_PASSPHRASE (" + SET_PASSPHRASE + ") or "
            "WXTOKEN_KEY_FILE=PATH with the same file copied to each host",
        )
    return wanted


def new_store_key(settings: Settings, prompt: Callable[[str, bool], str] | None) -> KeyDecision:
    source = choose_new_source(settings)
    if source == "keyfile":
        assert settings.key_file is not None
        path = Path(settings.key_file)
        key = _load_or_create_keyfile(path)
        return KeyDecision(source, key, {"key_source": source, "keyfile_hint": str(path)})
    if source == "keyring" and not settings.key_source:  # the default, not an explicit choice
        problem = keyring_problem(KEYRING_SERVICE, settings.keyring_timeout)
        if problem is not None:
            if prompt is None:
                raise KeySourceError(
                    f"{problem.reason}, and there is no terminal to ask for a passphrase",
                    fix=NEW_STORE_FIX,
                )
            # Offered, never silent: the person sees why and chooses by typing a passphrase.
            later = "" if problem.absent else " (to use it, press Ctrl-C, make it usable and retry)"
            return _passphrase_decision(_ask_new(prompt, f"wxtoken: {problem.reason}{later}.\n"))
    if source == "passphrase":
        if settings.passphrase:
            return _passphrase_decision(settings.passphrase)
        if prompt is None:
            raise KeySourceError(
                "a new passphrase store needs its passphrase and there is no terminal to ask on",
                fix=NEW_STORE_FIX,
            )
        return _passphrase_decision(_ask_new(prompt, ""))
    key = secrets.token_bytes(32)

    def save(store_id: str) -> None:
        _keyring_set(store_id, base64.b64encode(key).decode(), settings.keyring_timeout)

    return KeyDecision(source, key, {"key_source": source}, save)


def _ask_new(prompt: Callable[[str, bool], str], why: str) -> str:
    value = prompt(why + NEW_PASSPHRASE_LABEL, True)
    if not value:
        raise KeySourceError("an empty passphrase cannot protect the store", fix="try again")
    return value


def _passphrase_decision(passphrase: str) -> KeyDecision:
    salt = secrets.token_bytes(16)
    params = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    return KeyDecision(
        "passphrase",
        _scrypt(passphrase, salt, params),
        {
            "key_source": "passphrase",
            "kdf": "scrypt",
            "kdf_salt": base64.b64encode(salt).decode(),
            "kdf_params": f"{params['n']},{params['r']},{params['p']}",
        },
    )


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
                fix="unset WXTOKEN_KEY_FILE, then answer the passphrase prompt or set "
                f"WXTOKEN_PASSPHRASE without shell history ({SET_PASSPHRASE})",
            )
        salt, params = _kdf_params(meta)
        if settings.passphrase:
            return _scrypt(settings.passphrase, salt, params)
        return _ask_existing(prompt, salt, params, meta.get("keycheck", ""))
    if source == "keyring":
        if has_pass or has_file:
            var = "WXTOKEN_PASSPHRASE" if has_pass else "WXTOKEN_KEY_FILE"
            raise KeySourceError(
                f"this store keeps its key in the OS keyring, but {var} is set",
                fix=f"unset {var}",
            )
        value = _keyring_get(store_id, settings.keyring_timeout)
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


def _ask_existing(
    prompt: Callable[[str, bool], str] | None,
    salt: bytes,
    params: Mapping[str, int],
    keycheck: str,
) -> bytes:
    """The key from a passphrase typed at the prompt; a typo is asked again, not fatal."""
    if prompt is None:
        raise KeySourceError(
            "this store needs its passphrase and there is no terminal to ask on",
            fix=f"set WXTOKEN_PASSPHRASE without putting it on a command line: {SET_PASSPHRASE}",
        )
    label = PASSPHRASE_LABEL
    for left in range(PASSPHRASE_RETRIES, -1, -1):
        key = _scrypt(prompt(label, False), salt, params)
        if keycheck_layout(Cipher(key), keycheck) is not None:
            return key
        tries = "try" if left == 1 else "tries"
        label = (
            f"That passphrase does not open this store ({left} more {tries}).\n{PASSPHRASE_LABEL}"
        )
    raise wrong_key("passphrase")


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


def _keyring_get(store_id: str, timeout: float) -> str | None:
    try:
        return keyring_get(KEYRING_SERVICE, f"store-{store_id}", timeout)
    except KeyringTrouble as exc:
        if exc.problem.absent:
            raise KeySourceError(
                f"this store keeps its key in the OS keyring, and {exc.problem.reason}",
                fix="run wxtoken where that keyring is (the session that created the store), "
                "or start a new store (another WXTOKEN_HOME) with WXTOKEN_PASSPHRASE or "
                "WXTOKEN_KEY_FILE set and sign in again",
            ) from None
        raise KeySourceError(exc.problem.reason, fix=_UNLOCK) from None


def _keyring_set(store_id: str, value: str, timeout: float) -> None:
    try:
        keyring_set(KEYRING_SERVICE, f"store-{store_id}", value, timeout)
    except KeyringTrouble as exc:
        fix = NEW_STORE_FIX if exc.problem.absent else f"{_UNLOCK}; or {NEW_STORE_FIX}"
        raise KeySourceError(exc.problem.reason, fix=fix) from None


_UNLOCK = (
    "unlock the keyring (a desktop keyring may be waiting for its password) and run the command "
    "again; WXTOKEN_KEYRING_TIMEOUT=SECONDS allows a slow one longer"
)
