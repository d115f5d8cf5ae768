"""Why a grant is dead or degraded: one name, one sentence and one fix per cause.

`status`, the keeper's alerts, the event log and the console all show a cause the same way,
from this table. A cause is named only when something tells it: Webex's answer (an OAuth error
code it documents, a 403 on an admin endpoint checked against people/me's roles, the org in a
token), or wxtoken's own knowledge (a local expiry, a sibling profile's `revoke`). A 401 only
says "invalid, expired or revoked"; then the cause is `revoked`, its text says Webex did not tell
more, and the detail keeps what Webex answered, with its trackingId. Never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import OrgMismatch, WxtokenError


@dataclass(frozen=True)
class Cause:
    """A named cause: what happened, and the command that fixes it (`{profile}` is filled in)."""

    name: str
    text: str
    fix: str


# What frees a user held at Webex's token limit; a refresh or a sign-in is then tried again.
TOKEN_LIMIT_RELIEF = (
    "revoke this user's unused grants (Control Hub, or `wxtoken revoke` on a profile no "
    "longer used)"
)
_SIGN_IN = "wxtoken login -p {profile}, then wxtoken export -p {profile} into the recorder"

# Not a cause of death but a warning: a request worked only with the older of two client secrets
# held during a rotation, so the newest is wrong (mistyped, or not the one Webex shows now).
OLDER_SECRET = Cause(
    "older_secret",
    "Webex refused the newest client secret (invalid_client) and accepted the older one",
    "check the newest against the integration's page (developer.webex.com > My Webex Apps) "
    "and enter it again: wxtoken profile set {profile} --client-secret-stdin",
)

CAUSES: dict[str, Cause] = {
    c.name: c
    for c in (
        Cause(
            "expired",
            "the refresh token has expired (unused for too long, or its fixed lifetime ran out)",
            _SIGN_IN,
        ),
        Cause(
            "revoked",
            "Webex no longer accepts the grant: it was revoked (in Control Hub, by `wxtoken "
            "revoke`, by another app), the user changed password, left or was deactivated, or "
            "the integration was blocked; Webex's answer does not say which",
            _SIGN_IN,
        ),
        Cause(
            "revoked_by_sibling",
            "the grant was revoked through another profile of the same integration",
            _SIGN_IN,
        ),
        Cause(
            "user_changed",
            "the user who signed in changed password or was deactivated (Webex said so)",
            "sign in as an active Full Admin: " + _SIGN_IN,
        ),
        Cause(
            "admin_role_lost",
            "the user who signed in no longer holds an admin role Webex requires",
            "sign in as a Full Admin: wxtoken login -p {profile}",
        ),
        Cause(
            "blocked",
            "the integration is blocked in Control Hub (Webex denied it access)",
            "ask a Control Hub admin to allow the integration (Apps > Integrations), then "
            "wxtoken login -p {profile}",
        ),
        Cause(
            "token_limit",
            "the user holds too many active tokens for this integration (tokenlimit_reached)",
            TOKEN_LIMIT_RELIEF + ", then try again: wxtoken refresh -p {profile}",
        ),
        Cause(
            "scopes_missing",
            "the grant lacks scopes the profile needs",
            "register the scopes on the integration, then wxtoken login -p {profile} and accept "
            "them all",
        ),
        Cause(
            "forbidden",
            "Webex refused: a scope, an admin role or a licence is missing (Webex's answer does "
            "not say which)",
            "check with wxtoken verify -p {profile}, then wxtoken login -p {profile} as a Full "
            "Admin",
        ),
        Cause(
            "org_changed",
            "Webex answered for another org than the one the grant was made in",
            "check who signed in (wxtoken verify -p {profile}), then wxtoken login -p {profile} "
            "as an admin of the right org",
        ),
    )
}


def describe(name: str | None, profile: str) -> tuple[str, str] | None:
    """(text, fix) of a named cause, with the profile filled into the fix."""
    cause = CAUSES.get(name or "")
    if cause is None:
        return None
    return cause.text, cause.fix.replace("{profile}", profile)


def told_by(exc: WxtokenError) -> str | None:
    """The cause Webex's answer names by itself, or None when it tells no more than "refused".

    Webex's one refresh refusal lists every possibility ("invalid, expired, revoked, or was
    issued to another client"), so a word counts only when the answer does not also list the
    others.
    """
    if isinstance(exc, OrgMismatch):
        return "org_changed"
    if exc.error == "tokenlimit_reached":
        return "token_limit"
    if exc.error in ("access_denied", "unauthorized_client"):
        return "blocked"
    if exc.status == 403:
        return "forbidden"
    said = (exc.said or "").lower()
    if any(word in said for word in ("password", "deactivat", "inactive user")):
        return "user_changed"
    if exc.error == "invalid_grant" and "expired" in said and "revoked" not in said:
        return "expired"
    return None


def from_error(exc: WxtokenError, *, past_stated_expiry: bool = False) -> str:
    """The cause of a grant Webex refused: what its answer names; else `expired` when the
    refresh token is past the expiry Webex stated for it (our own knowledge); else `revoked`."""
    return told_by(exc) or ("expired" if past_stated_expiry else "revoked")


def answered(exc: WxtokenError) -> str:
    """Webex's refusal in brief (its status and OAuth code); its words stay in the event log."""
    parts = [f"HTTP {exc.status}" if exc.status else "", exc.error or ""]
    return "Webex answered " + (" ".join(p for p in parts if p) or "nothing")
