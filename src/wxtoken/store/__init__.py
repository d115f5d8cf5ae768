"""The store: profiles, sealed secrets, tokens and an event log, behind one interface.

Two layers, so a new backend only stores rows:

    TokenStore = sealed.SealedStore   what the manager, keeper and CLI use: key negotiation
                                      (keys.py) and AES-GCM sealing (cipher.py)
        records.RecordStore      rows, events and the per-profile lock; no crypto
          sqlite.SQLiteRecords   the embedded default (schema in migrations.py)

          postgres.PostgresRecords   the shared store for several hosts (schema in pg_schema.py)

`open_store(settings)` is the one place that composes them; `record_store(settings)` chooses
the backend from the settings (WXTOKEN_STORE, or config.toml in the home).
"""

from __future__ import annotations

from collections.abc import Callable

from .._local import Settings
from ..errors import UsageError
from .records import (
    STATUS_LOGIN_REQUIRED,
    STATUS_OK,
    Event,
    ExpiryTrend,
    Probe,
    RecorderCopy,
    RecordStore,
    TokenRecord,
)
from .sealed import SealedStore

# What the manager, keeper and CLI use. Backends differ below it (RecordStore), not here, so
# it is the one sealed layer itself rather than a protocol every backend would have to repeat.
TokenStore = SealedStore


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

    settings = settings if settings is not None else Settings()
    clock = clock or time.time
    return SealedStore(record_store(settings, clock), settings, prompt=prompt, clock=clock)


def record_store(settings: Settings, clock: Callable[[], float]) -> RecordStore:
    """The backend the settings name: the SQLite file, or PostgreSQL for a store URL."""
    if settings.store_url is None:
        from .sqlite import SQLiteRecords

        return SQLiteRecords(settings, clock=clock)
    try:
        from .postgres import PostgresRecords
    except ImportError:
        raise UsageError(
            f"the store {settings.store_location} is PostgreSQL, and this wxtoken was installed "
            "without PostgreSQL support",
            fix="pip install 'wxtoken[postgres]' (in the environment wxtoken runs from)",
        ) from None
    return PostgresRecords(settings.store_url, settings, clock=clock)


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
