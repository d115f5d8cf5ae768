"""The hot path of `wxtoken token`: argv -> local settings -> stdout, in ~3x interpreter start.

Scripts call `wxtoken token` before every API request, so it must cost little more than Python
starting; click, dataclasses and typing alone cost more than that. So this module answers the
common cases with the standard library only:

1. a keeper runs: ask it on its socket (no key needed at all);
2. a key-file store holds a token with at least --min-valid seconds left: decrypt and print it.

Anything else (no token, a stale one, another key source, unsafe permissions, odd arguments, any
error at all) returns None and the full CLI handles it with its refresh logic and its one-line
errors. Paths and settings come from `_local`, the format from `_format`: the same definitions
the rest of wxtoken uses, so the two paths cannot disagree.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

from . import _format as fmt
from . import _local


def _args(argv: list[str], env: Mapping[str, str]) -> tuple[str | None, int] | None:
    """(profile, min_valid) for `token [-p NAME] [--min-valid S]`, None for anything else."""
    if not argv or argv[0] != "token" or env.get(_local.ENV_DEBUG):
        return None  # anything else, or a debug log asked for: the full CLI
    profile = env.get(_local.ENV_PROFILE) or None
    min_valid = _local.DEFAULT_MIN_VALID
    rest = argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=")
        if name in ("-p", "--profile", "--min-valid") and not eq:
            if i + 1 >= len(rest):
                return None
            value = rest[i + 1]
            i += 2
        elif name in ("--profile", "--min-valid") and eq:
            i += 1
        elif arg.startswith("-p") and len(arg) > 2:
            name, value = "-p", arg[2:]
            i += 1
        else:
            return None
        if name == "--min-valid":
            if not value.isdigit() or int(value) > _local.MAX_MIN_VALID:
                return None
            min_valid = int(value)
        else:
            profile = value
    return profile, min_valid


def _private(path: str, st: os.stat_result, *, is_dir: bool) -> bool:
    return bool(path) and _local.private_problem(st, is_dir=is_dir) is None


def _token(profile: str | None, min_valid: int, settings: _local.Settings) -> str | None:
    """The stored access token if a key-file store holds a fresh one, else None."""
    if settings.key_file is None or settings.passphrase or settings.store_url:
        return None  # another key source, or a shared store: the full CLI reads it
    if not _private(settings.home, os.lstat(settings.home), is_dir=True):
        return None
    if not _private(settings.db_path, os.lstat(settings.db_path), is_dir=False):
        return None
    row = _local.read_token_row(settings.db_path, profile, fmt.SCHEMA_VERSION)
    if row is None:
        return None
    name, sealed, expires_at, status, source = row
    if source != "keyfile" or status != "ok" or expires_at - time.time() < min_valid:
        return None
    _local.forbid_core_dumps(prctl=False)  # the key and a token are about to be in memory
    fd = os.open(settings.key_file, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not _private(settings.key_file, os.fstat(fd), is_dir=False):
            return None
        key = fmt.decode_keyfile(os.read(fd, 4096))
    finally:
        os.close(fd)
    parts = fmt.split_sealed(sealed)
    if key is None or parts is None:
        return None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ad = fmt.ad(name, "access_token", fmt.exp(expires_at)).encode()
    return AESGCM(key).decrypt(parts[0], parts[1], ad).decode("utf-8")


TOKEN_FORMATS = ("bare", "header", "json")


def token_output(token: str, expires_at: float, shape: str, profile: str | None) -> str:
    """The token as `wxtoken token --format` prints it: bare, as an HTTP header line, or JSON
    with its expiry (the same for an answer from the keeper and from the store)."""
    if shape == "header":
        return f"Authorization: Bearer {token}"
    if shape == "json":
        import json
        from datetime import UTC, datetime

        at = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
        body = {
            "profile": profile,
            "access_token": token,
            "token_type": "Bearer",
            "expires_at": at,
            "expires_in": max(0, int(expires_at - time.time())),
        }
        return json.dumps(body)
    return token


def ask_keeper_line(
    profile: str | None, min_valid: int, settings: _local.Settings, shape: str = "bare"
) -> int | None:
    """Ask a running keeper; print its answer and return the exit code.

    None when no keeper of ours listens, or it does not manage the profile (exit 2): then the
    store is read directly.
    """
    answer = _local.ask_keeper(
        settings.socket_path,
        {"profile": profile, "min_valid": min_valid},
        timeout=settings.timeouts.keeper_answer,
    )
    if answer is None:
        return None
    token = answer.get("access_token")
    if answer.get("ok") is True and isinstance(token, str):
        expires = answer.get("access_expires_at")
        left = (float(expires) if isinstance(expires, int | float) else 0.0) - time.time()
        if left < min_valid:
            from .durations import human_left  # rare: not on the hot path's import bill

            sys.stderr.write(
                f"wxtoken: warning: the access token has only {human_left(left)} left, "
                f"less than --min-valid {human_left(min_valid)}, even after a refresh\n"
            )
        exp = float(expires) if isinstance(expires, int | float) else time.time()
        named = answer.get("profile")
        sys.stdout.write(
            token_output(token, exp, shape, named if isinstance(named, str) else profile) + "\n"
        )
        sys.stdout.flush()
        return 0
    code = answer.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool) or code == 2:
        return None
    sys.stderr.write(f"wxtoken: error: {answer.get('error', 'the keeper refused')}\n")
    return code


def run(argv: list[str]) -> int | None:
    """Print the token and return 0, or return None to let the full CLI decide."""
    parsed = _args(argv, os.environ)
    if parsed is None:
        return None
    try:
        settings = _local.Settings()
    except _local.SettingError:
        return None  # the full CLI reports the bad variable properly
    try:
        answered = ask_keeper_line(parsed[0], parsed[1], settings)
    except BrokenPipeError:
        return 1
    if answered is not None:
        return answered
    try:
        token = _token(parsed[0], parsed[1], settings)
    except Exception:  # any surprise: the full path re-does it all and reports it properly
        return None
    if token is None:
        return None
    try:
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return 1
    return 0
