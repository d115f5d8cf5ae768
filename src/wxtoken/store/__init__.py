"""The TokenStore interface: what the manager needs from any backend, nothing SQLite-shaped.

A backend keeps profiles, their client secrets, their tokens and an append-only event log, and
offers one lock per profile that spans read, refresh request and write (single flight). The
embedded default is `store.sqlite.SQLiteStore`; a shared backend (PostgreSQL) implements the same
protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._local import Settings
from ..profile import Profile
from ..token import Token

STATUS_OK = "ok"
STATUS_LOGIN_REQUIRED = "login_required"


@dataclass(frozen=True)
class Identity:
    """Who signed in, from /v1/people/me (or only the org, read from the token suffix)."""

    org_id: str | None = None
    person_id: str | None = None
    email: str | None = None
    display_name: str | None = None


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


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    profile: str | None
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class TokenStore(Protocol):
    @property
    def location(self) -> str: ...

    def key_source(self) -> str | None: ...

    def list_profiles(self) -> list[Profile]: ...

    def get_profile(self, name: str) -> Profile: ...

    def add_profile(self, profile: Profile, client_secret: str, *, replace: bool) -> None: ...

    def remove_profile(self, name: str) -> None: ...

    def client_secret(self, name: str) -> str: ...

    def token_record(self, name: str) -> TokenRecord | None: ...

    def all_token_records(self) -> dict[str, TokenRecord]: ...

    def load_token(self, name: str) -> tuple[TokenRecord, Token] | None: ...

    def save_token(
        self, name: str, token: Token, identity: Identity, *, event: str, detail: Mapping[str, Any]
    ) -> TokenRecord: ...

    def delete_token(self, name: str, *, event: str, detail: Mapping[str, Any]) -> None: ...

    def mark_login_required(self, name: str, reason: str) -> None: ...

    def record_failure(self, name: str, error: str, at: float) -> None: ...

    def append_event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None: ...

    def events(
        self, profile: str | None = None, kinds: tuple[str, ...] = (), limit: int = 100
    ) -> list[Event]: ...

    def refresh_lock(self, name: str, timeout: float) -> AbstractContextManager[None]: ...

    def fingerprint(self, secret: str) -> str: ...


def open_store(
    settings: Settings | None = None, prompt: Callable[[str, bool], str] | None = None
) -> TokenStore:
    """The store the settings name (the embedded one in WXTOKEN_HOME): the one composition root.

    `prompt(label, confirm)` asks for a passphrase on a terminal; without it a store that needs
    one and has no WXTOKEN_PASSPHRASE fails with a clear error.
    """
    from .sqlite import SQLiteStore

    return SQLiteStore(settings if settings is not None else Settings(), prompt=prompt)


def iter_names(store: TokenStore) -> Iterator[str]:
    for p in store.list_profiles():
        yield p.name
