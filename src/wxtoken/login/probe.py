"""Asking Webex, before the browser opens, whether it would start this sign-in at all.

For a redirect URI that is not registered, or a client id it does not know, Webex shows its
error in the browser and never redirects: the listener would wait its whole timeout and then
blame the network. One GET of the authorize URL, without cookies and without following
redirects, settles it within seconds: a 4xx naming the redirect URI, the client id or the scopes
is the diagnosis, and so is a redirect back to the redirect URI carrying an error (Webex's
answer before anyone signed in). Anything else (a sign-in or consent page, a redirect to one,
another status, network trouble) lets the login go on: the browser will show what it shows.

The check uses its own state and PKCE verifier, so nothing it receives can ever be taken for
the real sign-in's answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .. import oauth, oauth_errors
from .._version import __version__
from ..errors import (
    InvalidClient,
    InvalidScope,
    OAuthError,
    RedirectUriRejected,
    StateMismatch,
    WxtokenError,
    clean_server_text,
)
from ..profile import Profile

if TYPE_CHECKING:
    import httpx2

    from ..network import Network

PROBE_TIMEOUT = 5.0  # seconds for the whole exchange; a slower Webex is left to the browser
_MAX_BODY = 64 * 1024  # an error page is small; the diagnosis needs only its words
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Answer:
    """What the authorize endpoint said to a request with no session."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


def check_authorize(
    profile: Profile,
    *,
    transport: httpx2.BaseTransport | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> None:
    """Raise the diagnosis if Webex refuses to start a sign-in for this profile."""
    request = oauth.prepare_authorization_request(
        profile.base_url, profile.client_id, profile.redirect_uri, profile.scopes
    )
    from .._local import Settings
    from ..network import Network

    answer = ask(request.url, profile.base_url, transport, timeout, Network.of(Settings(), profile))
    if answer is not None:
        problem = diagnose(answer, profile, request.state)
        if problem is not None:
            raise problem


def ask(
    url: str,
    base_url: str,
    transport: httpx2.BaseTransport | None,
    timeout: float,
    network: Network | None = None,
) -> Answer | None:
    """GET `url` once (no cookies, no redirects followed); None on any network trouble."""
    try:
        return fetch(url, base_url, transport, timeout, network)
    except Exception:  # the check only ever helps: trouble here is the browser's to show
        return None


def fetch(
    url: str,
    base_url: str,
    transport: httpx2.BaseTransport | None,
    timeout: float,
    network: Network | None = None,
) -> Answer:
    """GET `url` once (no cookies, no redirects followed); network trouble raises (`doctor`
    reports why)."""
    import httpx2

    from .._local import Settings
    from ..network import Network
    from ..transport import DEADLINE_EXTENSION

    own = transport is None
    net = network if network is not None else Network.of(Settings())
    sender = transport or net.transport(
        connect_timeout=timeout, read_timeout=timeout, deadline=timeout
    )
    request = httpx2.Request(
        "GET",
        url,
        headers={"User-Agent": f"wxtoken/{__version__}", "Accept": "text/html,application/json"},
        extensions={
            "timeout": {"connect": timeout, "read": timeout, "write": timeout},
            DEADLINE_EXTENSION: time.monotonic() + timeout,
        },
    )
    try:
        response = sender.handle_request(request)
        try:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= _MAX_BODY:
                    break
            headers = {k.lower(): v for k, v in response.headers.items()}
            return Answer(response.status_code, headers, body[:_MAX_BODY])
        finally:
            response.close()
    finally:
        if own:
            sender.close()


def diagnose(answer: Answer, profile: Profile, state: str) -> WxtokenError | None:
    """The problem Webex named for this profile, or None when the sign-in can go ahead."""
    if 400 <= answer.status < 500:
        info = oauth_errors.read_error(answer.status, answer.body, answer.headers)
        detail = info.message
        if not answer.body.lstrip().startswith(b"{"):  # an HTML page: its words, not its markup
            page = _TAG.sub(" ", answer.body.decode("utf-8", "replace"))
            detail = clean_server_text(page, 200) or detail
        return _named(
            f"{detail} {info.code or ''}",
            f"HTTP {answer.status}: {detail}",
            profile,
            tracking_id=info.tracking_id,
            error=info.code,
            status=answer.status,
        )
    location = answer.headers.get("location")
    if 300 <= answer.status < 400 and location:
        return _error_redirect(location, profile, state)
    return None


def _named(said: str, where: str, profile: Profile, **meta: Any) -> WxtokenError | None:
    """The error for a refusal whose words name the redirect URI, the scopes or the client."""
    said = said.lower()
    change = f"`wxtoken profile set {profile.name}"
    kind: type[OAuthError]
    if "redirect" in said:
        kind = RedirectUriRejected
        message = (
            f"Webex will not start a sign-in for the redirect URI {profile.redirect_uri}: it "
            f"is not registered on the integration ({where})"
        )
        fix = (
            "register exactly that URI on the integration at developer.webex.com (scheme, "
            f"host, port and path must match), or change the profile's: {change} "
            "--redirect-uri URI`"
        )
    elif "scope" in said:
        kind = InvalidScope
        scopes = " ".join(profile.scopes)
        message = f"Webex will not start a sign-in for the scopes {scopes} ({where})"
        fix = (
            "register those scopes on the integration at developer.webex.com, or change the "
            f"profile's: {change} --preset verint-calling` (or --scopes)"
        )
    elif "client" in said:
        kind = InvalidClient
        message = f"Webex does not know the client id {profile.client_id} ({where})"
        fix = (
            "copy the Client ID from the integration's page at developer.webex.com into the "
            f"profile: `wxtoken profile add {profile.name} --replace --client-id <Client ID> "
            f"--redirect-uri {profile.redirect_uri} --scopes '{' '.join(profile.scopes)}' "
            f"--base-url {profile.base_url}`"
        )
    else:
        return None
    return kind(message, fix=fix, **meta)


def _error_redirect(location: str, profile: Profile, state: str) -> WxtokenError | None:
    """An error sent back to the redirect URI before anyone signed in (e.g. invalid_scope)."""
    try:
        got, want = urlsplit(location), urlsplit(profile.redirect_uri)
        same_place = (got.scheme, got.hostname, got.port, got.path) == (
            want.scheme,
            want.hostname,
            want.port,
            want.path,
        )
    except ValueError:
        return None
    if not same_place or "error=" not in got.query:
        return None  # a sign-in or consent page, or (a session we did not send) a code
    try:
        oauth.parse_authorization_response(got.query, state)
    except StateMismatch:
        return None  # not an answer to the check's own request
    except WxtokenError as exc:
        if isinstance(exc, InvalidScope):
            said = parse_qs(got.query).get("error_description", [""])[0]
            detail = f"invalid_scope: {clean_server_text(said, 160)}" if said else "invalid_scope"
            return _named("scope", detail, profile, error="invalid_scope")
        return exc  # e.g. access_denied: an administrator blocked the integration
    return None
