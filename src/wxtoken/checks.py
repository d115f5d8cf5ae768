"""Asking Webex about a grant without refreshing it: `verify` (who, until when, with what) and
`probe` (is it alive), and what the profile's scopes need of the person who signed in.

A probe uses the stored access token as it is and never refreshes, so it never moves the
refresh schedule or a rotating refresh token; what it learns is stored on the record
(`probe_and_record`). `verify` asks for a token valid a minute more, as `token` would.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from . import causes, outcomes
from .errors import (
    Forbidden,
    InvalidGrant,
    OAuthError,
    WebexUnavailable,
    WxtokenError,
    clean_server_text,
)
from .identity import identity_from_person, org_id_from_token, role_names
from .results import RoleNeed, VerifyResult
from .store import Probe, TokenRecord
from .token import Token

if TYPE_CHECKING:
    from .client import WebexClient
    from .manager import TokenManager

TOKEN_EXPIRY = "tokenExpiry"
PEOPLE_ME = "people/me"


def role_needs(scopes: tuple[str, ...], roles: tuple[str, ...] | None) -> tuple[RoleNeed, ...]:
    """Admin scopes (identity:*, spark-admin:*) need a Full Admin, as Verint's Calling setup
    does; compliance scopes need the Compliance Officer role. None where it cannot be told from
    what Webex reported: said so, rather than guessed."""
    lowered = tuple(r.lower() for r in roles) if roles is not None else None
    needs = []
    if any(s.startswith(("identity:", "spark-admin:")) for s in scopes):
        held = None if lowered is None else any("full_admin" in r for r in lowered)
        needs.append(RoleNeed("Full Admin", held))
    if any(s.startswith("spark-compliance:") for s in scopes):
        # people/me is not known to list the Compliance Officer role among `roles`: seen, it
        # counts; not seen, it is unknown rather than missing.
        held = True if lowered and any("compliance" in r for r in lowered) else None
        needs.append(RoleNeed("Compliance Officer", held))
    return tuple(needs)


def probe(
    client: WebexClient,
    record: TokenRecord,
    token: Token,
    now: float,
    wanted: tuple[str, ...] = (),
) -> Probe:
    """Whether Webex still accepts the grant's access token, and if not, why (when it says).

    `wanted` is the profile's scopes: a live grant without some of them is degraded, since the
    recorder's calls that need them will be refused.
    """
    if token.access_expires_at <= now:
        return Probe(
            now, "unknown", None, "the access token has expired; the next refresh will tell"
        )
    can_expiry = "identity:tokens_read" in record.scopes
    can_me = "spark:people_read" in record.scopes
    if not (can_expiry or can_me):
        why = (
            "the granted scopes allow no probe (it needs identity:tokens_read or spark:people_read)"
        )
        return Probe(now, "unknown", None, why)
    endpoint = TOKEN_EXPIRY if can_expiry else PEOPLE_ME
    try:
        if can_expiry:
            client.token_expiry(token.access_token)
        me = client.people_me(token.access_token) if can_me else None
    except InvalidGrant as exc:
        return Probe(now, "dead", causes.from_error(exc), _seen(exc), endpoint)
    except Forbidden as exc:
        return _why_forbidden(client, record, token, exc, now, endpoint, wanted)
    except (WebexUnavailable, OAuthError) as exc:
        return Probe(now, "unknown", None, _seen(exc), endpoint)
    missing = _missing(record, wanted)
    if missing:
        return Probe(now, "degraded", "scopes_missing", missing, endpoint)
    if me is not None and any(n.held is False for n in role_needs(record.scopes, role_names(me))):
        seen = "people/me no longer lists an admin role the profile's scopes need"
        return Probe(now, "degraded", "admin_role_lost", seen, endpoint)
    org = identity_from_person(me, None).org_id if me is not None else None
    org = org or org_id_from_token(token.access_token)
    if record.identity.org_id and org and org != record.identity.org_id:
        seen = f"Webex answered for org {org}; the grant was made in {record.identity.org_id}"
        return Probe(now, "degraded", "org_changed", seen, endpoint)
    return Probe(now, "alive", None, None, endpoint)


def _why_forbidden(
    client: WebexClient,
    record: TokenRecord,
    token: Token,
    exc: WxtokenError,
    now: float,
    endpoint: str,
    wanted: tuple[str, ...],
) -> Probe:
    """A 403 says only "a scope, role or licence is missing": ask people/me which, if it can."""
    missing = _missing(record, wanted)
    if missing:
        return Probe(now, "degraded", "scopes_missing", f"{missing}; {_seen(exc)}", endpoint)
    if "spark:people_read" not in record.scopes:
        return Probe(now, "degraded", "forbidden", _seen(exc), endpoint)
    try:
        me = client.people_me(token.access_token)
    except WxtokenError:
        return Probe(now, "degraded", "forbidden", _seen(exc), endpoint)
    if any(n.held is False for n in role_needs(record.scopes, role_names(me))):
        return Probe(now, "degraded", "admin_role_lost", _seen(exc), endpoint)
    return Probe(now, "degraded", "forbidden", _seen(exc), endpoint)


def _missing(record: TokenRecord, wanted: tuple[str, ...]) -> str | None:
    """What the grant lacks of the profile's scopes, as the probe records it; None if nothing."""
    lacking = [s for s in wanted if s not in record.scopes]
    return f"granted without {' '.join(lacking)}" if lacking else None


