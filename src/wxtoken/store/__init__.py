"""The store: profiles, sealed secrets, tokens and an event log, behind one interface.

Two layers, so a new backend only stores rows:

    TokenStore (this protocol)   what the manager, keeper and CLI use
      sealed.SealedStore         key negotiation (keys.py), AES-GCM sealing (cipher.py)
        records.RecordStore      rows, events and the per-profile lock; no crypto
          sqlite.SQLiteRecords   the embedded default (schema in migrations.py)

`open_store(settings)` is the one place that composes them. A shared PostgreSQL backend is a
second RecordStore; nothing above it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .._local import Settings
from ..profile import Profile
from ..token import Token
from .records import (
    STATUS_LOGIN_REQUIRED,
    STATUS_OK,
    Event,
    ExpiryTrend,
    Probe,
    RecorderCopy,
    TokenRecord,
)


class TokenStore(Protocol):
    """What the manager, keeper and CLI need from a store (implemented by SealedStore)."""

    @property
    def location(self) -> str: ...

    def key_source(self) -> str | None: ...

    def unlock(self, create: bool = False) -> None: ...

    def list_profiles(self) -> list[Profile]: ...

    def get_profile(self, name: str) -> Profile: ...

    def save_profile(
        self, profile: Profile, client_secret: str | None, *, replace: bool
    ) -> bool: ...

    def remove_profile(self, name: str) -> None: ...

    def client_secret(self, name: str) -> str: ...

    def token_record(self, name: str) -> TokenRecord | None: ...

    def all_token_records(self) -> dict[str, TokenRecord]: ...

    def load_token(self, name: str) -> tuple[TokenRecord, Token] | None: ...

    def write_token(
        self,
        record: TokenRecord,
        token: Token,
        *,
        expect_generation: int | None,
        event: str,
        detail: Mapping[str, Any],
    ) -> TokenRecord: ...

    def put_record(self, record: TokenRecord, *, event: str, detail: Mapping[str, Any]) -> None: ...

    def delete_token(self, name: str, *, event: str, detail: Mapping[str, Any]) -> None: ...

    def append_event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None: ...

    def events(
        self,
        profile: str | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 100,
        since: float | None = None,
    ) -> list[Event]: ...

    def refresh_lock(self, name: str, timeout: float) -> AbstractContextManager[None]: ...

    def fingerprint(self, secret: str) -> str: ...

    def check_writable(self) -> None: ...

    def close(self) -> None: ...


def open_store(
    settings: Settings | None = None,
    prompt: Callable[[str, bool], str] | None = None,
    clock: Callable[[], float] | None = None,
) -> TokenStore:
    """The store the settings name: the one composition root.

    `prompt(label, confirm)` asks for a passphrase on a terminal; without it, a store that
    needs one and has no WXTOKEN_PASSPHRASE fails with a clear error.
    """
    import time

    from .sealed import SealedStore
    from .sqlite import SQLiteRecords

    settings = settings if settings is not None else Settings()
    clock = clock or time.time
    return SealedStore(SQLiteRecords(settings, clock=clock), settings, prompt=prompt, clock=clock)


__all__ = [
    "STATUS_LOGIN_REQUIRED",
    "STATUS_OK",
    "Event",
    "ExpiryTrend",
    "Probe",
    "RecorderCopy",
    "TokenRecord",
    "TokenStore",
    "open_store",
]
