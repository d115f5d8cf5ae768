"""The embedded store's write-transaction object (`RecordTx`) that SQLiteRecords hands out.

Kept apart from the connection and transaction handling in sqlite.py: this is the SQL, that is
the plumbing. The column mapping both backends share is rows.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

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


class Tx:
    """RecordTx over one connection inside BEGIN IMMEDIATE."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float]):
        self.conn = conn
        self._clock = clock
        self.deleted = False

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: Mapping[str, str]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items())
        )

    def profile(self, name: str) -> ProfileRow | None:
        r = self.conn.execute(
            f"SELECT {PROFILE_COLS} FROM profiles WHERE name = ?", (name,)
        ).fetchone()
        return None if r is None else profile_from_row(r)

    def profiles(self) -> list[ProfileRow]:
        rows = self.conn.execute(f"SELECT {PROFILE_COLS} FROM profiles ORDER BY name")
        return [profile_from_row(r) for r in rows.fetchall()]

    def put_profile(self, row: ProfileRow) -> None:
        self.conn.execute(
            f"INSERT INTO profiles({PROFILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, client_id=excluded.client_id, "
            "redirect_uri=excluded.redirect_uri, scopes=excluded.scopes, "
            "base_url=excluded.base_url, extra=excluded.extra, "
            "client_secret=excluded.client_secret, "
            "old_client_secret=excluded.old_client_secret, "
            "secret_added_at=excluded.secret_added_at",
            profile_values(row),
        )

    def delete_profile(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = ?", (name,))
        self.conn.execute("DELETE FROM profiles WHERE name = ?", (name,))
        self.deleted = True

    def token(self, name: str) -> TokenRow | None:
        r = self.conn.execute(TOKEN_SELECT + "?", (name,)).fetchone()
        return token_from_row(name, r)

    def put_token(self, row: TokenRow) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO tokens(profile, {RECORD_COLS}, access_token, refresh_token) "
            f"VALUES ({', '.join('?' * (RECORD_WIDTH + 3))})",
            (row.record.profile, *record_values(row.record), row.access_token, row.refresh_token),
        )

    def put_record(self, record: TokenRecord) -> None:
        sets = ", ".join(f"{c.strip()} = ?" for c in RECORD_COLS.split(","))
        self.conn.execute(
            f"UPDATE tokens SET {sets} WHERE profile = ?",
            (*record_values(record), record.profile),
        )

    def delete_token(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = ?", (name,))
        self.deleted = True

    def event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        self.copy_event(Event(0, self._clock(), profile, kind, detail))

    def copy_event(self, event: Event) -> None:
        self.conn.execute(
            "INSERT INTO events(at, profile, kind, detail) VALUES (?, ?, ?, ?)",
            (event.at, event.profile, event.kind, json.dumps(dict(event.detail), sort_keys=True)),
        )
