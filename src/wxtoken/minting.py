"""Minting a service app's tokens through its minter (the manager's helper for service apps).

`mint` is what `wxtoken login` does for a service app; `remint_locked` replaces a refresh Webex
refused with invalid_grant, so the manager (and the keeper, which uses it) mints again instead
of asking a person to sign in. Both hold the service app's refresh lock and ask the minter's
own TokenManager for its access token, so the minter's single flight and refresh apply; the
chain has no cycle (service_apps.py), so locks are always taken down a chain that ends.

The minter's token is checked for spark:applications_token before it is sent (when Webex
reported its scopes), so a 403 or 404 from minting is read as what it means for an app
authorized by an admin: not authorized in that org (`app_deauthorized`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import causes, intake
from .errors import Forbidden, LoginRequired, StorageError, UsageError, WxtokenError
from .grants import MintGrant
from .identity import Identity, org_id_from_token
from .results import LoginResult, RefreshResult
from .service_apps import APP_ID, MINT_SCOPE, TARGET_ORG, minter_of
from .store import TokenRecord
from .token import Token

if TYPE_CHECKING:
    from .manager import TokenManager


def mint(tm: TokenManager) -> LoginResult:
    """Mint a new grant for service app `tm.name` and store it (a service app's `login`)."""
    profile = tm.profile
    with tm.store.refresh_lock(tm.name, tm.lock_timeout):
        current = tm.store.token_record(tm.name)
        token = mint_token(tm)
        record = _write(tm, token, current, via="mint")
    # A mint answer may not list scopes; then nothing is known to be missing until a refresh.
    missing = tuple(s for s in profile.scopes if token.scopes and s not in token.scopes)
    warnings: tuple[str, ...] = ()
    if missing:
        warnings = ("Webex granted fewer scopes than asked for; missing: " + " ".join(missing),)
    return LoginResult(record, profile.scopes, token.scopes, missing, warnings)


def remint_locked(tm: TokenManager, record: TokenRecord, refused: WxtokenError) -> RefreshResult:
    """Webex refused the service app's refresh token (`refused`); mint a new grant instead.

    Called with the service app's refresh lock held. If minting fails for good (the app was
    deauthorized, the minter needs a sign-in), the profile is marked login_required with that
    cause, not the refresh's; a transient failure is counted like a failed refresh, and the next
    attempt tries the same way.
    """
    try:
        token = mint_token(tm)
    except StorageError:
        raise
    except LoginRequired as exc:
        cause = causes.told_by(exc)
        text, fix = causes.describe(cause, tm.name) or (exc.message, exc.fix)
        tm._mark_login_required(record, f"minting again failed: {text}", cause)
        raise exc.restated(
            f"profile {tm.name!r}: Webex refused its refresh token ({causes.answered(refused)}) "
            f"and minting it again failed: {text}"
            + (f" ({causes.answered(exc)})" if exc.status else ""),
            fix,
        ) from None
    except WxtokenError as exc:
        tm._record_failure(record, exc, causes.told_by(exc))
        raise
    saved = _write(tm, token, record, via="remint", why="the service app was minted again")
    return RefreshResult(
        token=token, refreshed=True, rotated=True, last_export=tm._last_export(), record=saved
    )


def mint_token(tm: TokenManager) -> Token:
    """One mint at Webex with the minter's access token; nothing stored."""
    profile = tm.profile
    minter = minter_of(profile)
    if minter is None or APP_ID not in profile.extra or TARGET_ORG not in profile.extra:
        raise UsageError(
            f"profile {tm.name!r} is not a service app, or lacks its app id, org or minter",
            fix=f"see `wxtoken profile show {tm.name}`; re-add it with `wxtoken profile add "
            f"{tm.name} --service-app ... --replace`",
        )
    with tm.peer(minter) as minter_tm:
        if minter_tm.profile.base_url != profile.base_url:
            # Checked when the profile was saved; re-checked because either may have changed.
            raise UsageError(
                f"the minter {minter!r} talks to {minter_tm.profile.base_url}, but {tm.name!r} "
                f"to {profile.base_url}; its token is not sent elsewhere",
                fix=f"wxtoken profile set {tm.name} --base-url {minter_tm.profile.base_url}",
            )
        try:
            bearer = minter_tm.token()
        except LoginRequired as exc:
            raise LoginRequired(
                f"the minter {minter!r} of {tm.name!r} cannot give a token: {exc.message}",
                fix=f"wxtoken login -p {minter}, then wxtoken login -p {tm.name}",
            ) from None
    if bearer.scopes and MINT_SCOPE not in bearer.scopes:
        raise Forbidden(
            f"the minter {minter!r}'s grant lacks {MINT_SCOPE}, so it cannot mint {tm.name!r}",
            fix=f"register {MINT_SCOPE} on {minter!r}'s app, then wxtoken login -p {minter} "
            "and accept it",
        )
    grant = MintGrant(profile.extra[APP_ID], profile.extra[TARGET_ORG], bearer.access_token)
    return tm._send(grant)


def _write(
    tm: TokenManager,
    token: Token,
    current: TokenRecord | None,
    *,
    via: str,
    why: str = "the service app was minted again",
) -> TokenRecord:
    # A service app's tokens belong to a machine account of the target org; the org is in the
    # token itself, and people/me is not asked (a service app may lack spark:people_read).
    identity = Identity(org_id=org_id_from_token(token.access_token))
    record = intake.write_new_grant(tm, token, identity, current, via=via, why=why)
    tm._cached = token
    return record
