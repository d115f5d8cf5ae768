"""The Webex OAuth 2.0 protocol as pure functions: no sockets, no clock, no storage.

Named after the steps RFC 6749/7636 name (authorize URL, token request, token response), in
the manner of Authlib's `rfc6749/parameters.py`. Error answers are read in `oauth_errors`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .errors import (
    ConsentDenied,
    InvalidScope,
    MalformedResponse,
    OAuthError,
    StateMismatch,
    clean_server_text,
)
from .oauth_errors import OAUTH_ERROR_CODES

_PKCE_ALPHABET = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")

MAX_BODY = 1024 * 1024  # golang/oauth2 caps token responses at 1 MiB; nothing legitimate is larger


def new_state() -> str:
    """256 bits from the OS CSPRNG, URL-safe (RFC 6749 §10.10 asks for ≥128)."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """43 characters of the unreserved alphabet: 32 random octets, base64url (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_code_verifier(verifier: str) -> bool:
    return bool(_PKCE_ALPHABET.fullmatch(verifier))  # `$` in match would allow a newline


@dataclass(frozen=True)
class AuthorizationRequest:
    """One login attempt: the URL to open and the secrets that bind the callback to it."""

    url: str = field(repr=False)  # carries the state; printed only where the user needs it
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str


def prepare_authorization_request(
    base_url: str, client_id: str, redirect_uri: str, scopes: tuple[str, ...]
) -> AuthorizationRequest:
    state = new_state()
    verifier = new_code_verifier()
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return AuthorizationRequest(
        url=f"{base_url.rstrip('/')}/v1/authorize?{query}",
        state=state,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
    )


def prepare_code_token_request(
    client_id: str, client_secret: str, code: str, redirect_uri: str, code_verifier: str | None
) -> dict[str, str]:
    """The manual procedure's curl step: form fields for grant_type=authorization_code."""
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "redirect_uri": redirect_uri,
    }
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    return form


def prepare_refresh_token_request(
    client_id: str, client_secret: str, refresh_token: str
) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }


# --- callbacks ---------------------------------------------------------------------------------


def parse_authorization_response(query: str, expected_state: str | None) -> str:
    """Return the code from a callback query string, or raise.

    With `expected_state`, the callback must carry it exactly once (compared in constant time),
    and an error redirect is reported only when its state matches (otherwise anyone could end
    our login with a fake "denied"). None means there is nothing to check against: only
    `wxtoken exchange`, for a code obtained outside any attempt of ours, passes None.
    """
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except ValueError:
        raise StateMismatch(
            "the callback has too many parameters to be Webex's",
            fix="run `wxtoken login -p {profile}` again and finish it in the browser it opens",
        ) from None
    states = params.get("state", [])
    if expected_state is not None and (
        len(states) != 1
        or not hmac.compare_digest(
            states[0].encode("utf-8", "replace"), expected_state.encode("ascii")
        )
    ):
        raise StateMismatch(
            "the callback's state does not match this login attempt (a stale tab, "
            "a second login, or a forged link)",
            fix="run `wxtoken login -p {profile}` again and finish it in the browser it opens",
        )
    errors = params.get("error", [])
    if errors:
        code = clean_server_text(errors[0], 60)
        desc = clean_server_text(params.get("error_description", [""])[0], 160)
        detail = f"{code}: {desc}" if desc else code
        if code in ("access_denied", "login_required"):
            raise ConsentDenied(
                f"sign-in did not complete ({detail}); the user or an administrator declined "
                "the integration",
                fix="run `wxtoken login -p {profile}` again and press Accept, or ask a Control Hub "
                "administrator to allow the integration",
            )
        if code == "invalid_scope":
            raise InvalidScope(
                f"Webex rejected the requested scopes ({detail})",
                fix="register those scopes on the integration, or fix them with "
                "`wxtoken profile set {profile} --preset verint-calling` (or --scopes)",
            )
        raise OAuthError(
            f"Webex returned an error instead of a code ({detail})",
            fix="check the integration's settings and run `wxtoken login -p {profile}` again",
        )
    codes = params.get("code", [])
    if len(codes) != 1 or not codes[0]:
        raise OAuthError(
            "the callback carries no single authorization code",
            fix="run `wxtoken login -p {profile}` again; paste the whole address from the browser",
        )
    return codes[0]


_BARE_CODE = re.compile(r"[A-Za-z0-9._~\-]+")
_PASTE_AGAIN = (
    "run `wxtoken login -p {profile} --paste` again and paste the whole address the browser "
    "shows after that sign-in"
)


