"""What ends or degrades a grant without its client asking, and the name the ledger gives each.

Webex's answers tell few of these apart: every refused refresh token is one 400
`invalid_grant` with one description, every dead access token one 401, every refusal for a
role or a scope one 403. Only the ledger says which cause it was (its `cause` field), so a
test can assert what happened at "Webex" while the client sees no more than Webex shows.

Causes of a refused refresh token or access token (`Grant.revoked_by`, `AccessToken.revoked_by`):

    unknown             never issued (or not by this emulator)
    no_token            a resource request without a bearer token
    expired             past its expiry
    revoked             DELETE /v1/authorizations, or `POST /_emulator/revoke {"token"}`
    password_changed    the user changed password: every grant of the user ends
    deactivated         the user was deactivated: every grant ends, sign-in is refused
    admin_role_removed  the user lost Full Admin (only with policy revoke_on_admin_loss)
    org_changed         the user moved to another org (only with policy revoke_on_org_change)
    blocked             the integration was blocked (policy revoke_on_block, the default)
    code_reused         the code it came from was replayed (policy revoke_on_code_reuse)
    reuse_detected      a rotated-away refresh token was presented (rotate reuse-kills-family)
    rotated             a rotated-away refresh token, past any grace period
    superseded          an access token ended by a later refresh (revoke_previous_access_on_refresh)
    other_client        a refresh token presented by a client it was not issued to
    deauthorized        a service app deauthorized in the grant's org (Control Hub)

and of the other refusals: `token_limit` (400 tokenlimit_reached, at code exchange, refresh
and device sign-in), `not_admin` and `missing_scope` (403), and of minting `not_authorized`
(403: the app is not authorized in the org), `unknown_app` (404), `invalid_client` (401).
A refused code exchange names `missing_code`, `unknown`, `other_client`, `code_used`,
`expired`, `redirect_uri`, `pkce` or `blocked`; a refresh without a token,
`missing_refresh_token`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .model import FULL_ADMIN_ROLES, AccessToken, Integration, User

if TYPE_CHECKING:
    from .state import Emulator

UNKNOWN = "unknown"
NO_TOKEN = "no_token"
EXPIRED = "expired"
REVOKED = "revoked"
PASSWORD_CHANGED = "password_changed"
DEACTIVATED = "deactivated"
ADMIN_ROLE_REMOVED = "admin_role_removed"
ORG_CHANGED = "org_changed"
BLOCKED = "blocked"
CODE_REUSED = "code_reused"
REUSE_DETECTED = "reuse_detected"
ROTATED = "rotated"
SUPERSEDED = "superseded"
OTHER_CLIENT = "other_client"
DEAUTHORIZED = "deauthorized"
TOKEN_LIMIT = "token_limit"
NOT_ADMIN = "not_admin"
MISSING_SCOPE = "missing_scope"


def dead_token_cause(emu: Emulator, tok: AccessToken | None, sent: bool) -> str | None:
    """Why `tok` (found by the bearer header, if `sent`) may not be used now; None if it may."""
    if tok is None:
        return UNKNOWN if sent else NO_TOKEN
    grant = emu.grants.get(tok.grant_id) if tok.grant_id is not None else None
    if tok.grant_id is not None and grant is None:
        return UNKNOWN
    if grant is not None and grant.revoked:
        return grant.revoked_by or REVOKED
    if tok.revoked:
        return tok.revoked_by or REVOKED
    if tok.expires_at <= emu.now():
        return EXPIRED
    user = emu.users.get(tok.user_uuid) if tok.user_uuid is not None else None
    if tok.user_uuid is not None and (user is None or not user.active):
        return DEACTIVATED
    return None


def end_user_grants(emu: Emulator, user: User, cause: str) -> int:
    """End every live grant of `user` (all integrations) for `cause`; returns how many."""
    ended = [g.id for g in emu.grants.values() if g.user_uuid == user.uuid and not g.revoked]
    for gid in ended:
        emu.revoke_grant(gid, cause)
    return len(ended)


# --- changing a user ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserChange:
    """One `POST /_emulator/users` request, checked; None fields are left as they are."""

    email: str
    roles: tuple[str, ...] | None = None
    org_uuid: str | None = None
    password_changed: bool = False
    active: bool | None = None


USER_FIELDS = ("email", "roles", "org_id", "password_changed", "active")


def parse_user_change(body: Any) -> UserChange | str:
    """A UserChange from JSON, or what is wrong with it (nothing is applied then)."""
    if not isinstance(body, dict) or not isinstance(body.get("email"), str):
        return "expected {email, roles?, org_id?, password_changed?, active?}"
    unknown = sorted(set(body) - set(USER_FIELDS))
    if unknown:
        return f"unknown field {unknown[0]}"
    roles = body.get("roles")
    if roles is not None and (
        not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)
    ):
        return "roles must be a list of role names"
    org = body.get("org_id")
    if org is not None:
        try:
            org = str(uuid.UUID(str(org)))
        except ValueError:
            return "org_id must be an org UUID (the suffix of the org's tokens)"
    for flag in ("password_changed", "active"):
        if flag in body and not isinstance(body[flag], bool):
            return f"{flag} must be true or false"
    if len(body) == 1:
        return "nothing to change: give roles, org_id, password_changed or active"
    return UserChange(
        email=body["email"],
        roles=None if roles is None else tuple(roles),
        org_uuid=org,
        password_changed=body.get("password_changed", False),
        active=body.get("active"),
    )


def change_user(emu: Emulator, user: User, change: UserChange) -> int:
    """Apply `change` as Webex's identity service would; returns how many grants it ended.

    Where several changes end grants, each grant is named after the first that ended it, in
    this order: deactivation, password change, org move, loss of Full Admin.
    """
    remember_user(emu, user)
    ended = 0
    if change.active is not None:
        user.active = change.active
        if not change.active:
            ended += end_user_grants(emu, user, DEACTIVATED)
    if change.password_changed:
        ended += end_user_grants(emu, user, PASSWORD_CHANGED)
    if change.org_uuid is not None and change.org_uuid != user.org_uuid:
        # Tokens issued from now on end in the new org's UUID (emu.new_token reads it).
        user.org_uuid = change.org_uuid
        if emu.policy.revoke_on_org_change:
            ended += end_user_grants(emu, user, ORG_CHANGED)
    if change.roles is not None:
        was_full_admin = bool(FULL_ADMIN_ROLES & set(user.roles))
        user.roles = list(change.roles)
        lost = was_full_admin and not FULL_ADMIN_ROLES & set(user.roles)
        if lost and emu.policy.revoke_on_admin_loss:
            ended += end_user_grants(emu, user, ADMIN_ROLE_REMOVED)
    return ended


def user_json(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "person_id": user.person_id,
        "org_id": user.org_uuid,
        "roles": list(user.roles),
        "active": user.active,
    }


# --- blocking an integration -------------------------------------------------------------------


def block(emu: Emulator, integ: Integration, blocked: bool) -> int:
    """Block (or allow) `integ` for sign-in; with `revoke_on_block`, a block also ends its
    existing grants, which allowing it again does not bring back. Returns how many ended."""
    if integ.client_id not in emu.seeded_blocks:
        emu.seeded_blocks[integ.client_id] = integ.blocked
    integ.blocked = blocked
    if not blocked or not emu.policy.revoke_on_block:
        return 0
    ended = [g.id for g in emu.grants.values() if g.client_id == integ.client_id and not g.revoked]
    for gid in ended:
        emu.revoke_grant(gid, BLOCKED)
    return len(ended)


# --- the token limit ---------------------------------------------------------------------------


def over_token_limit(
    emu: Emulator, client_id: str, user_uuid: str, now: float, sparing: str | None = None
) -> bool:
    """True if one more access token would exceed the policy's `token_limit` for this user and
    integration. Tokens of grant `sparing` do not count: the request revokes them first."""
    limit = emu.policy.token_limit
    if limit is None:
        return False
    live = sum(
        1
        for t in emu.access.values()
        if t.client_id == client_id
        and t.user_uuid == user_uuid
        and t.grant_id != sparing
        and dead_token_cause(emu, t, True) is None
    )
    return live >= limit


# --- what reset puts back ----------------------------------------------------------------------


def remember_user(emu: Emulator, user: User) -> None:
    """Keep the user as seeded, the first time the control API changes it, for reset."""
    if user.uuid not in emu.seeded_users:
        emu.seeded_users[user.uuid] = dataclasses.replace(user, roles=list(user.roles))


def restore_registry(emu: Emulator) -> None:
    """Undo what the control API changed in users and integrations since they were seeded."""
    for uid, seeded in emu.seeded_users.items():
        user = emu.users.get(uid)
        if user is not None:
            user.org_uuid, user.roles, user.active = seeded.org_uuid, seeded.roles, seeded.active
    for client_id, blocked in emu.seeded_blocks.items():
        if client_id in emu.integrations:
            emu.integrations[client_id].blocked = blocked
    emu.seeded_users.clear()
    emu.seeded_blocks.clear()


def seeded_state(emu: Emulator) -> dict[str, Any]:
    """The seeded registry values the state file keeps (nothing when nothing was changed)."""
    out: dict[str, Any] = {}
    if emu.seeded_users:
        out["seeded_users"] = [dataclasses.asdict(u) for u in emu.seeded_users.values()]
    if emu.seeded_blocks:
        out["seeded_blocks"] = dict(emu.seeded_blocks)
    return out


def load_seeded_state(emu: Emulator, data: Mapping[str, Any]) -> None:
    for d in data.get("seeded_users", []):
        emu.seeded_users[d["uuid"]] = User(**d)
    emu.seeded_blocks.update(data.get("seeded_blocks", {}))
