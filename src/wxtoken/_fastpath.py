"""The hot path of `wxtoken token`: print a valid stored access token in ~3x interpreter start.

Scripts call `wxtoken token` before every API request, so it must cost little more than Python
starting. Click, dataclasses and typing alone cost more than the whole budget, so this module
answers the common case with only sqlite3 and AES-GCM: a key-file store, a token with at least
--min-valid seconds left, safe permissions. Anything else (no token, stale token, another key
source, unsafe permissions, odd arguments, any error at all) returns None and the full CLI
handles it, with its refresh logic and its one-line errors. The store format comes from
`_format`, shared with the store, so the two readers cannot drift.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import time

from . import _format as fmt

DEFAULT_MIN_VALID = 300  # the same default as token.DEFAULT_MIN_VALID (checked by a test)


def _args(argv: list[str], env: dict[str, str] | os._Environ[str]) -> tuple[str | None, int] | None:
    if not argv or argv[0] != "token":
        return None
    profile = env.get("WXTOKEN_PROFILE") or None
    min_valid = DEFAULT_MIN_VALID
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
            if not value.isdigit() or int(value) > 10**8:
                return None
            min_valid = int(value)
        else:
            profile = value
    return profile, min_valid


def _private(path: str, st: os.stat_result) -> bool:
    return (
        not stat.S_ISLNK(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & 0o077
        and bool(path)
    )


def _token(
    profile: str | None, min_valid: int, env: dict[str, str] | os._Environ[str]
) -> str | None:
    home = env.get("WXTOKEN_HOME")
    keyfile = env.get("WXTOKEN_KEY_FILE")
    if not home or not keyfile or env.get("WXTOKEN_PASSPHRASE"):
        return None
    home = os.path.abspath(os.path.expanduser(home))
    db = os.path.join(home, fmt.DB_NAME)
    if not _private(home, os.lstat(home)) or not _private(db, os.lstat(db)):
        return None
    conn = sqlite3.connect(db, timeout=2.0, isolation_level=None)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != fmt.SCHEMA_VERSION:
            return None
        source = conn.execute("SELECT value FROM meta WHERE key = 'key_source'").fetchone()
        if source is None or source[0] != "keyfile":
            return None
        if profile is None:
            names = conn.execute("SELECT name FROM profiles LIMIT 2").fetchall()
            if len(names) != 1:
                return None
            profile = names[0][0]
        row = conn.execute(
            "SELECT access_token, access_expires_at, status FROM tokens WHERE profile = ?",
            (profile,),
        ).fetchone()
    finally:
        conn.close()
    if row is None or row[2] != "ok" or row[1] - time.time() < min_valid:
        return None
    fd = os.open(os.path.abspath(os.path.expanduser(keyfile)), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not _private(keyfile, os.fstat(fd)):
            return None
        key = fmt.decode_keyfile(os.read(fd, 4096))
    finally:
        os.close(fd)
    parts = fmt.split_sealed(row[0])
    if key is None or parts is None:
        return None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ad = fmt.ad(profile, "access_token", fmt.exp(row[1])).encode()
    return AESGCM(key).decrypt(parts[0], parts[1], ad).decode("utf-8")


def _socket_path(env: dict[str, str] | os._Environ[str]) -> str | None:
    explicit = env.get("WXTOKEN_SOCKET")
    if explicit:
        return explicit
    home = env.get("WXTOKEN_HOME")
    if not home:
        return None
    return os.path.join(os.path.abspath(os.path.expanduser(home)), "keeper.sock")


def ask_keeper_line(
    profile: str | None, min_valid: int, env: dict[str, str] | os._Environ[str]
) -> int | None:
    """Ask a running keeper over its socket; print its answer and return the exit code.

    None when no keeper of ours listens there, or it does not manage the profile (exit 2):
    then the store is read directly.
    """
    path = _socket_path(env)
    if path is None:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        return None
    import json
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(70.0)  # the keeper may be refreshing: bounded by its own retry budget
            s.connect(path)
            s.sendall(json.dumps({"profile": profile, "min_valid": min_valid}).encode() + b"\n")
            data = b"".join(iter(lambda: s.recv(65536), b""))
        answer = json.loads(data)
    except (OSError, ValueError):
        return None
    if not isinstance(answer, dict):
        return None
    if answer.get("ok") is True and isinstance(answer.get("access_token"), str):
        left = float(answer.get("access_expires_at", 0)) - time.time()
        if left < min_valid:
            sys.stderr.write(
                f"wxtoken: warning: the access token has only {int(left)} s left, "
                f"less than --min-valid {min_valid}, even after a refresh\n"
            )
        sys.stdout.write(answer["access_token"] + "\n")
        sys.stdout.flush()
        return 0
    code = answer.get("exit_code")
    if not isinstance(code, int) or code == 2:
        return None
    sys.stderr.write(f"wxtoken: error: {answer.get('error', 'the keeper refused')}\n")
    return code


def run(argv: list[str]) -> int | None:
    """Print the token and return 0, or return None to let the full CLI decide."""
    parsed = _args(argv, os.environ)
    if parsed is None:
        return None
    try:
        answered = ask_keeper_line(parsed[0], parsed[1], os.environ)
    except BrokenPipeError:
        return 1
    if answered is not None:
        return answered
    try:
        token = _token(parsed[0], parsed[1], os.environ)
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