def _require_pasted_state(query: str) -> None:
    """Refuse a pasted address without state. Webex echoes the state on every answer, errors
    included: an address without one is not the answer to this attempt, however it got onto the
    clipboard. (Too many parameters is left to `parse_authorization_response` to report.)"""
    try:
        params = parse_qs(query, keep_blank_values=True, max_num_fields=100)
    except ValueError:
        return
    if "state" in params:
        return
    errors = params.get("error", [])
    says = f" (it reports {clean_server_text(errors[0], 60)})" if errors else ""
    raise StateMismatch(
        f"the pasted address has no state, so it is not the answer to this sign-in{says}",
        fix=_PASTE_AGAIN,
    )


def parse_pasted(text: str, redirect_uri: str, expected_state: str | None) -> str:
    """The code from a pasted redirect URL, checked against the redirect URI and the state.

    In `wxtoken login --paste` (`expected_state` given) the address must carry this attempt's
    state: an address or bare code without one could be anyone's, and redeeming an attacker's
    code would bind the profile to the attacker's account (login CSRF). Only `wxtoken exchange`
    (`expected_state` None) takes a bare code or an address without state.
    """
    text = text.strip()
    if not text:
        raise OAuthError(
            "nothing was pasted",
            fix="run `wxtoken login -p {profile} --paste` again and paste the address",
        )
    if "://" not in text and "?" not in text and "=" not in text:
        if not _BARE_CODE.fullmatch(text):
            raise OAuthError(
                "the pasted text is neither a redirect URL nor an authorization code",
                fix="copy the whole address from the browser's address bar",
            )
        if expected_state is not None:
            raise StateMismatch(
                "a bare code carries no state, so nothing shows it came from this sign-in",
                fix=f"{_PASTE_AGAIN}; to redeem a code you obtained yourself, use "
                "`wxtoken exchange --code -` (it checks no state)",
            )
        return text
    got = urlsplit(text)
    want = urlsplit(redirect_uri)
    try:
        where = (got.scheme.lower(), (got.hostname or "").lower(), got.port, got.path.rstrip("/"))
    except ValueError:  # a port that is not a number, an unclosed [IPv6 literal
        raise OAuthError(
            "the pasted text is not a valid address",
            fix="copy the whole address from the browser's address bar",
        ) from None
    if where != (
        want.scheme.lower(),
        (want.hostname or "").lower(),
        want.port,
        want.path.rstrip("/"),
    ):
        raise StateMismatch(
            "the pasted address is not the profile's redirect URI "
            f"({got.scheme}://{got.netloc}{got.path} instead of {redirect_uri})",
            fix="paste the address the browser landed on after signing in",
        )
    if got.fragment and "state=" in got.fragment and "state=" not in got.query:
        raise StateMismatch(
            "the pasted address carries its state in the fragment, which Webex's code flow "
            "never does",
            fix="run `wxtoken login -p {profile} --paste` again",
        )
    if expected_state is not None:
        _require_pasted_state(got.query)
    return parse_authorization_response(got.query, expected_state)


# --- responses ---------------------------------------------------------------------------------


def parse_json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a JSON object or raise MalformedResponse describing what came instead.

    The description never quotes the body: a 200 from the token endpoint that fails to parse
    (trailing data, NaN, truncation, a bad byte) still carries the new tokens, and a quote of
    its first bytes would put most of an access token into terminals, logs and alerts. Only
    the content type, the length and where parsing stopped are reported.
    """
    kind = clean_server_text((content_type or "").split(";")[0].strip().lower(), 60)
    kind = kind or "no content type"
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise _not_json(kind, len(body), f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise _not_json(kind, len(body), f"{exc.msg.lower()} (byte {exc.pos})") from None
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else "NaN or Infinity"
        raise _not_json(kind, len(body), why) from None
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"Webex answered with JSON that is not an object ({kind})",
            fix="retry later; if it persists, report it to Webex",
        )
    return data


def _not_json(kind: str, size: int, why: str) -> MalformedResponse:
    return MalformedResponse(
        f"Webex answered with something that is not valid JSON ({kind}, {size} bytes; {why})",
        fix="retry later; a proxy or outage page may be in the way",
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def check_token_body(data: dict[str, Any]) -> None:
    """A 200 that carries `error` is an error (golang/oauth2 does the same)."""
    if "error" in data and "access_token" not in data:
        code = data.get("error")
        named = code if isinstance(code, str) and code in OAUTH_ERROR_CODES else "unrecognised"
        raise MalformedResponse(
            f"Webex answered 200 but the body is an error ({named})",
            fix="retry later; if it persists, report it to Webex",
        )
