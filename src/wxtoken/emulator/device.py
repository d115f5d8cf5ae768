"""The device grant (RFC 8628 as Webex serves it): authorize, the verification page, token polling.

Webex answers a poll before approval with 428 (not RFC 8628's 400 `authorization_pending`) and
a poll faster than the device's interval with 400 `slow_down`; as RFC 8628 §3.5 says, each
slow_down raises that interval by five seconds for the rest of the code's life. OpenID Connect
scopes are refused (Webex: the device grant does not support them). The verification page
finishes through Webex's helper redirect URIs, so an integration that lacks them gets Webex's
bare error page there, and the device's poll just stays pending until the code expires. A user
who already holds a live grant for the client gets that grant's refresh token again, with its
remaining lifetime, as Webex's device-flow examples show.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING

from ..device import DEVICE_HELPER_REDIRECT_URIS, SLOW_DOWN_STEP
from . import causes
from .grants import authenticate_client, issue_access, live_grant, new_grant, token_body
from .model import (
    BLOCKED_BY_ADMIN,
    HELPER_PAGE_ERROR,
    MSG_400,
    OIDC_SCOPES,
    TOKEN_LIMIT_REACHED,
    DeviceCode,
    Integration,
    Reply,
    fp,
)

if TYPE_CHECKING:
    from .state import Emulator

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


def has_helper_uris(integ: Integration) -> bool:
    """Whether every device helper redirect URI is registered on the integration."""
    return all(uri in integ.redirect_uris for uri in DEVICE_HELPER_REDIRECT_URIS)


def device_authorize(
    emu: Emulator, form: Mapping[str, str] | None, base_url: str, tracking: str
) -> Reply:
    """POST /v1/device/authorize: a device code and the six-digit code the user types."""
    form = form or {}
    integ = emu.integrations.get(form.get("client_id", ""))
    if integ is None:
        emu.record("device_authorize", 400, error="invalid_client")
        return emu.error(400, MSG_400, "Client Id is invalid", tracking, "invalid_client")
    scopes = form.get("scope", "").split()
    bad = [s for s in scopes if s not in integ.scopes or s in OIDC_SCOPES]
    if not scopes or bad:
        emu.record("device_authorize", 400, error="invalid_scope")
        return emu.oauth_error("invalid_scope", "scope is missing or not registered", tracking)
    interval = emu.policy.device_interval
    dev = DeviceCode(
        device_code=secrets.token_urlsafe(32),
        user_code=f"{secrets.randbelow(10**6):06d}",
        client_id=integ.client_id,
        scopes=scopes,
        expires_at=emu.now() + emu.policy.device_ttl,
        interval=interval,
    )
    if emu.policy.auto_approve and has_helper_uris(integ):
        dev.approved_by = emu.consent_user
    emu.devices[dev.device_code] = dev
    emu.record("device_authorize", 200, client_id=integ.client_id, interval=interval)
    verify = f"{base_url}/v1/device/verify"
    return Reply(
        200,
        {
            "device_code": dev.device_code,
            "expires_in": emu.policy.device_ttl,
            "user_code": dev.user_code,
            "verification_uri": verify,
            "verification_uri_complete": f"{verify}?userCode={dev.user_code}",
            "interval": interval,
        },
    )


def _pending(emu: Emulator, user_code: str) -> DeviceCode | None:
    dev = next((d for d in emu.devices.values() if d.user_code == user_code), None)
    return None if dev is None or dev.expires_at <= emu.now() else dev


def _without_helpers(emu: Emulator, dev: DeviceCode) -> bool:
    integ = emu.integrations.get(dev.client_id)
    return integ is not None and not has_helper_uris(integ)


def verify_page(emu: Emulator, user_code: str) -> Reply:
    """GET /v1/device/verify: where the user types (or finds prefilled) the code."""
    dev = _pending(emu, user_code) if user_code else None
    if dev is not None and _without_helpers(emu, dev):
        emu.record("device_verify", 400, error="helper_redirect_uri")
        return Reply(400, f"<p>{escape(HELPER_PAGE_ERROR)}</p>")
    page = (
        "<!doctype html><title>Webex emulator: activate a device</title>"
        '<form method="post"><label>Code <input name="userCode" '
        f'value="{escape(user_code)}"></label> <button name="decision" value="approve">Approve'
        '</button> <button name="decision" value="deny">Deny</button></form>'
    )
    return Reply(200, page)


def device_decide(emu: Emulator, user_code: str, approve: bool) -> Reply:
    """POST /v1/device/verify: the consent user approves or denies the device."""
    dev = _pending(emu, user_code)
    if dev is None:
        emu.record("device_verify", 400, error="unknown_code")
        return Reply(400, "<p>That code is unknown or expired.</p>")
    if _without_helpers(emu, dev):
        # The page cannot finish through a helper the integration does not list.
        emu.record("device_verify", 400, error="helper_redirect_uri")
        return Reply(400, f"<p>{escape(HELPER_PAGE_ERROR)}</p>")
    if approve:
        dev.approved_by = emu.consent_user
    else:
        dev.denied = True
    emu.record("device_verify", 200, outcome="approved" if approve else "denied")
    return Reply(200, f"<p>Device {'approved' if approve else 'denied'}.</p>")


def device_token(
    emu: Emulator, form: Mapping[str, str] | None, basic: tuple[str, str] | None, tracking: str
) -> Reply:
    """POST /v1/device/token: pending (428), too fast, denied, expired, or the tokens."""
    form = form or {}
    client = authenticate_client(emu, form, basic, tracking)
    if isinstance(client, Reply):
        emu.record("device_token", client.status, error="invalid_client")
        return client
    if form.get("grant_type") != GRANT_TYPE:
        emu.record("device_token", 400, error="unsupported_grant_type")
        return emu.oauth_error("unsupported_grant_type", "device_code grant expected", tracking)
    dev = emu.devices.get(form.get("device_code", ""))
    now = emu.now()
    if dev is None or dev.client_id != client.client_id or dev.expires_at <= now:
        emu.record("device_token", 400, error="invalid_grant")
        return emu.oauth_error("invalid_grant", "device_code is invalid or expired", tracking)
    if dev.denied:
        emu.record("device_token", 400, error="access_denied")
        return emu.oauth_error("access_denied", "the user denied the request", tracking)
    if dev.approved_by is None:
        too_fast = dev.last_poll is not None and now - dev.last_poll < dev.interval
        dev.last_poll = now
        if too_fast:
            dev.interval += SLOW_DOWN_STEP
            emu.record("device_token", 400, error="slow_down", interval=dev.interval)
            return emu.oauth_error("slow_down", "polling too fast", tracking)
        emu.record("device_token", 428, error="authorization_pending")
        return emu.error(
            428,
            "authorization_pending",
            "authorization_pending: the user has not yet approved",
            tracking,
            "authorization_pending",
        )
    user = emu.users[dev.approved_by]
    del emu.devices[dev.device_code]
    # Both refusals are in Webex's list of this endpoint's errors.
    if isinstance(client, Integration) and client.blocked:
        emu.record("device_token", 400, error="access_denied", cause=causes.BLOCKED)
        return emu.oauth_error("access_denied", BLOCKED_BY_ADMIN, tracking)
    if causes.over_token_limit(emu, client.client_id, user.uuid, now):
        emu.record("device_token", 400, error="tokenlimit_reached", cause=causes.TOKEN_LIMIT)
        return emu.oauth_error("tokenlimit_reached", TOKEN_LIMIT_REACHED, tracking)
    grant = live_grant(emu, client.client_id, user.uuid, now)
    reused = grant is not None
    if grant is None:
        grant = new_grant(emu, client, user, dev.scopes, now)
    else:
        grant.scopes = dev.scopes
    access = issue_access(emu, grant, now)
    emu.record(
        "device_token",
        200,
        client_id=client.client_id,
        refresh_fp=fp(grant.refresh_token),
        reused=reused,
    )
    return Reply(200, token_body(emu, grant, access, now))
