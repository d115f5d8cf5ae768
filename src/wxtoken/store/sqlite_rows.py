"""The embedded store's rows in SQL: column lists, tuple <-> record mapping, and the
write-transaction object (`RecordTx`) that SQLiteRecords hands out.

Kept apart from the connection and transaction handling in sqlite.py: this is the mapping, that
is the plumbing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from ..identity import Identity
from .records import ExpiryTrend, Probe, ProfileRow, RecorderCopy, TokenRecord, TokenRow

PROFILE_COLS = (
    "name, kind, client_id, redirect_uri, scopes, base_url, extra, client_secret, created_at, "
    "old_client_secret, secret_added_at"
)
RECORD_COLS = (
    "access_expires_at, refresh_expires_at, scopes, obtained_at, org_id, person_id, email, "
    "display_name, generation, status, status_reason, access_fp, refresh_fp, failures, "
    "last_error, last_attempt_at, last_success_at, last_error_code, notes, cause, probe, "
    "recorder_copy, expiry_trend"
)
RECORD_WIDTH = 23


def profile_from_row(r: tuple[Any, ...]) -> ProfileRow:
    return ProfileRow(
        name=r[0],
        kind=r[1],
        client_id=r[2],
        redirect_uri=r[3],
        scopes=tuple(r[4].split()),
        base_url=r[5],
        extra=json.loads(r[6]),
        secret=bytes(r[7]),
        created_at=r[8],
        old_secret=None if r[9] is None else bytes(r[9]),
        secret_added_at=r[10],
    )


def record_from_row(name: str, r: tuple[Any, ...]) -> TokenRecord:
    return TokenRecord(
        profile=name,
        access_expires_at=r[0],
        refresh_expires_at=r[1],
        scopes=tuple(r[2].split()),
        obtained_at=r[3],
        identity=Identity(org_id=r[4], person_id=r[5], email=r[6], display_name=r[7]),
        generation=r[8],
        status=r[9],
        status_reason=r[10],
        access_fp=r[11],
        refresh_fp=r[12],
        failures=r[13],
        last_error=r[14],
        last_attempt_at=r[15],
        last_success_at=r[16],
        last_error_code=r[17],
        notes=tuple(json.loads(r[18])),
        cause=r[19],
        probe=Probe(**json.loads(r[20])) if r[20] else None,
        copy=RecorderCopy(**json.loads(r[21])),
        trend=ExpiryTrend(**json.loads(r[22])),
    )


def record_values(rec: TokenRecord) -> tuple[Any, ...]:
    # Probe, RecorderCopy and ExpiryTrend hold only flat values: `vars` is their JSON object
    # (dataclasses.asdict deep-copies, a fifth of the store's CPU on every refresh).
    i = rec.identity
    return (
        rec.access_expires_at,
        rec.refresh_expires_at,
        " ".join(rec.scopes),
        rec.obtained_at,
        i.org_id,
        i.person_id,
        i.email,
        i.display_name,
        rec.generation,
        rec.status,
        rec.status_reason,
        rec.access_fp,
        rec.refresh_fp,
        rec.failures,
        rec.last_error,
        rec.last_attempt_at,
        rec.last_success_at,
        rec.last_error_code,
        json.dumps(list(rec.notes)),
        rec.cause,
        json.dumps(vars(rec.probe)) if rec.probe else None,
        json.dumps(vars(rec.copy)),
        json.dumps(vars(rec.trend)),
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
            (
                row.name,
                row.kind,
                row.client_id,
                row.redirect_uri,
                " ".join(row.scopes),
                row.base_url,
                json.dumps(dict(row.extra), sort_keys=True),
                row.secret,
                row.created_at,
                row.old_secret,
                row.secret_added_at,
            ),
        )

    def delete_profile(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = ?", (name,))
        self.conn.execute("DELETE FROM profiles WHERE name = ?", (name,))
        self.deleted = True

    def token(self, name: str) -> TokenRow | None:
        r = self.conn.execute(
            f"SELECT {RECORD_COLS}, access_token, refresh_token FROM tokens WHERE profile = ?",
            (name,),
        ).fetchone()
        if r is None:
            return None
        return TokenRow(
            record_from_row(name, r[:RECORD_WIDTH]),
            bytes(r[RECORD_WIDTH]),
            None if r[RECORD_WIDTH + 1] is None else bytes(r[RECORD_WIDTH + 1]),
        )

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
        self.conn.execute(
            "INSERT INTO events(at, profile, kind, detail) VALUES (?, ?, ?, ?)",
            (self._clock(), profile, kind, json.dumps(dict(detail), sort_keys=True)),
        )
