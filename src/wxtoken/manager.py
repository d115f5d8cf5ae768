"""TokenManager: the one orchestrator. Load, decide with the clock, get tokens once, save.

Data flows one way: a caller asks for a token; the manager reads the store; if the token is
fresh it answers without any network or lock; otherwise it takes the profile's refresh lock,
re-reads (another process may have refreshed meanwhile), sends one grant, persists the result,
and only then hands out the access token, so a rotated refresh token is never lost to a crash
between Webex's answer and our use of it.

The HTTP client is created lazily: `wxtoken token` with a valid token never loads httpx2.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import causes, checks, credentials, handoff, intake, minting, outcomes
from ._local import DEFAULT_MIN_VALID, Settings
from .errors import (
    ConsentDenied,
    InvalidGrant,
    LoginRequired,
    NoTokens,
    StorageError,
    UsageError,
    WxtokenError,
)
from .grants import (
    CodeGrant,
    DeviceAuthorization,
    DeviceCodeGrant,
    Grant,
    RefreshGrant,
)
from .identity import org_id_from_token
from .profile import KIND_SERVICE_APP, Profile, validate_base_url
from .reasons import Forced, Needed, RefreshReason, still_needed
from .results import HandOff, LoginResult, RefreshResult, VerifyResult
from .status import DEFAULT_WARN_DAYS, ProfileStatus, profile_status
from .store import STATUS_LOGIN_REQUIRED, Probe, TokenRecord, TokenStore, open_store
from .store.records import FIRST_PROFILE
from .token import Token, iso

if TYPE_CHECKING:
    import httpx2

    from .client import RetryPolicy, WebexClient


def resolve_profile_name(store: TokenStore, name: str | None) -> str:
    """The profile a command means: the one named (-p, WXTOKEN_PROFILE), else the default
    (`profile use`), else the only one there is."""
    if name:
        return name
    default = store.default_profile()
    if default is not None:
        return default
    profiles = store.list_profiles()
    if len(profiles) == 1:
        return profiles[0].name
    if not profiles:
        raise NoTokens("there are no profiles yet", fix=FIRST_PROFILE)
    names = ", ".join(p.name for p in profiles)
    raise UsageError(
        f"there are several profiles ({names}) and none was chosen",
        fix=f"pass -p NAME, or make one the default: wxtoken profile use {profiles[0].name}",
    )


class TokenManager:
    """Valid access tokens for one profile, refreshed exactly once across threads and processes.

    It keeps one HTTP client (and its connections) for its lifetime; use it as a context manager
    or call `close()`. A client passed in is shared and left open.

    >>> with TokenManager("recorder") as tm:     # doctest: +SKIP
    ...     tm.access_token(min_valid=600)
    """

    def __init__(
        self,
        profile: str | None = None,
        *,
        store: TokenStore | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        client: WebexClient | None = None,
        transport: httpx2.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        lock_timeout: float | None = None,
    ):
        self.settings = settings if settings is not None else Settings()
        self.store = store if store is not None else open_store(self.settings)
        self.name = resolve_profile_name(self.store, profile or self.settings.profile)
        self._clock = clock
        self._client = client
        self._own_client = client is None
        self._transport = transport
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
        # Set when Webex refused the newest of two client secrets and accepted the older, so
        # callers (the CLI, the keeper) can warn whichever command sent the request.
        self.secret_fell_back = False

    def __repr__(self) -> str:
        return f"TokenManager(profile={self.name!r}, store={self.store.location!r})"

    def __enter__(self) -> TokenManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client this manager created (a shared one stays open)."""
        with self._guard:
            client, self._client = (self._client, None) if self._own_client else (None, None)
        if client is not None:
            client.close()

    @property
    def lock_timeout(self) -> float:
        """How long to wait for the profile's refresh lock (outlasts any refresh)."""
        return self._lock_timeout

    def clock(self) -> float:
        """Now, by this manager's clock (epoch seconds)."""
        return self._clock()

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = self.store.get_profile(self.name)
        return self._profile

    @property
    def client(self) -> WebexClient:
        """The HTTP client for this profile's base URL, created on first use."""
        with self._guard:
            if self._client is None:
                from .client import WebexClient

                # Re-checked on every use, not only when the profile was saved: where the client
                # secret and tokens are sent is the one setting an attacker would change.
                validate_base_url(self.profile.base_url)
                self._client = WebexClient(
                    self.profile.base_url,
                    transport=self._transport,
                    retry=self._retry,
                    clock=self._clock,
                    deadline=self.settings.timeouts.http_deadline,
                    settings=self.settings,
                    profile=self.profile,
                )
            return self._client

    def peer(self, name: str) -> TokenManager:
        """The manager of another profile of this store (a service app's minter), sharing this
        manager's clock, settings and HTTP client when both talk to the same base URL."""
        from .network import network_key

        other = self.store.get_profile(name)
        shared = (other.base_url, network_key(other)) == (
            self.profile.base_url,
            network_key(self.profile),
        )
        return TokenManager(
            name,
            store=self.store,
            settings=self.settings,
            clock=self._clock,
            client=self.client if shared else None,
            transport=self._transport,
            retry=self._retry,
            lock_timeout=self._lock_timeout,
        )

    # --- access tokens ---------------------------------------------------------------------

    def access_token(self, min_valid: float = DEFAULT_MIN_VALID) -> str:
        """A valid access token with at least `min_valid` seconds left, refreshing if needed."""
        cached = self._cached
        if cached is not None and cached.access_expires_at - self._clock() >= min_valid:
            return cached.access_token
        return self.token(min_valid).access_token

    def token(self, min_valid: float = DEFAULT_MIN_VALID) -> Token:
        """The stored token if it has `min_valid` seconds left, else a refreshed one."""
        record, token = self._load()
        if not still_needed(Needed(min_valid), record.generation, token, self._clock()):
            self._cached = token
            return token
        return self.refresh(Needed(min_valid, seen_generation=record.generation)).token

    def _load(self) -> tuple[TokenRecord, Token]:
        try:
            loaded = self.store.load_token(self.name)
        except WxtokenError as exc:
            raise exc.for_profile(self.name) from None
        if loaded is None:
            self.profile  # noqa: B018 - raises ProfileNotFound for a typo before "no tokens"
            raise NoTokens(
                f"profile {self.name!r} has no tokens",
                fix=f"wxtoken login -p {self.name}",
            )
        record, _ = loaded
        if record.status == STATUS_LOGIN_REQUIRED:
            raise LoginRequired(
                f"profile {self.name!r} needs a new sign-in "
                f"({record.status_reason or 'grant lost'})",
                fix=f"wxtoken login -p {self.name}",
            )
        return loaded

    def refresh(self, reason: RefreshReason | None = None) -> RefreshResult:
        """Refresh under the profile's lock, unless the re-read token makes it unnecessary.

        `reason` says why (see `wxtoken.reasons`); the default is an unconditional refresh.
        """
        reason = reason if reason is not None else Forced()
        queued_at = self._clock()
        with self.store.refresh_lock(self.name, self._lock_timeout):
            record, token = self._load()
            if not still_needed(reason, record.generation, token, self._clock()):
                self._cached = token
                return RefreshResult(token=token, refreshed=False)
            failed = outcomes.failed_while_waiting(record, queued_at)
            if failed is not None:
                raise failed
            return self._refresh_locked(record, token)

    def _refresh_locked(self, record: TokenRecord, token: Token) -> RefreshResult:
        # Webex, not our copy of its stated lifetime, decides whether a grant is dead: a refresh
        # token past the expiry we computed is still presented (a wrong or tiny lifetime must
        # not lock a working grant out), and invalid_grant settles it.
        if token.refresh_token is None:
            reason = "there is no refresh token"
            self._mark_login_required(record, reason)
            raise InvalidGrant(
                f"profile {self.name!r}: {reason}", fix=f"wxtoken login -p {self.name}"
            )
        try:
            new = self._send(RefreshGrant(token.refresh_token, previous=token))
        except (InvalidGrant, ConsentDenied) as exc:
            if self.profile.kind == KIND_SERVICE_APP:
                return self._remint_locked(record, exc)
            # Never delete: keep the record for diagnosis and mark the profile with its cause.
            past = token.refresh_expired(self._clock())
            cause = causes.from_error(exc, past_stated_expiry=past)
            text, fix = causes.describe(cause, self.name) or (exc.message, exc.fix)
            self._mark_login_required(record, text, cause)
            raise exc.restated(
                f"profile {self.name!r} needs a new sign-in: {text} ({causes.answered(exc)})",
                fix,
            ) from None
        except StorageError:
            raise  # found before sending: nothing reached Webex
        except WxtokenError as exc:
            self._record_failure(record, exc, causes.told_by(exc))
            raise
        org = org_id_from_token(new.access_token) or record.identity.org_id
        mismatch = outcomes.org_mismatch(self.name, record.identity.org_id, org)
        if mismatch is not None:
            self._record_failure(record, mismatch, causes.told_by(mismatch))
            self.store.append_event(
                self.name,
                "org_mismatch",
                {"expected_org_id": record.identity.org_id, "returned_org_id": org},
            )
            raise mismatch
        rotated = new.refresh_token != token.refresh_token
        last_export = self._last_export() if rotated else None
        # A refresh learns nothing about the person: it keeps who signed in.
        saved = self._store_or_explain(
            lambda: self.store.write_token(
                outcomes.new_record(
                    self.name,
                    new,
                    replace(record.identity, org_id=org),
                    record.generation + 1,
                    self._clock(),
                    previous=record,
                    refresh_fp=self._fingerprint(new.refresh_token),
                    why="Webex rotated the refresh token",
                ),
                new,
                expect_generation=record.generation,
                event="refresh",
                detail={
                    "rotated": rotated,
                    "access_expires_at": iso(new.access_expires_at),
                    "refresh_expires_at": iso(new.refresh_expires_at),
                    "previous_refresh_fp": record.refresh_fp,
                },
            )
        )
        if rotated:
            self.store.append_event(
                self.name,
                "rotation_seen",
                {"previous_refresh_fp": record.refresh_fp, "stale_export": last_export},
            )
        self._cached = new
        self.last_refresh = RefreshResult(
            token=new,
            refreshed=True,
            rotated=rotated,
            last_export=last_export,
            record=saved,
            older_secret=self.secret_fell_back,
        )
        return self.last_refresh

    def _remint_locked(self, record: TokenRecord, refused: WxtokenError) -> RefreshResult:
        # A service app's dead refresh token is replaced by minting through its minter, not by
        # a person signing in; only if that fails is the profile marked (with minting's cause).
        result = minting.remint_locked(self, record, refused)
        self.last_refresh = result
        return result

    def _mark_login_required(
        self, record: TokenRecord, reason: str, cause: str | None = None
    ) -> None:
        marked = outcomes.login_required(record, reason, self._clock(), cause=cause)
        self.store.put_record(
            marked, event="login_required", detail={"reason": reason, "cause": cause}
        )

    def _record_failure(
        self, record: TokenRecord, exc: WxtokenError, cause: str | None = None
    ) -> None:
        failed = outcomes.failed(record, exc, self._clock(), cause)
        detail = {"error": exc.message, "exit_code": exc.exit_code, "cause": cause}
        self.store.put_record(failed, event="refresh_failed", detail=detail)

    def _fingerprint(self, secret: str | None) -> str | None:
        return None if secret is None else self.store.fingerprint(secret)

    def _send(self, grant: Grant) -> Token:
        self.secret_fell_back = False
        try:
            secrets = self.store.client_secrets(self.name)
            self.store.check_writable()  # before Webex answers with tokens we could not keep
            token, older = credentials.exchange(
                self.client, grant, self.profile.client_id, secrets, self.name
            )
        except WxtokenError as exc:
            raise exc.for_profile(self.name) from None
        if older:
            self.secret_fell_back = True
            self.store.append_event(self.name, "client_secret_fallback", {})
        return token

    def _store_or_explain(self, write: Callable[[], TokenRecord]) -> TokenRecord:
        """Run a write of tokens Webex already issued; if it fails, say what that means."""
        try:
            return write()
        except StorageError as exc:
            raise StorageError(
                f"Webex issued new tokens for {self.name!r}, but they could not be stored "
                f"({exc.message}); the store still holds the previous ones, which may no longer "
                "work if Webex rotates refresh tokens",
                fix=f"{exc.fix}; then `wxtoken refresh -p {self.name}`, and if that says the "
                f"grant is invalid, `wxtoken login -p {self.name}`",
            ) from None

    def _last_export(self) -> dict[str, Any] | None:
        exports = self.store.events(self.name, ("export",), limit=1)
        if not exports:
            return None
        return dict(exports[0].detail, at=iso(exports[0].at))

    def status(
        self, warn_days: float = DEFAULT_WARN_DAYS, now: float | None = None
    ) -> ProfileStatus:
        """This profile's state from stored metadata: no key and no network needed."""
        return profile_status(
            self.store, self.profile, self._clock() if now is None else now, warn_days
        )

    # --- sign-in ---------------------------------------------------------------------------

    def exchange_code(
        self, code: str, *, code_verifier: str | None, via: str, identify: bool = True
    ) -> LoginResult:
        """Redeem a code exactly once, look up who signed in, and store the tokens."""
        profile = self.profile
        if profile.kind == KIND_SERVICE_APP:
            raise UsageError(
                f"{self.name!r} is a service app: its tokens are minted, not exchanged for a code",
                fix=f"wxtoken login -p {self.name}",
            )
        token = self._send(CodeGrant(code, profile.redirect_uri, code_verifier))
        return self._store_new_grant(token, via=via, identify=identify)

    def mint(self) -> LoginResult:
        """A service app's sign-in: mint a new grant through its minter and store it."""
        return minting.mint(self)

    def adopt(self, token: Token, *, identify: bool = True) -> LoginResult:
        """Take over tokens obtained elsewhere, as a sign-in would store them.

        For a grant that already exists outside wxtoken (a recorder's data source, another
        tool): wxtoken then refreshes, watches and hands it over like its own. With `identify`,
        Webex is asked who the tokens belong to.
        """
        return self._store_new_grant(token, via="adopt", identify=identify)

    def adopt_refresh_token(self, refresh_token: str, *, identify: bool = True) -> LoginResult:
        """Take over a grant known only by its refresh token: redeem it once, store the result.

        If Webex rotates refresh tokens, the copy held elsewhere is stale afterwards; the
        result's record and the event log say so, as for any rotation.
        """
        token = self._send(RefreshGrant(refresh_token))
        return self._store_new_grant(token, via="adopt", identify=identify)

    def _store_new_grant(self, token: Token, *, via: str, identify: bool) -> LoginResult:
        result = intake.store_new_grant(self, token, via=via, identify=identify)
        self._cached = token
        return result

    # --- hand-off, checks at Webex, revocation ---------------------------------------------

    def export(self, fmt: str) -> HandOff:
        """What a recorder's data source needs; the hand-off is recorded (no values)."""
        return handoff.export(self, fmt)

    def mark_current(self) -> None:
        """Record that the recorder holds the current refresh token (updated by other means)."""
        handoff.export(self, handoff.MARKED_CURRENT)

    def verify(self) -> VerifyResult:
        """Ask Webex who the token belongs to, until when, and whether the grant has the scopes
        and the signed-in person the roles the profile needs."""
        return checks.verify(self)

    def probe(self) -> Probe:
        """Ask Webex, without refreshing, whether the grant is alive; record what it said.

        A dead grant is marked login_required with its cause; nothing is deleted.
        """
        return checks.probe_and_record(self)

    def siblings(self) -> list[str]:
        """Other local profiles a revocation of this one reaches (same client, same org)."""
        return handoff.siblings(self)

    def revoke(self) -> list[str]:
        """Revoke the client's grants in the org at Webex, drop local tokens, mark siblings
        login_required; returns the siblings marked."""
        marked = handoff.revoke(self)
        self._cached = None
        return marked

    def logout(self) -> bool:
        """Remove the local tokens only; True if there were any."""
        had = handoff.logout(self)
        self._cached = None
        return had

    # --- device sign-in (login/device.py runs the loop) -------------------------------------

    def device_authorize(self) -> DeviceAuthorization:
        """Ask Webex for a device code and the code a person approves (one request)."""
        try:
            return self.client.device_authorize(self.profile.client_id, self.profile.scopes)
        except WxtokenError as exc:
            raise exc.for_profile(self.name) from None

    def redeem_device_code(self, device_code: str) -> LoginResult:
        """Poll once; once approved, look up who signed in and store the tokens like any
        sign-in (recorded as `via="device"`). Pending and slow_down arrive as OAuthError with
        `.error` set, for the caller's loop."""
        token = self._send(DeviceCodeGrant(device_code))
        return self._store_new_grant(token, via="device", identify=True)


__all__ = ["TokenManager", "resolve_profile_name"]
