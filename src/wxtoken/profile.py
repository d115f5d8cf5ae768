"""Profile: which integration, which scopes, which Webex. Pure validation, no I/O.

A profile holds no secret itself; the client secret lives encrypted in the store next to it.
Its `kind` says how tokens are obtained ("integration": a person signs in; "service-app": a
machine account authorized by an admin), and `extra` holds settings only one kind has.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from .errors import UsageError

DEFAULT_BASE_URL = "https://webexapis.com"
KIND_INTEGRATION = "integration"
KIND_SERVICE_APP = "service-app"
KINDS = (KIND_INTEGRATION, KIND_SERVICE_APP)

# Scope presets: one row per recorder or job. The verint-calling row is the scope string of the
# manual procedure this tool replaces (Verint's "Create Webex security tokens for Cisco Webex
# Calling").
SCOPE_PRESETS: dict[str, tuple[str, ...]] = {
    "verint-calling": (
        "spark:kms",
        "spark:people_read",
        "identity:tokens_write",
        "identity:tokens_read",
        "spark-compliance:recordings_read",
    ),
    "calling-admin-recordings": (
        "spark:kms",
        "spark:people_read",
        "spark-admin:recordings_read",
        "identity:tokens_read",
        "identity:tokens_write",
    ),
}

# Every check is a full match: `$` alone would also accept a trailing newline, which splits log
# lines and alert texts.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SCOPE_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")
# Webex client ids are "C" and 64 hex digits; other shapes are allowed (an emulator, a future
# format) but nothing that could not be one. A client secret (64 hex digits, no "C") pasted in
# its place would otherwise be stored in plaintext and shown by `profile show`.
_CLIENT_ID_RE = re.compile(r"C[A-Za-z0-9_-]{1,255}")
_SECRET_LIKE = re.compile(r"[0-9a-f]{64}")  # the shape of a Webex client secret


@dataclass(frozen=True)
class Profile:
    """One integration (or service app) at one Webex, with the scopes it asks for."""

    name: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    base_url: str = DEFAULT_BASE_URL
    kind: str = KIND_INTEGRATION
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/v1/access_token"


def keeps_tokens(old: Profile, new: Profile) -> bool:
    """Whether tokens stored for `old` still belong to `new` after an update.

    Tokens belong to one client: with a new client id or kind they would be presented as
    another integration's, so they are dropped (the grant stays at Webex; `wxtoken revoke` can
    end it there before the update). A new base URL keeps them: the same Webex can move (a
    proxy, an emulator restarted on another port), and the secret goes there anyway.
    """
    return (old.client_id, old.kind) == (new.client_id, new.kind)


def make_profile(
    name: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: str | Sequence[str] | None = None,
    preset: str | None = None,
    base_url: str | None = None,
    kind: str = KIND_INTEGRATION,
    extra: Mapping[str, str] | None = None,
) -> Profile:
    """A validated Profile: the one set of rules the CLI and the library both apply.

    Exactly one of `scopes` (a space- or comma-separated string, or a sequence) and `preset`.
    """
    if (scopes is None) == (preset is None):
        raise UsageError(
            "give exactly one of scopes or a preset", fix="e.g. --preset verint-calling"
        )
    if preset is not None:
        chosen = preset_scopes(preset)
    else:
        chosen = parse_scopes(scopes if isinstance(scopes, str) else " ".join(scopes or ()))
    if kind not in KINDS:
        raise UsageError(f"unknown profile kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
    if kind == KIND_SERVICE_APP:
        # A service app is never redirected to: it is minted, so its redirect URI stays empty.
        if redirect_uri:
            raise UsageError(
                "a service app has no redirect URI (its tokens are minted, not signed in for)",
                fix="drop --redirect-uri",
            )
    else:
        redirect_uri = validate_redirect_uri(redirect_uri)
    return Profile(
        name=validate_name(name),
        client_id=validate_client_id(client_id),
        redirect_uri=redirect_uri,
        scopes=chosen,
        base_url=validate_base_url(base_url or DEFAULT_BASE_URL),
        kind=kind,
        extra=dict(extra or {}),
    )


def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise UsageError(
            f"profile name {name!r} is not allowed (letters, digits, '.', '_', '-'; max 64)",
            fix="pick a name such as `recorder` or `verint-prod`",
        )
    return name


def validate_client_id(client_id: str) -> str:
    client_id = client_id.strip()
    if _SECRET_LIKE.fullmatch(client_id):
        raise UsageError(
            "that looks like a client secret, not a client id (client ids start with C); it was "
            "not stored",
            fix="copy the Client ID from the integration's page at developer.webex.com; give the "
            "secret with --client-secret-stdin or at the prompt",
        )
    if not _CLIENT_ID_RE.fullmatch(client_id):
        raise UsageError(
            "the client id is not one Webex issues (C followed by letters and digits)",
            fix="copy the Client ID from the integration's page at developer.webex.com",
        )
    return client_id


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(text.replace(",", " ").split()))
    if not scopes:
        raise UsageError("no scopes given", fix='pass --scopes "a b c" or --preset NAME')
    bad = [s for s in scopes if not _SCOPE_RE.fullmatch(s)]
    if bad:
        raise UsageError(
            f"scope {bad[0]!r} has characters no Webex scope has",
            fix='separate scopes with spaces, e.g. --scopes "spark:kms spark:people_read"',
        )
    return scopes


def preset_scopes(name: str) -> tuple[str, ...]:
    try:
        return SCOPE_PRESETS[name]
    except KeyError:
        raise UsageError(
            f"unknown scope preset {name!r}",
            fix=f"use one of: {', '.join(sorted(SCOPE_PRESETS))}",
        ) from None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_url(url: str, what: str, example: str) -> tuple[SplitResult, int | None]:
    """A URL split into parts, its port checked; refused with one line (that never repeats a
    password in it) when it is not a usable http(s) URL."""
    url = url.strip()
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else "the value given"
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UsageError(f"the {what} contains spaces or control characters", fix=f"use {example}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the {what} ({shown}) is not an http(s) URL", fix=f"use {example}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise UsageError(f"the {what} ({shown}) has a port outside 1-65535", fix=f"use {example}")
    return parts, port


def validate_base_url(url: str) -> str:
    """https anywhere; plain http only to a loopback host (the bundled emulator)."""
    example = f"{DEFAULT_BASE_URL} (omit --base-url for real Webex)"
    parts, _ = _split_url(url, "base URL", example)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise UsageError(
            f"the base URL http://{parts.hostname} uses plain http to a non-loopback host; "
            "tokens and the client secret would cross the network unencrypted",
            fix="use https, or http://127.0.0.1:PORT for the local emulator",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(
            "the base URL must not carry credentials, a query or a fragment",
            fix=f"use a plain origin such as {DEFAULT_BASE_URL}",
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def validate_redirect_uri(uri: str) -> str:
    example = "the redirect URI registered on the integration, e.g. http://127.0.0.1:8765/callback"
    parts, _ = _split_url(uri, "redirect URI", example)
    if parts.fragment:
        raise UsageError(
            "a redirect URI must not contain a fragment (RFC 6749 §3.1.2)",
            fix="remove the '#...' part",
        )
    if parts.username or parts.password:
        raise UsageError("a redirect URI must not carry credentials", fix=f"use {example}")
    return uri.strip()


def loopback_listen_target(redirect_uri: str) -> tuple[int, str] | None:
    """(port, path) when wxtoken can catch the redirect itself, else None (paste mode).

    Only http://localhost:PORT/... and http://127.0.0.1:PORT/... qualify. The listener binds IP
    literals, never the name (RFC 8252 §8.3): 127.0.0.1, and for `localhost` also [::1], since
    browsers may try either (`login.loopback.listen_addresses`).
    """
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or (parts.hostname or "").lower() not in ("localhost", "127.0.0.1"):
        return None
    try:
        port = parts.port or 80
    except ValueError:  # a profile stored before ports were checked
        raise UsageError(
            "the profile's redirect URI has a port outside 1-65535",
            fix="wxtoken profile set {profile} --redirect-uri http://127.0.0.1:8765/callback "
            "(and register that URI on the integration)",
        ) from None
    return port, parts.path or "/"
