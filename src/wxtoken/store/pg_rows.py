"""The shared store's write-transaction object (`RecordTx`) on PostgreSQL.

The same statements as sqlite_rows.py in PostgreSQL's dialect, over one psycopg connection
inside a transaction (or a savepoint of the refresh lock's transaction, see postgres.py). Every
change to a profile or its tokens also sends a NOTIFY on `CHANGED_CHANNEL` with the profile's
name: delivered at commit, only if the change commits, so keepers on other hosts drop what they
cached about it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from .records import Event, ProfileRow, TokenRecord, TokenRow
from .rows import (
    PROFILE_COLS,
    RECORD_COLS,
    RECORD_WIDTH,
    TOKEN_SELECT,
    profile_from_row,
    profile_values,
    record_values,
    token_from_row,
)

CHANGED_CHANNEL = "wxtoken_changed"

_PROFILE_UPSERT = (
    f"INSERT INTO profiles({PROFILE_COLS}) VALUES ({', '.join(['%s'] * 11)}) "
    "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, client_id=excluded.client_id, "
    "redirect_uri=excluded.redirect_uri, scopes=excluded.scopes, base_url=excluded.base_url, "
    "extra=excluded.extra, client_secret=excluded.client_secret, "
    "old_client_secret=excluded.old_client_secret, secret_added_at=excluded.secret_added_at"
)
_RECORD_SETS = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in RECORD_COLS.split(","))
# The keeper's hot writes notify in the same statement (a CTE), saving a round trip each.
_NOTIFY_RETURNED = f" RETURNING profile) SELECT pg_notify('{CHANGED_CHANNEL}', profile) FROM up"
_TOKEN_UPSERT = (
    f"WITH up AS (INSERT INTO tokens(profile, {RECORD_COLS}, access_token, refresh_token) "
    f"VALUES ({', '.join(['%s'] * (RECORD_WIDTH + 3))}) ON CONFLICT(profile) DO UPDATE SET "
    f"{_RECORD_SETS}, access_token = excluded.access_token, "
    "refresh_token = excluded.refresh_token" + _NOTIFY_RETURNED
)
_RECORD_UPDATE = (
    "WITH up AS (UPDATE tokens SET "
    + ", ".join(f"{c.strip()} = %s" for c in RECORD_COLS.split(","))
    + " WHERE profile = %s"
    + _NOTIFY_RETURNED
)


class PgTx:
    """RecordTx over one connection inside a transaction."""

    def __init__(self, conn: psycopg.Connection[Any], clock: Callable[[], float]):
        self.conn = conn
        self._clock = clock

    def _changed(self, name: str) -> None:
        self.conn.execute("SELECT pg_notify(%s, %s)", (CHANGED_CHANNEL, name))

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meta(key, value) VALUES (%s, %s) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def profile(self, name: str) -> ProfileRow | None:
        r = self.conn.execute(
            f"SELECT {PROFILE_COLS} FROM profiles WHERE name = %s", (name,)
        ).fetchone()
        return None if r is None else profile_from_row(r)

    def profiles(self) -> list[ProfileRow]:
        rows = self.conn.execute(f"SELECT {PROFILE_COLS} FROM profiles ORDER BY name")
        return [profile_from_row(r) for r in rows.fetchall()]

    def put_profile(self, row: ProfileRow) -> None:
        self.conn.execute(_PROFILE_UPSERT, profile_values(row))
        self._changed(row.name)

    def delete_profile(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = %s", (name,))
        self.conn.execute("DELETE FROM profiles WHERE name = %s", (name,))
        self._changed(name)

    def token(self, name: str) -> TokenRow | None:
        r = self.conn.execute(TOKEN_SELECT + "%s", (name,)).fetchone()
        return token_from_row(name, r)

    def put_token(self, row: TokenRow) -> None:
        self.conn.execute(
            _TOKEN_UPSERT,
            (row.record.profile, *record_values(row.record), row.access_token, row.refresh_token),
        )

    def put_record(self, record: TokenRecord) -> None:
        self.conn.execute(_RECORD_UPDATE, (*record_values(record), record.profile))

    def delete_token(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = %s", (name,))
        self._changed(name)

    def event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        self.copy_event(Event(0, self._clock(), profile, kind, detail))

    def copy_event(self, event: Event) -> None:
        self.conn.execute(
            "INSERT INTO events(at, profile, kind, detail) VALUES (%s, %s, %s, %s)",
            (event.at, event.profile, event.kind, json.dumps(dict(event.detail), sort_keys=True)),
        )
