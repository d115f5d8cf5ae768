"""TokenManager: the one orchestrator. Load, decide with the clock, refresh at most once, save.

Data flows one way: a caller asks for a token; the manager reads the store; if the token is
fresh it answers without any network or lock; otherwise it takes the profile's refresh lock,
re-reads (another process may have refreshed meanwhile), refreshes once, persists the result,
and only then hands out the access token (persist-before-use, P2).

The HTTP client is imported lazily: `wxtoken token` with a valid token never loads httpx2.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import oauth
from ._local import DEFAULT_MIN_VALID, Settings
from .errors import (
    InvalidGrant,
    LoginRequired,
    NoTokens,
    UsageError,
    WebexUnavailable,
    WxtokenError,
)
from .profile import DEFAULT_BASE_URL, Profile
from .store import STATUS_LOGIN_REQUIRED, Identity, TokenRecord, TokenStore, open_store
from .token import Token, TokenState, iso

if TYPE_CHECKING:
    from .client import RetryPolicy, WebexClient

DEFAULT_WARN_DAYS = 14

STATE_OK = "ok"
STATE_WARNING = "warning"
STATE_LOGIN_REQUIRED = "login_required"
_STATE_RANK = {STATE_OK: 0, STATE_WARNING: 1, STATE_LOGIN_REQUIRED: 2}


def worst_state(states: list[str]) -> str:
    return max(states, key=lambda s: _STATE_RANK[s], default=STATE_OK)


def resolve_profile_name(store: TokenStore, name: str | None) -> str:
    if name:
        return name
    profiles = store.list_profiles()
    if len(profiles) == 1:
        return profiles[0].name
    if not profiles:
        raise NoTokens(
            "there are no profiles yet",
            fix="wxtoken profile add NAME --client-id ID --redirect-uri URI "
            "--preset verint-calling",
        )
    names = ", ".join(p.name for p in profiles)
    raise UsageError(
        f"there are several profiles ({names}) and none was chosen",
        fix="pass -p NAME or set WXTOKEN_PROFILE=NAME",
    )


@dataclass(frozen=True)
class RefreshResult:
    token: Token = field(repr=False)
    refreshed: bool
    rotated: bool = False
    last_export: Mapping[str, Any] | None = None  # the hand-off now stale, if rotated
    record: TokenRecord | None = None  # the stored record after a refresh


@dataclass(frozen=True)
class LoginResult:
    record: TokenRecord
    requested_scopes: tuple[str, ...]
    granted_scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ProfileStatus:
    profile: str
    state: str
    reason: str | None
    access_expires_at: float | None
    refresh_expires_at: float | None
    scopes: tuple[str, ...]
    requested_scopes: tuple[str, ...]
    org_id: str | None
    user: str | None
    storage: str
    key_source: str | None
    failures: int
    last_error: str | None
    last_success_at: float | None
    base_url: str = DEFAULT_BASE_URL

    def as_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "state": self.state,
            "reason": self.reason,
            "access_expires_at": iso(self.access_expires_at),
            "refresh_expires_at": iso(self.refresh_expires_at),
            "scopes": list(self.scopes),
            "missing_scopes": [s for s in self.requested_scopes if s not in self.scopes]
            if self.access_expires_at is not None
            else [],
            "org_id": self.org_id,
            "user": self.user,
            "storage": self.storage,
            "key_source": self.key_source,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_success_at": iso(self.last_success_at),
            "base_url": self.base_url,
        }


class TokenManager:
    """Valid access tokens for one profile, refreshed exactly once across threads and processes.

    >>> tm = TokenManager("recorder")           # doctest: +SKIP
    >>> tm.access_token(min_valid=600)           # doctest: +SKIP
    """

    def __init__(
        self,
        profile: str | None = None,
        *,
        store: TokenStore | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[Profile], WebexClient] | None = None,
        retry: RetryPolicy | None = None,
        lock_timeout: float | None = None,
    ):
        self.settings = settings if settings is not None else Settings()
        self.store = store if store is not None else open_store(self.settings)
        self.name = resolve_profile_name(self.store, profile or self.settings.profile)
        self._clock = clock
        self._client_factory = client_factory
        self._retry = retry
        # Outlasts the longest refresh another process can be making (see _local.Timeouts).
        self._lock_timeout = (
            lock_timeout if lock_timeout is not None else self.settings.timeouts.lock_wait
        )
        self._cached: Token | None = None  # only ever a token that was persisted first
        self._profile: Profile | None = None
        self._guard = threading.Lock()
        # The last refresh this manager made, so callers (the CLI) can warn about a rotation
        # whichever command happened to trigger it.
        self.last_refresh: RefreshResult | None = None

    def __repr__(self) -> str:
        return f"TokenManager(profile={self.name!r}, store={self.store.location!r})"

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = self.store.get_profile(self.name)
        return self._profile

    @contextlib.contextmanager
    def client(self) -> Iterator[WebexClient]:
        """A client for this profile; closed afterwards only if this manager created it."""
        if self._client_factory is not None:
            yield self._client_factory(self.profile)
            return
        from .client import WebexClient

        client = WebexClient(
            self.profile.base_url,
            retry=self._retry,
            clock=self._clock,
            deadline=self.settings.timeouts.http_deadline,
        )
        try:
            yield client
        finally:
            client.close()

    # --- access tokens ---------------------------------------------------------------------

    def access_token(self, min_valid: float = DEFAULT_MIN_VALID) -> str:
        """A valid access token with at least `min_valid` seconds left, refreshing if needed."""
        cached = self._cached
        if cached is not None and cached.access_expires_at - self._clock() >= min_valid:
            return cached.access_token
        return self.token(min_valid).access_token

    def token(self, min_valid: float = DEFAULT_MIN_VALID) -> Token:
        record, token = self._load()
        if token.state(self._clock(), min_valid) is TokenState.FRESH:
            self._cached = token
            return token
        return self.refresh(min_valid=min_valid, seen_generation=record.generation).token

    def _load(self) -> tuple[TokenRecord, Token]:
        loaded = self.store.load_token(self.name)
        if loaded is None:
            self.profile  # noqa: B018 - raises ProfileNotFound for a typo before "no tokens"
            raise NoTokens(
                f"profile {self.name!r} has no tokens",
                fix=f"sign in with `wxtoken login -p {self.name}`",
            )
        record, _ = loaded
        if record.status == STATUS_LOGIN_REQUIRED:
            raise LoginRequired(
                f"profile {self.name!r} needs a new sign-in "
                f"({record.status_reason or 'grant lost'})",
                fix=f"wxtoken login -p {self.name}",
            )
        return loaded

    def refresh(
        self,
        *,
        force: bool = False,
        min_valid: float = DEFAULT_MIN_VALID,
        rejected: str | None = None,
        unless_newer_than: float | None = None,
        seen_generation: int | None = None,
        if_generation: int | None = None,
    ) -> RefreshResult:
        """Refresh under the profile's lock, unless the re-read token already satisfies us.

        `rejected` is an access token Webex just refused (401): if the store holds a different
        fresh one, someone else refreshed and we use theirs instead of refreshing again.
        `seen_generation` is the generation the caller read before waiting for the lock: if the
        store moved on meanwhile, the winner's token is used even when it cannot meet
        `min_valid` (a second refresh would only return the same lifetime again).
        `if_generation` makes a forced refresh conditional: it happens only if the stored
        generation is still that one (the keeper's scheduled refreshes use it, so a refresh by
        `wxtoken token` a moment earlier is not repeated).
        """
        with self.store.refresh_lock(self.name, self._lock_timeout):
            record, token = self._load()
            now = self._clock()
            if if_generation is not None and record.generation != if_generation:
                self._cached = token
                return RefreshResult(token=token, refreshed=False)
            fresh = token.state(now, min_valid) is TokenState.FRESH
            if fresh and not force and (rejected is None or token.access_token != rejected):
                self._cached = token
                return RefreshResult(token=token, refreshed=False)
            if (
                not force
                and seen_generation is not None
                and record.generation != seen_generation
                and token.state(now, 0) is not TokenState.EXPIRED
            ):
                return RefreshResult(token=token, refreshed=False)
            if (
                unless_newer_than is not None
                and rejected is None
                and 0 <= now - token.obtained_at < unless_newer_than
                and token.state(now, 0) is TokenState.FRESH
            ):
                # Someone refreshed moments ago: a second refresh would only repeat it.
                return RefreshResult(token=token, refreshed=False)
            return self._refresh_locked(record, token)

    def _refresh_locked(self, record: TokenRecord, token: Token) -> RefreshResult:
        now = self._clock()
        if token.refresh_expired(now):
            reason = "the refresh token has expired"
            self.store.mark_login_required(self.name, reason)
            raise InvalidGrant(
                f"profile {self.name!r}: {reason} (at {iso(token.refresh_expires_at)})",
                fix=f"wxtoken login -p {self.name}",
            )
        assert token.refresh_token is not None
        form = oauth.prepare_refresh_token_request(
            self.profile.client_id, self.store.client_secret(self.name), token.refresh_token
        )
        try:
            with self.client() as client:
                data, requested_at = client.token_request(form)
            new = Token.from_response(data, requested_at, previous=token)
        except InvalidGrant as exc:
            # Never delete: keep the record for diagnosis and mark the profile (P2, NL-4).
            self.store.mark_login_required(self.name, "Webex rejected the refresh token")
            raise InvalidGrant(
                exc.message, fix=f"wxtoken login -p {self.name}", tracking_id=exc.tracking_id
            ) from None
        except WebexUnavailable as exc:
            self.store.record_failure(self.name, exc.message, now)
            raise
        except WxtokenError as exc:
            self.store.record_failure(self.name, exc.message, now)
            raise
        rotated = new.refresh_token != token.refresh_token
        org = oauth.org_id_from_token(new.access_token) or record.identity.org_id
        last_export = None
        if rotated:
            exports = self.store.events(self.name, ("export",), limit=1)
            if exports:
                last_export = dict(exports[0].detail, at=iso(exports[0].at))
        saved = self.store.save_token(
            self.name,
            new,
            Identity(org_id=org),
            event="refresh",
            detail={
                "rotated": rotated,
                "access_expires_at": iso(new.access_expires_at),
                "refresh_expires_at": iso(new.refresh_expires_at),
                "previous_refresh_fp": record.refresh_fp,
            },
        )
        if rotated:
            self.store.append_event(
                self.name,
                "rotation_seen",
                {"previous_refresh_fp": record.refresh_fp, "stale_export": last_export},
            )
        self._cached = new
        self.last_refresh = RefreshResult(
            token=new, refreshed=True, rotated=rotated, last_export=last_export, record=saved
        )
        return self.last_refresh

    def status(
        self, warn_days: float = DEFAULT_WARN_DAYS, now: float | None = None
    ) -> ProfileStatus:
        """This profile's state from stored metadata: no key and no network needed."""
        return profile_status(
            self.store, self.profile, self._clock() if now is None else now, warn_days
        )

    # --- login -----------------------------------------------------------------------------

    def exchange_code(
        self, code: str, *, code_verifier: str | None, via: str, identify: bool = True
    ) -> LoginResult:
        """Redeem a code exactly once, store the tokens, then look up who signed in."""
        profile = self.profile
        form = oauth.prepare_code_token_request(
            profile.client_id,
            self.store.client_secret(self.name),
            code,
            profile.redirect_uri,
            code_verifier,
        )
        warnings: list[str] = []
        with self.client() as client:
            data, requested_at = client.token_request(form)
            token = Token.from_response(data, requested_at)
            identity = Identity(org_id=oauth.org_id_from_token(token.access_token))
            if identify:
                try:
                    me = client.people_me(token.access_token)
                    identity = Identity(
                        org_id=_org_uuid(me.get("orgId")) or identity.org_id,
                        person_id=_str(me.get("id")),
                        email=_first(me.get("emails")),
                        display_name=_str(me.get("displayName")),
                    )
                except WxtokenError as exc:
                    warnings.append(f"could not look up who signed in: {exc.message}")
        with self.store.refresh_lock(self.name, self._lock_timeout):
            record = self.store.save_token(
                self.name,
                token,
                identity,
                event="login" if via != "exchange" else "exchange",
                detail={
                    "via": via,
                    "scopes": list(token.scopes),
                    "access_expires_at": iso(token.access_expires_at),
                    "refresh_expires_at": iso(token.refresh_expires_at),
                    "org_id": identity.org_id,
                    "user": identity.email,
                },
            )
        self._cached = token
        missing = tuple(s for s in profile.scopes if s not in token.scopes)
        if missing and token.scopes:
            warnings.append(
                "Webex granted fewer scopes than requested; missing: " + " ".join(missing)
            )
        return LoginResult(record, profile.scopes, token.scopes, missing, tuple(warnings))

    # --- hand-off, verification, revocation ------------------------------------------------

    def export(self, fmt: str) -> dict[str, Any]:
        """What a recorder's data source needs, with a hand-off event recorded (no values)."""
        token = self.token(DEFAULT_MIN_VALID)
        if token.refresh_token is None:
            raise NoTokens(
                f"profile {self.name!r} has no refresh token to hand over",
                fix=f"wxtoken login -p {self.name}",
            )
        self.store.append_event(
            self.name,
            "export",
            {
                "format": fmt,
                "refresh_fp": self.store.fingerprint(token.refresh_token),
                "refresh_expires_at": iso(token.refresh_expires_at),
            },
        )
        return {
            "client_id": self.profile.client_id,
            "client_secret": self.store.client_secret(self.name),
            "refresh_token": token.refresh_token,
            "refresh_expires_at": iso(token.refresh_expires_at),
            "access_token": token.access_token,
        }

    def verify(self) -> dict[str, Any]:
        token = self.token(60)
        with self.client() as client:
            me = client.people_me(token.access_token)
            exp = client.token_expiry(token.access_token)
        record = self.store.token_record(self.name)
        granted = record.scopes if record else token.scopes
        missing = [s for s in self.profile.scopes if s not in granted]
        self.store.append_event(self.name, "verify", {"ok": not missing})
        return {
            "profile": self.name,
            "user": _first(me.get("emails")),
            "display_name": _str(me.get("displayName")),
            "org_id": _org_uuid(me.get("orgId")) or oauth.org_id_from_token(token.access_token),
            "access_expires_at": iso(exp),
            "scopes": list(granted),
            "missing_scopes": missing,
            "ok": not missing,
        }

    def revoke(self) -> None:
        """Revoke every grant of this client at Webex; drop local tokens only once confirmed."""
        token = self.token(60)
        with self.client() as client:
            client.revoke_client_grants(token.access_token, self.profile.client_id)
        with self.store.refresh_lock(self.name, self._lock_timeout):
            self.store.delete_token(self.name, event="revoked", detail={"at_webex": True})
        self._cached = None

    def logout(self) -> bool:
        with self.store.refresh_lock(self.name, self._lock_timeout):
            had = self.store.token_record(self.name) is not None
            self.profile  # noqa: B018 - raises ProfileNotFound for a typo
            self.store.delete_token(self.name, event="logout", detail={"at_webex": False})
        self._cached = None
        return had


