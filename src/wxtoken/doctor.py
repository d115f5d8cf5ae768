"""`wxtoken doctor`: every check an admin would otherwise make by hand, each with its fix.

Local checks first (the store, its key, the keyring, the keeper, proxy settings), then per
profile: the state of its grant, and (unless offline) whether its Webex is reachable over valid
TLS, whether Webex's clock agrees with ours, and whether the authorize endpoint accepts its
client id, redirect URI and scopes; then whether its loopback redirect port is free.

A finding is `ok`, `warning` or `problem`. The command's exit code is the worst: 0 when all is
well, 3 for a warning (as `status`), else the exit code of the worst problem, ranked so the
one to fix first decides: the store or its key (6), a grant that needs a sign-in (4), Webex
unreachable (5), a setting Webex refuses (1), a bad setting (2).
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _local, causes, oauth
from ._format import SCHEMA_VERSION
from .durations import human_left
from .errors import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_LOGIN_REQUIRED,
    EXIT_STORAGE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    WxtokenError,
    clean_server_text,
)
from .login.loopback import NO_SUCH_ADDRESS, listen_addresses
from .login.probe import PROBE_TIMEOUT, diagnose, fetch
from .network import Network
from .profile import Profile, loopback_listen_target
from .status import profile_status
from .store import TokenStore
from .store.fs import check_private
from .store.keys import KEYRING_SERVICE
from .store.oskeyring import keyring_problem
from .token import iso
from .transport.errors import CertificateRejected, ProxyFailure

if TYPE_CHECKING:
    import httpx2

OK, WARNING, PROBLEM = "ok", "warning", "problem"
CLOCK_SKEW_WARN = 60.0  # seconds: beyond this, expiry decisions and Webex's own checks disagree
FREE_SPACE_WARN = 50 * 1024 * 1024  # bytes: a refresh needs little, but SQLite's WAL needs room
# Which problem to fix first decides the exit code (see the module docstring).
_RANK = {EXIT_STORAGE: 5, EXIT_LOGIN_REQUIRED: 4, EXIT_UNAVAILABLE: 3, EXIT_ERROR: 2, EXIT_USAGE: 1}


@dataclass(frozen=True)
class Finding:
    """One check's verdict. `exit_code` is that of the error a problem stands for."""

    check: str
    level: str
    detail: str
    fix: str | None = None
    profile: str | None = None
    exit_code: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "profile": self.profile,
            "level": self.level,
            "detail": self.detail,
            "fix": self.fix,
        }


def exit_code(findings: list[Finding]) -> int:
    problems = [f.exit_code or EXIT_ERROR for f in findings if f.level == PROBLEM]
    if problems:
        return max(problems, key=lambda code: _RANK.get(code, 0))
    return EXIT_ATTENTION if any(f.level == WARNING for f in findings) else 0


def _from_error(check: str, exc: WxtokenError, profile: str | None = None) -> Finding:
    if profile is not None:
        exc.for_profile(profile)
    return Finding(check, PROBLEM, exc.message, exc.fix, profile, exc.exit_code)


# --- local checks ------------------------------------------------------------------------------


def check_store(settings: _local.Settings, store: TokenStore) -> Iterator[Finding]:
    home, db = Path(settings.home), Path(settings.db_path)
    if not db.exists():
        yield Finding(
            "store",
            WARNING,
            f"no store yet at {db}",
            "add a profile: wxtoken profile add NAME --client-id ID --redirect-uri URI "
            "--preset verint-calling",
        )
        return
    try:
        check_private(home, is_dir=True)
        check_private(db, is_dir=False)
    except WxtokenError as exc:
        yield _from_error("store", exc)
        return
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        yield Finding(
            "store", PROBLEM, f"{db} cannot be read as a store ({exc})", None, None, EXIT_STORAGE
        )
        return
    if version > SCHEMA_VERSION:
        yield Finding(
            "store",
            PROBLEM,
            f"{db} was written by a newer wxtoken (schema {version}; this one knows "
            f"{SCHEMA_VERSION})",
            "upgrade wxtoken: pip install --upgrade wxtoken",
            exit_code=EXIT_STORAGE,
        )
        return
    try:
        store.check_writable()
    except WxtokenError as exc:
        yield _from_error("store", exc)
        return
    free = shutil.disk_usage(home).free
    upgrade = "" if version == SCHEMA_VERSION else f"; schema {version} is upgraded on next use"
    detail = f"{db}: private, writable, schema {SCHEMA_VERSION}{upgrade}"
    if free < FREE_SPACE_WARN:
        yield Finding(
            "store",
            WARNING,
            f"{detail}; only {free // (1024 * 1024)} MiB free on its disk",
            f"free space on the disk holding {home}",
        )
    else:
        yield Finding("store", OK, f"{detail}; {free // (1024 * 1024)} MiB free")


