"""`/v1/access_token`: client authentication, the code and refresh grants, and token issuing.

The issuing helpers (`new_grant`, `issue_access`, `token_body`) are shared with the device and
service-app grants, so every grant answers in one shape. Where Webex's behaviour is unknown
(rotation, expiry sliding, code reuse) the emulator's `Policy` decides.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..oauth import s256_challenge, valid_code_verifier
from .model import AccessToken, Grant, Integration, Reply, ServiceApp, User, b64_id, fp

if TYPE_CHECKING:
    from .state import Emulator

Client = Integration | ServiceApp


def authenticate_client(
    emu: Emulator, form: Mapping[str, str], basic: tuple[str, str] | None, tracking: str
) -> Client | Reply:
    """HTTP Basic or form credentials (both may be sent, then they must agree)."""
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    client_id: str | None
    secret: str | None
    if basic is not None:
        if (body_id and body_id != basic[0]) or (body_secret and body_secret != basic[1]):
            return emu.oauth_error("invalid_request", "client credentials disagree", tracking)
        client_id, secret = basic
    else:
        client_id, secret = body_id, body_secret
    if not client_id or not secret:
        return emu.oauth_error("invalid_request", "client credentials are required", tracking)
    client: Client | None = emu.integrations.get(client_id)
    if client is None:
        client = next((a for a in emu.service_apps.values() if a.client_id == client_id), None)
    if client is None or not secrets.compare_digest(client.client_secret, secret):
        return emu.error(
            emu.policy.invalid_client_status,
            "The request requires a valid client_id and client_secret.",
            "invalid_client: client authentication failed",
            tracking,
            "invalid_client",
        )
    return client


def token(
    emu: Emulator,
    content_type: str | None,
    form: Mapping[str, str] | None,
    basic: tuple[str, str] | None,
    tracking: str,
) -> Reply:
    """POST /v1/access_token."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded" or form is None:
        emu.record("access_token", emu.policy.wrong_content_type_status, error="content_type")
        return emu.oauth_error(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
            tracking,
            status=emu.policy.wrong_content_type_status,
        )
    grant_type = form.get("grant_type")
    client = authenticate_client(emu, form, basic, tracking)
    if isinstance(client, Reply):
        emu.record(
            "access_token",
            client.status,
            grant_type=grant_type,
            client_id=form.get("client_id"),
            error="invalid_client",
        )
        return client
    if grant_type == "authorization_code":
        return code_grant(emu, client, form, tracking)
    if grant_type == "refresh_token":
        return refresh_grant(emu, client, form, tracking)
    emu.record("access_token", 400, grant_type=grant_type, error="unsupported_grant_type")
    return emu.oauth_error("unsupported_grant_type", f"{grant_type} is not supported", tracking)


def invalid_grant(
    emu: Emulator, tracking: str, grant_type: str, client: Client, **fingerprints: str | None
) -> Callable[[str], Reply]:
    """The refusal of one grant request: `fail(detail)` records it and answers invalid_grant."""

    def fail(detail: str) -> Reply:
        emu.record(
            "access_token",
            400,
            grant_type=grant_type,
            client_id=client.client_id,
            error="invalid_grant",
            detail=detail,
            **fingerprints,
        )
        return emu.oauth_error("invalid_grant", detail, tracking)

    return fail


def code_grant(emu: Emulator, client: Client, form: Mapping[str, str], tracking: str) -> Reply:
    value = form.get("code", "")
    code = emu.codes.get(value)
    code_fp = fp(value) if value else None
    fail = invalid_grant(emu, tracking, "authorization_code", client, code_fp=code_fp)

    if not value:
        return fail("code is required")
    if code is None:
        return fail("Authorization code is invalid")
    if code.client_id != client.client_id:
        return fail("Authorization code was issued to another client")
    if code.used and emu.policy.code_single_use:
        if emu.policy.revoke_on_code_reuse:
            for gid in code.grant_ids:
                emu.revoke_grant(gid)
        return fail("Authorization code has already been used")
    now = emu.now()
    if now - code.issued_at > emu.policy.code_ttl:
        return fail("Authorization code has expired")
    redirect = form.get("redirect_uri")
    if redirect is None or redirect != code.redirect_uri:
        return fail("redirect_uri does not match the authorization request")
    if code.challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier or not valid_code_verifier(verifier):
            return fail("code_verifier is missing or malformed")
        expected = s256_challenge(verifier) if code.method == "S256" else verifier
        if not secrets.compare_digest(expected, code.challenge):
            return fail("code_verifier does not match the code_challenge")
    code.used = True
    user = emu.users[code.user_uuid]
    grant: Grant | None = None
    if emu.policy.reuse_refresh_per_user_client:
        grant = next(
            (
                g
                for g in emu.grants.values()
                if g.client_id == client.client_id
                and g.user_uuid == user.uuid
                and not g.revoked
                and g.refresh_expires_at > now
            ),
            None,
        )
        if grant is not None:
            grant.scopes = code.scopes
    if grant is None:
        grant = new_grant(emu, client, user, code.scopes, now)
    code.grant_ids.append(grant.id)
    access = issue_access(emu, grant, now)
    ledger = {"code_fp": fp(value), "refresh_fp": fp(grant.refresh_token)}
    return granted(emu, "authorization_code", client, grant, access, now, **ledger)