def profile_status(
    store: TokenStore, profile: Profile, now: float, warn_days: float = DEFAULT_WARN_DAYS
) -> ProfileStatus:
    """State from stored metadata only: no key, no network, works for monitoring scripts."""
    record = store.token_record(profile.name)
    storage = store.location
    if record is None:
        return ProfileStatus(
            profile.name,
            STATE_LOGIN_REQUIRED,
            "no tokens: never signed in, or logged out",
            None,
            None,
            (),
            profile.scopes,
            None,
            None,
            storage,
            store.key_source(),
            0,
            None,
            None,
            profile.base_url,
        )
    reason = record.status_reason
    if record.status == STATUS_LOGIN_REQUIRED:
        state = STATE_LOGIN_REQUIRED
    elif record.refresh_expires_at is not None and record.refresh_expires_at <= now:
        state, reason = STATE_LOGIN_REQUIRED, "the refresh token has expired"
    elif record.refresh_fp is None and record.access_expires_at <= now:
        state, reason = (
            STATE_LOGIN_REQUIRED,
            "the access token expired and there is no refresh token",
        )
    elif (
        record.refresh_expires_at is not None
        and record.refresh_expires_at - now < warn_days * 86400
    ):
        state = STATE_WARNING
        reason = f"the refresh token expires within {warn_days:g} days"
    else:
        state, reason = STATE_OK, None
    return ProfileStatus(
        profile=profile.name,
        state=state,
        reason=reason,
        access_expires_at=record.access_expires_at,
        refresh_expires_at=record.refresh_expires_at,
        scopes=record.scopes,
        requested_scopes=profile.scopes,
        org_id=record.identity.org_id,
        user=record.identity.email,
        storage=storage,
        key_source=store.key_source(),
        failures=record.failures,
        last_error=record.last_error,
        last_success_at=record.last_success_at,
        base_url=profile.base_url,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first(value: Any) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None


def _org_uuid(org_id: Any) -> str | None:
    """Webex org ids are base64 of `ciscospark://us/ORGANIZATION/<uuid>`; we keep the UUID."""
    if not isinstance(org_id, str):
        return None
    import base64
    import binascii

    try:
        decoded = base64.b64decode(org_id + "=" * (-len(org_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return org_id.lower() if oauth.org_id_from_token(f"x_y_{org_id}") else None
    tail = decoded.rsplit("/", 1)[-1]
    return tail.lower() if oauth.org_id_from_token(f"x_y_{tail}") else None
