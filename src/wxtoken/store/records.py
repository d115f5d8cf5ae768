"""The record store: rows, events and the per-profile lock of a backend, and nothing about crypto.

A backend (SQLite, or PostgreSQL for several hosts) stores what it is given: profile rows whose
client secret is already sealed, token rows whose tokens are already sealed, plaintext metadata,
and an append-only event log. It decides nothing: generations, identities and states are computed by
the manager, sealing by `sealed.SealedStore`. What a backend must guarantee:

- `write()` is one atomic transaction; two writers never interleave inside it;
- `refresh_lock(name)` is held across read -> HTTP -> write by one process (or host) at a time,
  and dies with its holder, so a killed process never leaves a stale lock;
- reads are consistent with the last committed write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..identity import Identity

# How to make the first profile: an example to adapt (no profile exists to name yet).
# The meta key naming the default profile; the hot path reads it too (_local.DEFAULT_PROFILE_SQL).
DEFAULT_PROFILE = "default_profile"
FIRST_PROFILE = (
    "create one: wxtoken profile add recorder --client-id <Client ID> "
    "--redirect-uri http://127.0.0.1:8765/callback --preset verint-calling"
)

STATUS_OK = "ok"
STATUS_LOGIN_REQUIRED = "login_required"


@dataclass(frozen=True)
class Probe:
    """What Webex said when last asked, without refreshing, whether the grant is alive."""

    at: float
    verdict: str  # alive | dead | degraded | unknown (the probe itself failed)
    cause: str | None = None  # a name from wxtoken.causes when Webex's answer tells
    detail: str | None = None  # what was seen (status, Webex's words, trackingId); no secret
    endpoint: str = "none"  # tokenExpiry | people/me | none (nothing could be asked)


@dataclass(frozen=True)
class RecorderCopy:
    """The refresh token handed to a recorder: none yet, current (what the store holds), or
    stale (Webex rotated it, or a new sign-in replaced the grant, after the hand-off)."""

    state: str = "none"
    exported_at: float | None = None
    format: str | None = None
    refresh_fp: str | None = None  # fingerprint of the refresh token handed over
    stale_since: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ExpiryTrend:
    """Whether this grant's refresh-token expiry slides on use or is fixed, as observed from
    Webex's answers at least a day apart (unknown until then)."""

    state: str = "unknown"  # unknown | slides | fixed
    anchor_at: float | None = None  # the observation the next one is compared with
    anchor_expiry: float | None = None


@dataclass(frozen=True)
class TokenRecord:
    """Everything about a profile's tokens that can be read without the key."""

    profile: str
    access_expires_at: float
    refresh_expires_at: float | None
    scopes: tuple[str, ...]
    obtained_at: float
    identity: Identity
    generation: int
    status: str
    status_reason: str | None
    access_fp: str | None
    refresh_fp: str | None
    failures: int = 0
    last_error: str | None = None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    # The exit code of the last failure, so a process that waited behind a failed refresh can
    # report what the refresher saw (e.g. 5 for an unreachable Webex) instead of retrying.
    last_error_code: int | None = None
    # What was odd about the answer that issued these tokens (see Token.notes).
    notes: tuple[str, ...] = ()
    cause: str | None = None  # why the grant is dead or degraded (wxtoken.causes), when known
    probe: Probe | None = None
    copy: RecorderCopy = field(default_factory=RecorderCopy)
    trend: ExpiryTrend = field(default_factory=ExpiryTrend)


@dataclass(frozen=True)
class Event:
    """One entry of the append-only event log; `detail` never holds a secret, only fingerprints."""

    id: int
    at: float
    profile: str | None
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileRow:
    """A profile as stored: plaintext settings and the sealed client secret (and, while the
    secret is being rotated, the sealed older one and when the newest was added)."""

    name: str
    kind: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    base_url: str
    extra: Mapping[str, str]
    secret: bytes = field(repr=False)
    created_at: float = 0.0
    old_secret: bytes | None = field(default=None, repr=False)
    secret_added_at: float | None = None


