"""New grants coming in: a code just exchanged, or tokens adopted from elsewhere, stored the
way a sign-in stores them (the manager's exchange_code, adopt and adopt_refresh_token).

A new grant never inherits the previous person: if the people/me lookup fails, the identity is
unknown, not whoever signed in before. The recorder's copy and the expiry trend are carried
forward from the record it replaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import outcomes
from .errors import WxtokenError
from .identity import Identity, identity_from_person, org_id_from_token
from .results import LoginResult
from .store import TokenRecord
from .token import Token, iso

if TYPE_CHECKING:
    from .manager import TokenManager

# anything else is a sign-in: "login"
_EVENTS = {"exchange": "exchange", "adopt": "adopted", "mint": "minted", "remint": "reminted"}


def store_new_grant(tm: TokenManager, token: Token, *, via: str, identify: bool) -> LoginResult:
    """Look up who the tokens belong to (if asked), store them under the profile's lock, and
    say what was granted against what the profile asked for."""
    profile = tm.profile
    warnings: list[str] = []
    identity = Identity(org_id=org_id_from_token(token.access_token))
    if identify:
        try:
            identity = identity_from_person(
                tm.client.people_me(token.access_token), identity.org_id
            )
        except WxtokenError as exc:
            warnings.append(f"could not look up who signed in: {exc.message}")
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        record = write_new_grant(tm, token, identity, tm.store.token_record(tm.name), via=via)
    missing = tuple(s for s in profile.scopes if s not in token.scopes)
    if missing and token.scopes:
        warnings.append("Webex granted fewer scopes than requested; missing: " + " ".join(missing))
    return LoginResult(record, profile.scopes, token.scopes, missing, tuple(warnings))


def write_new_grant(
    tm: TokenManager,
    token: Token,
    identity: Identity,
    current: TokenRecord | None,
    *,
    via: str,
    why: str = "a new sign-in replaced the grant",
) -> TokenRecord:
    """Store a new grant over `current` (the record read under the profile's lock, which the
    caller holds), as generation + 1; the write fails if another process wrote meanwhile."""
    generation = current.generation if current is not None else None
    return tm._store_or_explain(
        lambda: tm.store.write_token(
            outcomes.new_record(
                tm.name,
                token,
                identity,
                (generation or 0) + 1,
                tm.clock(),
                previous=current,
                refresh_fp=tm._fingerprint(token.refresh_token),
                why=why,
            ),
            token,
            expect_generation=generation,
            event=_EVENTS.get(via, "login"),
            detail={
                "via": via,
                "scopes": list(token.scopes),
                "access_expires_at": iso(token.access_expires_at),
                "refresh_expires_at": iso(token.refresh_expires_at),
                "org_id": identity.org_id,
                "user": identity.email,
            },
        )
    )