def check_key(store: TokenStore) -> Iterator[Finding]:
    source = store.key_source()
    if source is None:
        return  # no store yet: the store check said so
    try:
        store.unlock()
    except WxtokenError as exc:
        yield _from_error("key", exc)
        return
    yield Finding("key", OK, f"the {source} opens the store")


def check_keyring(settings: _local.Settings, source: str | None) -> Iterator[Finding]:
    problem = keyring_problem(KEYRING_SERVICE, settings.keyring_timeout)
    if problem is None:
        yield Finding("keyring", OK, "the OS keyring answers")
        return
    # Only a store keyed by the keyring depends on it; for the others it is information.
    if source == "keyring":
        yield Finding(
            "keyring",
            PROBLEM,
            f"the store's key is in the OS keyring, which is not usable: {problem.reason}",
            "unlock or start the keyring (a desktop session, or gnome-keyring-daemon)",
            exit_code=EXIT_STORAGE,
        )
        return
    uses = f"the store uses a {source}" if source else "a new store will use a passphrase"
    yield Finding("keyring", OK, f"not needed ({uses}); the OS keyring: {problem.reason}")


def check_keeper(settings: _local.Settings) -> Iterator[Finding]:
    answer = _local.ask_keeper(settings.socket_path, {"ping": True}, timeout=2.0)
    if answer is not None and answer.get("ok") is True:
        metrics = answer.get("metrics")
        at = f"; metrics {clean_server_text(metrics, 100)}" if isinstance(metrics, str) else ""
        yield Finding("keeper", OK, f"running; token socket {settings.socket_path}{at}")
    else:
        yield Finding(
            "keeper",
            WARNING,
            "no keeper is running: nothing refreshes the grants or alerts before they lapse",
            "run `wxtoken keep --all` as a service (contrib/wxtoken-keeper.service)",
        )


# --- per profile -------------------------------------------------------------------------------


def check_grant(store: TokenStore, profile: Profile, now: float) -> Iterator[Finding]:
    st = profile_status(store, profile, now)
    name = profile.name
    if st.state == "login_required":
        described = causes.describe(st.cause, name)
        yield Finding(
            "grant",
            PROBLEM,
            st.reason or "the grant needs a new sign-in",
            described[1] if described else f"wxtoken login -p {name}",
            name,
            EXIT_LOGIN_REQUIRED,
        )
        return
    refreshed = (
        f"last refresh {iso(st.last_success_at)}" if st.last_success_at else "never refreshed"
    )
    probed = (
        f"last probe {human_left(now - st.probe.at)} ago: {st.probe.verdict}"
        if st.probe
        else "never probed"
    )
    detail = f"{refreshed}; {probed}; recorder copy {st.copy.state}"
    if st.state == "warning":
        yield Finding(
            "grant", WARNING, f"{st.reason}; {detail}", _warning_fix(st.copy.state, name), name
        )
    else:
        yield Finding("grant", OK, detail, profile=name)


def _warning_fix(copy_state: str, name: str) -> str:
    if copy_state == "stale":
        return f"hand the current token to the recorder: wxtoken export -p {name}"
    return f"wxtoken status -p {name} says why; a new sign-in renews it: wxtoken login -p {name}"


def check_webex(
    profile: Profile,
    *,
    transport: httpx2.BaseTransport | None,
    clock: Callable[[], float],
    timeout: float = PROBE_TIMEOUT,
    settings: _local.Settings | None = None,
) -> Iterator[Finding]:
    """Reachability and TLS, the clock, and the authorize endpoint's verdict, from one GET of
    the authorize URL (no cookies, no redirects followed: nothing signs in)."""
    name = profile.name
    request = oauth.prepare_authorization_request(
        profile.base_url, profile.client_id, profile.redirect_uri, profile.scopes
    )
    before = clock()
    try:
        answer = fetch(
            request.url,
            profile.base_url,
            transport,
            timeout,
            Network.of(settings or _local.Settings(), profile),
        )
    except Exception as exc:  # every way of not reaching Webex is this one finding
        yield Finding(
            "webex",
            PROBLEM,
            f"cannot reach {profile.base_url}: {_reason(exc)}",
            "check the network, DNS, proxy (HTTPS_PROXY) and the profile's base URL "
            f"(wxtoken profile show {name})",
            name,
            EXIT_UNAVAILABLE,
        )
        return
    took = clock() - before
    yield Finding("webex", OK, f"{profile.base_url} answered in {took:.1f} s", profile=name)
    yield from _clock_finding(answer.headers.get("date"), before, took, name)
    problem = diagnose(answer, profile, request.state)
    if problem is None:
        yield Finding(
            "authorize",
            OK,
            "the authorize endpoint accepts the client id, redirect URI and scopes",
            profile=name,
        )
    else:
        yield _from_error("authorize", problem, name)