def _seen(exc: WxtokenError) -> str:
    """What Webex answered, for the record: its status, words and trackingId (sanitised)."""
    seen = clean_server_text(exc.message, 240)
    if exc.tracking_id:
        seen += f" (trackingId {clean_server_text(exc.tracking_id, 80)})"
    return seen


def verify(tm: TokenManager) -> VerifyResult:
    """`TokenManager.verify`: people/me and tokenExpiry with a token valid for a minute more."""
    token = tm.token(60)
    me = tm.client.people_me(token.access_token)
    expires = tm.client.token_expiry(token.access_token)
    record = tm.store.token_record(tm.name)
    granted = record.scopes if record else token.scopes
    result = VerifyResult(
        profile=tm.name,
        identity=identity_from_person(me, org_id_from_token(token.access_token)),
        access_expires_at=expires,
        scopes=tuple(granted),
        missing_scopes=tuple(s for s in tm.profile.scopes if s not in granted),
        roles=role_needs(tm.profile.scopes, role_names(me)),
    )
    tm.store.append_event(tm.name, "verify", {"ok": result.ok})
    return result


def probe_and_record(tm: TokenManager) -> Probe:
    """`TokenManager.probe`: probe, store the verdict, and mark a dead grant with its cause."""
    record, token = tm._load()
    found = probe(tm.client, record, token, tm.clock(), tm.profile.scopes)
    updated = replace(record, probe=found)
    if found.verdict == "dead":
        text = causes.describe(found.cause, tm.name)
        reason = text[0] if text else "Webex no longer accepts the grant"
        updated = outcomes.login_required(updated, reason, found.at, cause=found.cause)
    detail = {"verdict": found.verdict, "cause": found.cause, "endpoint": found.endpoint}
    # Recorded under the profile's lock, over the record as it is now: a refresh may have
    # stored a newer token while Webex was asked (without the lock, so a probe never holds up
    # a refresh). Its verdict then still describes the grant, unless it found the older token
    # dead: the newer one, refreshed since, says otherwise.
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        current = tm.store.token_record(tm.name)
        if current is None:
            return found
        if current.generation != record.generation:
            if found.verdict == "dead":
                return found
            updated = replace(current, probe=found)
        tm.store.put_record(updated, event="probe", detail=dict(detail, seen=found.detail))
    return found
