"""Rows as every backend stores them: column lists and tuple <-> record mapping.

Both backends (sqlite_rows.py, pg_rows.py) store the same columns in the same order, so one
mapping serves both and a store copied between them keeps every field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from ..identity import Identity
from .records import Event, ExpiryTrend, Probe, ProfileRow, RecorderCopy, TokenRecord, TokenRow

T = TypeVar("T")

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


def decode_memo(
    rows: list[tuple[Any, ...]],
    seen: dict[tuple[Any, ...], T],
    decode: Callable[[tuple[Any, ...]], T],
) -> dict[tuple[Any, ...], T]:
    """Each row decoded, reusing what an identical row decoded to last time (the objects are
    frozen, so sharing them is safe). The result, holding only current rows, is the memo for
    the next read. Decoding 10,000 token rows costs about 200 ms of CPU; comparing them, a few.
    """
    return {r: seen.get(r) or decode(r) for r in rows}


def profile_values(row: ProfileRow) -> tuple[Any, ...]:
    """A profile row's values in PROFILE_COLS order."""
    return (
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
    )


def token_from_row(name: str, r: tuple[Any, ...] | None) -> TokenRow | None:
    """A token row from `SELECT RECORD_COLS, access_token, refresh_token`."""
    if r is None:
        return None
    return TokenRow(
        record_from_row(name, r[:RECORD_WIDTH]),
        bytes(r[RECORD_WIDTH]),
        None if r[RECORD_WIDTH + 1] is None else bytes(r[RECORD_WIDTH + 1]),
    )


TOKEN_SELECT = f"SELECT {RECORD_COLS}, access_token, refresh_token FROM tokens WHERE profile = "


def events_query(
    mark: str, profile: str | None, kinds: tuple[str, ...], limit: int, since: float | None
) -> tuple[str, list[Any]]:
    """The newest events first, filtered; `mark` is the driver's placeholder (? or %s)."""
    sql = "SELECT id, at, profile, kind, detail FROM events WHERE 1=1"
    args: list[Any] = []
    if since is not None:
        sql += f" AND at >= {mark}"
        args.append(since)
    if profile is not None:
        sql += f" AND profile = {mark}"
        args.append(profile)
    if kinds:
        sql += f" AND kind IN ({', '.join([mark] * len(kinds))})"
        args.extend(kinds)
    sql += f" ORDER BY id DESC LIMIT {mark}"
    args.append(limit)
    return sql, args


def event_from_row(r: tuple[Any, ...]) -> Event:
    return Event(r[0], r[1], r[2], r[3], json.loads(r[4]))


RECORDS_SELECT = f"SELECT profile, {RECORD_COLS} FROM tokens"


def decode_records(
    rows: list[tuple[Any, ...]], seen: dict[tuple[Any, ...], TokenRecord]
) -> dict[tuple[Any, ...], TokenRecord]:
    """Rows of RECORDS_SELECT decoded through the memo (see decode_memo)."""
    return decode_memo(rows, seen, lambda r: record_from_row(r[0], r[1:]))