def _reason(exc: Exception) -> str:
    import ssl

    if isinstance(exc, CertificateRejected):
        seen = f"issued by {exc.issuer!r}" if exc.issuer else "issuer unreadable"
        return f"its TLS certificate is not valid here ({exc.reason}; {seen})"
    if isinstance(exc, ProxyFailure):
        return str(exc)  # our own words: the proxy as http://host:port, never a credential
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not valid here ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason})"
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


def _clock_finding(date: str | None, sent: float, took: float, name: str) -> Iterator[Finding]:
    if not date:
        return
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return
    # Date has whole seconds and was stamped somewhere during the exchange.
    offset = theirs - (sent + took / 2)
    if abs(offset) <= CLOCK_SKEW_WARN + took / 2 + 1:
        yield Finding("clock", OK, f"agrees with Webex's within {abs(offset):.0f} s", profile=name)
        return
    ahead = "behind" if offset > 0 else "ahead of"
    yield Finding(
        "clock",
        WARNING,
        f"this machine's clock is {abs(offset):.0f} s {ahead} Webex's: expiry decisions are off "
        "by as much",
        "synchronise the clock (timedatectl set-ntp true, or chronyc makestep)",
        name,
    )


def check_redirect_port(profile: Profile) -> Iterator[Finding]:
    target = loopback_listen_target(profile.redirect_uri)
    if target is None:
        return  # a pasted redirect: nothing listens here
    port = target[0]
    hosts = listen_addresses(profile.redirect_uri)
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # As the sign-in's listener binds: a port left in TIME_WAIT by the last sign-in is
            # free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if host != hosts[0] and exc.errno in NO_SUCH_ADDRESS:
                    continue  # no IPv6 here: the listener does without it too
                from .login.portowner import holder

                who = holder(host, port)
                by = f" ({who.describe()})" if who is not None else ""
                yield Finding(
                    "redirect_port",
                    WARNING,
                    f"port {port} of the redirect URI is in use{by}: `wxtoken login` could "
                    "not listen for the redirect",
                    f"stop what holds it, or register another port and: wxtoken profile set "
                    f"{profile.name} --redirect-uri http://127.0.0.1:PORT/callback",
                    profile.name,
                )
                return
    yield Finding("redirect_port", OK, f"port {port} is free for the sign-in", profile=profile.name)


def run(
    settings: _local.Settings,
    store: TokenStore,
    names: list[str] | None,
    *,
    offline: bool,
    transport: httpx2.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    env: dict[str, str] | None = None,
) -> list[Finding]:
    """Every check, in the order to fix what they find; `names`: these profiles, else all."""
    from .doctor_network import check_environment, check_profile_network
    from .doctor_store import check_shared_store

    shared = settings.store_url is not None  # PostgreSQL: no file to look at
    findings = list((check_shared_store if shared else check_store)(settings, store))
    # A store that cannot be used safely is not read further: its key, profiles and grants
    # wait until the store's own finding is fixed.
    usable = all(f.level != PROBLEM for f in findings)
    if usable:
        findings += check_key(store)
    findings += check_keyring(settings, store.key_source() if usable else None)
    findings += check_keeper(settings)
    findings += check_environment(settings if env is None else _local.Settings(env))
    if not usable:
        return findings
    now = clock()
    try:
        profiles = [store.get_profile(n) for n in names] if names else store.list_profiles()
        for p in profiles:
            findings += check_grant(store, p, now)
            findings += check_profile_network(settings, p)
            if not offline:
                findings += check_webex(p, transport=transport, clock=clock, settings=settings)
            findings += check_redirect_port(p)
    except WxtokenError as exc:
        findings.append(_from_error("profiles", exc))
    return findings