@dataclass(frozen=True)
class TokenRow:
    """A profile's tokens as stored: the metadata record and the two sealed tokens."""

    record: TokenRecord
    access_token: bytes = field(repr=False)
    refresh_token: bytes | None = field(repr=False)


class RecordTx(Protocol):
    """Reads and writes inside one write transaction."""

    def meta(self) -> dict[str, str]: ...

    def set_meta(self, values: Mapping[str, str]) -> None: ...

    def profile(self, name: str) -> ProfileRow | None: ...

    def profiles(self) -> list[ProfileRow]: ...

    def put_profile(self, row: ProfileRow) -> None:
        """Insert, or replace the row of that name (its tokens stay unless deleted)."""
        ...

    def delete_profile(self, name: str) -> None:
        """Delete the profile and its tokens."""
        ...

    def token(self, name: str) -> TokenRow | None: ...

    def put_token(self, row: TokenRow) -> None:
        """Insert or replace the profile's token row."""
        ...

    def put_record(self, record: TokenRecord) -> None:
        """Update the metadata of an existing token row; the sealed tokens stay."""
        ...

    def delete_token(self, name: str) -> None: ...

    def event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None: ...

    def copy_event(self, event: Event) -> None:
        """Append an event as it was (its time kept, a new id): `wxtoken store copy`."""
        ...


class Leadership(Protocol):
    """Which of several keepers sharing a store acts for a group of profiles."""

    identity: str

    def lead(self) -> bool:
        """Whether this keeper leads now, taking the lead if it is free."""
        ...

    def leader(self) -> str | None:
        """The identity of the keeper that leads now (None: none does)."""
        ...

    def close(self) -> None: ...


class SoleLeader:
    """The embedded store has one host and one keeper (its socket says so): it always leads."""

    def __init__(self, identity: str):
        self.identity = identity

    def lead(self) -> bool:
        return True

    def leader(self) -> str | None:
        return self.identity

    def close(self) -> None:
        return None


class RecordStore(Protocol):
    """A backend for the sealed store: see the module docstring for what it guarantees."""

    @property
    def location(self) -> str:
        """Where the data is, for messages (a path, or a DSN without its password)."""
        ...

    def exists(self) -> bool:
        """Whether a store was created here (reading never creates one)."""
        ...

    def write(self, doing: str, *, create: bool = False) -> AbstractContextManager[RecordTx]:
        """One atomic write transaction; `doing` names it in error messages."""
        ...

    def meta(self) -> dict[str, str]: ...

    def profiles(self) -> list[ProfileRow]: ...

    def profile(self, name: str) -> ProfileRow | None: ...

    def token(self, name: str) -> TokenRow | None: ...

    def records(self) -> dict[str, TokenRecord]:
        """Every profile's token metadata in one read (the keeper's pass over thousands)."""
        ...

    def events(
        self,
        profile: str | None,
        kinds: tuple[str, ...],
        limit: int,
        since: float | None = None,
    ) -> list[Event]:
        """The newest events first (at or after `since`, when given)."""
        ...

    def refresh_lock(self, name: str, timeout: float) -> AbstractContextManager[None]: ...

    def check_writable(self) -> None:
        """Raise StorageError unless a token write would succeed now (space, permissions).

        Asked before a request whose answer must be stored: once Webex has answered with
        rotated tokens, failing to store them loses the grant.
        """
        ...

    def leadership(self, group: str, identity: str) -> Leadership:
        """The lead among keepers of `group` (the profiles they keep) sharing this store."""
        ...

    def leaders(self) -> list[str]:
        """The keepers leading now, for `status` and `store info` (empty: not known here)."""
        ...

    def watch(self, changed: Callable[[str | None], None], stopping: threading.Event) -> None:
        """Call `changed(profile)` whenever another process changes a profile, until `stopping`
        (`changed(None)`: anything may have changed). Returns at once if nobody else can."""
        ...

    def reserve(self, threads: int) -> None:
        """Say that up to `threads` threads use the store at once (a pool sizes itself)."""
        ...

    def close(self) -> None: ...
