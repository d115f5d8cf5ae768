"""Webex's error answers, read and classified: the OAuth error code, Webex's own words, the
trackingId, Retry-After, and the exception of wxtoken's tree each one means.

Webex answers errors in two shapes and both are read: its REST envelope
`{"message", "errors": [{"description"}], "trackingId"}` and RFC 6749's `error` /
`error_description`. Callers branch on the classified exception and its `.error` / `.status`,
never on the prose.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .causes import CAUSES, TOKEN_LIMIT_RELIEF
from .device import DEVICE_GRANT_TYPE, DEVICE_HELPER_REDIRECT_URIS
from .errors import (
    AppDeauthorized,
    ConsentDenied,
    Forbidden,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    OAuthError,
    RedirectUriRejected,
    WebexUnavailable,
    WxtokenError,
    clean_server_text,
    redact,
)

# RFC 6749 §5.2 codes plus the ones Webex's device endpoint documents. Matched as whole words,
# never as substrings, so "internal_server_error" is not mistaken for "server_error".
OAUTH_ERROR_CODES = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    "login_required",
    "unsupported_response_type",
    "authorization_pending",
    "slow_down",
    "expired_token",
    "tokenlimit_reached",
)
_CODE_RE = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(OAUTH_ERROR_CODES) + r")(?![A-Za-z0-9_])")
SIGN_IN_AGAIN = ", then wxtoken login -p {profile}"
DEVICE_SIGN_IN = "wxtoken login --device -p {profile}"
# Not failures: the answers a device poll gets until the person has approved, by code.
PENDING = "authorization_pending"
SLOW_DOWN = "slow_down"
_TRANSIENT_CODES = frozenset({"server_error", "temporarily_unavailable"})
# The grant name of a service app's minting (POST /v1/applications/{id}/token), whose 403 and 404
# have their own meaning (see classify_error).
GRANT_MINT = "service_app_mint"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as delta-seconds or HTTP-date (RFC 9110 §10.2.3); junk gives None."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{1,10}", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class ErrorInfo:
    status: int
    code: str | None  # an OAuth error code, if one was found
    message: str  # cleaned summary fit for a terminal
    tracking_id: str | None


def read_error(
    status: int, body: bytes, headers: Mapping[str, str], sent: tuple[str, ...] = ()
) -> ErrorInfo:
    """Pull code, summary and trackingId out of either error shape (or of junk).

    `sent` are the secrets of the request (client secret, refresh token, code, bearer token):
    any echo of them is cut out of everything kept (see errors.redact).
    """
    tracking = headers.get("trackingid") or headers.get("TrackingID")
    data: dict[str, Any] | None
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    texts: list[str] = []
    code: str | None = None
    if isinstance(data, dict):
        if isinstance(data.get("trackingId"), str):
            tracking = data["trackingId"]
        err = data.get("error")
        if isinstance(err, str) and err in OAUTH_ERROR_CODES:
            code = err
        if isinstance(err, str):
            texts.append(err)
        if isinstance(data.get("error_description"), str):
            texts.append(data["error_description"])
        if isinstance(data.get("message"), str):
            texts.append(data["message"])
        errs = data.get("errors")
        if isinstance(errs, list):
            for item in errs[:5]:
                if isinstance(item, dict) and isinstance(item.get("description"), str):
                    texts.append(item["description"])
    if code is None:
        for text in texts:
            m = _CODE_RE.search(text)
            if m:
                code = m.group(1)
                break
    texts = [redact(t, sent) for t in texts]
    if tracking:
        tracking = redact(tracking, sent)
    if texts:
        summary = " / ".join(dict.fromkeys(clean_server_text(t, 160) for t in texts))
    elif body:
        summary = f"non-JSON body of {len(body)} bytes"
    else:
        summary = "empty body"
    return ErrorInfo(
        status=status,
        code=code,
        message=clean_server_text(summary, 200),
        tracking_id=clean_server_text(tracking, 80) if tracking else None,
    )


def classify_error(
    info: ErrorInfo, *, grant: str, retry_after: float | None = None
) -> WxtokenError:
    """Map an HTTP error from Webex to our exception tree.

    `grant` is "authorization_code", "refresh_token", GRANT_MINT or "api" and shapes the advice
    (and, for minting, which exception a 403 or 404 is).
    """
    where = f"HTTP {info.status}: {info.message}"
    meta: dict[str, Any] = {
        "tracking_id": info.tracking_id,
        "error": info.code,
        "status": info.status,
        "said": info.message,
    }
    if info.status == 429 or info.status == 423:
        when = f" after {int(retry_after)} s" if retry_after is not None else " later"
        return WebexUnavailable(
            f"Webex is rate-limiting this integration ({where})",
            fix=f"try again{when}",
            **meta,
            retry_after=retry_after,
        )
    if info.status >= 500 or info.status == 408 or info.code in _TRANSIENT_CODES:
        return WebexUnavailable(
            f"Webex is failing ({where})",
            fix="try again in a few minutes; check https://status.webex.com",
            **meta,
            retry_after=retry_after,
        )
    code = info.code
    if grant == GRANT_MINT and info.status in (403, 404):
        # Webex answers a mint for an org that has not authorized the app (or has deauthorized
        # it) with 403, and an app it does not know there with 404; the minter's own scope is
        # checked before minting (minting.py), so neither is read as a missing scope.
        deauthorized = CAUSES["app_deauthorized"]
        return AppDeauthorized(
            f"Webex refused to mint: {deauthorized.text} ({where})", fix=deauthorized.fix, **meta
        )
    if grant == DEVICE_GRANT_TYPE and code != "invalid_client" and info.status != 401:
        return _device_error(info, meta, where)
    if code == "invalid_client" or (info.status == 401 and grant != "api"):
        return InvalidClient(
            f"Webex rejected the client id or secret ({where})",
            fix="enter the current secret (shown once, in the Webex developer portal): "
            "wxtoken profile set {profile} --client-secret-stdin",
            **meta,
        )
    if code == "tokenlimit_reached":
        # The grant itself is fine: Webex refuses to issue more tokens to this user until
        # some of theirs are revoked.
        limit = CAUSES["token_limit"]
        # A spent code cannot be tried again: a new sign-in is the retry.
        fix = limit.fix if grant == "refresh_token" else TOKEN_LIMIT_RELIEF + SIGN_IN_AGAIN
        return OAuthError(f"Webex refused: {limit.text} ({where})", fix=fix, **meta)
    if code in ("access_denied", "unauthorized_client") and grant != "api":
        blocked = CAUSES["blocked"]
        return ConsentDenied(f"Webex refused: {blocked.text} ({where})", fix=blocked.fix, **meta)
    if code == "invalid_grant":
        if "redirect" in info.message.lower():
            return RedirectUriRejected(
                f"Webex rejected the redirect URI for this code ({where})",
                fix="register the profile's redirect URI exactly on the integration at "
                "developer.webex.com, then `wxtoken login -p {profile}`",
                **meta,
            )
        if grant == "authorization_code":
            return InvalidGrant(
                f"the authorization code is invalid, expired or already used ({where})",
                fix="wxtoken login -p {profile}",
                **meta,
            )
        return InvalidGrant(
            f"Webex rejected the refresh token: expired, revoked or replaced ({where})",
            fix="wxtoken login -p {profile}",
            **meta,
        )
    if code == "invalid_scope":
        return InvalidScope(
            f"Webex rejected the scopes ({where})",
            fix="register the profile's scopes on the integration at developer.webex.com, or "
            "change them: wxtoken profile set {profile} --preset verint-calling",
            **meta,
        )
    if info.status == 403:
        return Forbidden(
            f"Webex refused: the token lacks a scope or the user lacks an admin role ({where})",
            fix="sign in as a Full Admin and accept every scope: wxtoken login -p {profile}",
            **meta,
        )
    if info.status == 401:
        return InvalidGrant(
            f"Webex no longer accepts this access token ({where})",
            fix="wxtoken refresh -p {profile} --force (or `wxtoken login -p {profile}` if that "
            "fails)",
            **meta,
        )
    if "redirect" in info.message.lower():
        return RedirectUriRejected(
            f"Webex rejected the redirect URI ({where})",
            fix="register the profile's redirect URI exactly on the integration at "
            "developer.webex.com, or change it: wxtoken profile set {profile} --redirect-uri URI",
            **meta,
        )
    return OAuthError(
        f"Webex refused the request ({where})",
        fix="check the profile (`wxtoken profile show {profile}`) against the integration's "
        "settings at developer.webex.com",
        **meta,
    )


def register_helper_uris() -> str:
    """What lets Webex finish a device sign-in: its helper redirect URIs on the integration."""
    return "register all of these redirect URIs on the integration at developer.webex.com: " + (
        " ".join(DEVICE_HELPER_REDIRECT_URIS)
    )


def _device_error(info: ErrorInfo, meta: dict[str, Any], where: str) -> WxtokenError:
    """The device endpoints' answers, by code: Webex says 428 while the person has not
    approved yet (RFC 8628 says 400 authorization_pending; both are read as pending)."""
    code = info.code
    if info.status == 428 or code == PENDING:
        meta = dict(meta, error=PENDING)
        return OAuthError(f"Webex is waiting for the code to be approved ({where})", **meta)
    if code == SLOW_DOWN:
        return OAuthError(f"Webex asks to poll more slowly ({where})", **meta)
    if code == "access_denied":
        return ConsentDenied(
            "the sign-in was denied at Webex: the person pressed Deny, or an administrator "
            f"blocks the integration in Control Hub ({where})",
            fix=f"{DEVICE_SIGN_IN}, and approve the code (if it was not you who denied it, ask "
            "a Control Hub admin to allow the integration)",
            **meta,
        )
    if code in ("invalid_grant", "expired_token"):
        return InvalidGrant(
            f"the device code expired or is no longer valid ({where})",
            fix=f"run again and approve within the time shown: {DEVICE_SIGN_IN}",
            **meta,
        )
    if code == "tokenlimit_reached":
        limit = CAUSES["token_limit"]
        return OAuthError(
            f"Webex refused: {limit.text} ({where})",
            fix=f"{TOKEN_LIMIT_RELIEF}, then {DEVICE_SIGN_IN}",
            **meta,
        )
    if "redirect" in info.message.lower():
        return RedirectUriRejected(
            f"Webex rejected the integration's redirect URIs for the device grant ({where})",
            fix=f"{register_helper_uris()}; then {DEVICE_SIGN_IN}",
            **meta,
        )
    if code == "invalid_scope":
        return InvalidScope(
            f"Webex rejected the scopes for a device sign-in ({where})",
            fix="register the profile's scopes on the integration at developer.webex.com (no "
            "OpenID Connect scopes), or change them: wxtoken profile set {profile} --scopes "
            '"..."',
            **meta,
        )
    return OAuthError(
        f"Webex refused the device sign-in ({where})",
        fix="check the profile (`wxtoken profile show {profile}`) against the integration's "
        f"settings at developer.webex.com, then {DEVICE_SIGN_IN}",
        **meta,
    )
