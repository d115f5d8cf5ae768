"""What a profile's grant is handed to, or taken from: the recorder's copy, a revocation that
reaches sibling profiles, and logout. The manager's methods call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import outcomes
from .errors import NoTokens
from .results import HandOff
from .store import STATUS_LOGIN_REQUIRED
from .token import iso

if TYPE_CHECKING:
    from .manager import TokenManager

MARKED_CURRENT = "marked-current"  # the export format of `export --mark-current`


def export(tm: TokenManager, fmt: str) -> HandOff:
    """What a recorder's data source needs; the hand-off is recorded (fingerprints, no values)
    and the recorder's copy becomes `current`."""
    tm.token()  # refreshed first if it needs to be
    # What is handed over and what is recorded as handed over are read and written under the
    # profile's lock, so a refresh cannot slip between them (nor be overwritten by them).
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        record, token = tm._load()
        if token.refresh_token is None:
            raise NoTokens(
                f"profile {tm.name!r} has no refresh token to hand over",
                fix=f"wxtoken login -p {tm.name}",
            )
        tm.store.put_record(
            outcomes.exported(record, fmt, tm.clock()),
            event="export",
            detail={
                "format": fmt,
                "refresh_fp": record.refresh_fp,
                "refresh_expires_at": iso(record.refresh_expires_at),
            },
        )
    return HandOff(
        client_id=tm.profile.client_id,
        client_secret=tm.store.client_secret(tm.name),
        refresh_token=token.refresh_token,
        refresh_expires_at=token.refresh_expires_at,
        access_token=token.access_token,
    )


def siblings(tm: TokenManager) -> list[str]:
    """Other local profiles of the same integration (client id) in the same org: a revocation
    at Webex ends their grants too, since it revokes every grant of the client in the org."""
    own = tm.store.token_record(tm.name)
    org = own.identity.org_id if own else None
    found = []
    for p in tm.store.list_profiles():
        if p.name == tm.name or p.client_id != tm.profile.client_id:
            continue
        rec = tm.store.token_record(p.name)
        if rec is not None and (org is None or rec.identity.org_id in (org, None)):
            found.append(p.name)
    return found


def revoke(tm: TokenManager) -> list[str]:
    """Revoke every grant of the client in the org at Webex; drop local tokens once confirmed;
    mark sibling profiles login_required. Returns the siblings marked."""
    token = tm.token(60)
    marked = siblings(tm)
    tm.client.revoke_client_grants(token.access_token, tm.profile.client_id)
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        tm.store.delete_token(tm.name, event="revoked", detail={"at_webex": True})
    reason = f"revoked by `wxtoken revoke -p {tm.name}`"
    for name in marked:
        with tm.store.refresh_lock(name, tm.lock_timeout):
            rec = tm.store.token_record(name)
            if rec is None or rec.status == STATUS_LOGIN_REQUIRED:
                continue
            dead = outcomes.login_required(rec, reason, tm.clock(), cause="revoked_by_sibling")
            tm.store.put_record(dead, event="login_required", detail={"reason": reason})
    return marked


def logout(tm: TokenManager) -> bool:
    """Remove the local tokens only; True if there were any."""
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        had = tm.store.token_record(tm.name) is not None
        tm.profile  # noqa: B018 - raises ProfileNotFound for a typo
        tm.store.delete_token(tm.name, event="logout", detail={"at_webex": False})
    return had