def refresh_grant(emu: Emulator, client: Client, form: Mapping[str, str], tracking: str) -> Reply:
    presented = form.get("refresh_token", "")
    now = emu.now()
    refresh_fp = fp(presented) if presented else None
    fail = invalid_grant(emu, tracking, "refresh_token", client, refresh_fp=refresh_fp)

    if not presented:
        return fail("refresh_token is required")
    grant_id = emu.refresh_index.get(presented)
    via_grace = False
    if grant_id is None:
        retired = emu.retired_refresh.get(presented)
        if retired is None:
            return fail("Refresh token is invalid")
        gid, until = retired
        if emu.policy.rotate == "reuse-kills-family":
            emu.revoke_grant(gid)
            return fail("Refresh token was already used; the grant has been revoked")
        if emu.policy.rotate == "grace" and now <= until:
            grant_id, via_grace = gid, True
        else:
            return fail("Refresh token is invalid")
    grant = emu.grants[grant_id]
    if grant.client_id != client.client_id:
        return fail("Refresh token was issued to another client")
    if grant.revoked:
        return fail("Refresh token has been revoked")
    if grant.refresh_expires_at <= now:
        return fail("Refresh token has expired")
    user = emu.users.get(grant.user_uuid)
    if user is None or not user.active:
        return fail("The user who granted access is no longer active")
    cached = emu.access.get(grant.cached_access or "")
    if (
        emu.policy.refresh_expiry == "sliding-daily"
        and grant.last_refresh_at is not None
        and now - grant.last_refresh_at < 86400
        and cached is not None
        and not cached.revoked
    ):
        # webex/integration-refresh: within 24 h a refresh repeats the previous answer.
        ledger = {"refresh_fp": fp(presented), "outcome": "cached"}
        return granted(emu, "refresh_token", client, grant, cached, now, **ledger)
    if emu.policy.revoke_previous_access_on_refresh:
        for tok in emu.access.values():
            if tok.grant_id == grant.id:
                tok.revoked = True
    if not via_grace and emu.policy.rotate != "never":
        old = grant.refresh_token
        del emu.refresh_index[old]
        grant.refresh_token = emu.new_token(user.org_uuid)
        emu.refresh_index[grant.refresh_token] = grant.id
        emu.retired_refresh[old] = (grant.id, now + emu.policy.grace_seconds)
    if emu.policy.refresh_expiry != "fixed":
        grant.refresh_expires_at = now + emu.policy.refresh_ttl
        grant.last_reset_at = now
    grant.last_refresh_at = now
    access = issue_access(emu, grant, now)
    return granted(
        emu,
        "refresh_token",
        client,
        grant,
        access,
        now,
        refresh_fp=fp(presented),
        issued_refresh_fp=fp(grant.refresh_token),
        rotated=grant.refresh_token != presented,
    )


def granted(
    emu: Emulator,
    grant_type: str,
    client: Client,
    grant: Grant,
    access: AccessToken,
    now: float,
    **ledger: Any,
) -> Reply:
    """Record a grant that succeeded (fingerprints, never tokens) and answer with the tokens."""
    emu.record(
        "access_token",
        200,
        grant_type=grant_type,
        client_id=client.client_id,
        access_fp=fp(access.value),
        **ledger,
    )
    return Reply(200, token_body(emu, grant, access, now))


def new_grant(emu: Emulator, client: Client, user: User, scopes: list[str], now: float) -> Grant:
    """A new refresh authorization (user x client) with a fresh refresh token."""
    grant = Grant(
        id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
        client_id=client.client_id,
        user_uuid=user.uuid,
        scopes=scopes,
        refresh_token=emu.new_token(user.org_uuid),
        refresh_expires_at=now + emu.policy.refresh_ttl,
        created=now,
        last_reset_at=now,
        app_name=client.name,
    )
    emu.grants[grant.id] = grant
    emu.refresh_index[grant.refresh_token] = grant.id
    return grant


def issue_access(emu: Emulator, grant: Grant, now: float) -> AccessToken:
    user = emu.users[grant.user_uuid]
    value = emu.new_token(user.org_uuid)
    access = AccessToken(
        id=b64_id("AUTHORIZATION", str(uuid.uuid4())),
        value=value,
        grant_id=grant.id,
        client_id=grant.client_id,
        user_uuid=grant.user_uuid,
        scopes=grant.scopes,
        expires_at=now + emu.policy.access_ttl,
        created=now,
    )
    emu.access[value] = access
    grant.cached_access = value
    return access


def token_body(emu: Emulator, grant: Grant, access: AccessToken, now: float) -> dict[str, Any]:
    """Webex's token response; lifetimes counted from `now`, reported one second short."""
    minus = 1 if emu.policy.report_minus_one else 0
    body: dict[str, Any] = {
        "access_token": access.value,
        "expires_in": max(0, int(access.expires_at - now) - minus),
        "refresh_token": grant.refresh_token,
        "refresh_token_expires_in": max(0, int(grant.refresh_expires_at - now) - minus),
        "token_type": "Bearer",
        "scope": " ".join(grant.scopes),
    }
    if "openid" in grant.scopes:
        claims = base64.urlsafe_b64encode(json.dumps({"sub": grant.user_uuid}).encode())
        body["id_token"] = "eyJhbGciOiJub25lIn0." + claims.decode().rstrip("=") + "."
    return body
