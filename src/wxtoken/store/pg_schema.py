"""The shared store's schema on PostgreSQL, as numbered migrations that mirror the embedded ones.

Migration N here holds the same columns as migration N of `migrations.py` (SQLite), in
PostgreSQL's types, so both backends are at one `_format.SCHEMA_VERSION` and a store copied from
one to the other keeps every field. The version is the `schema_version` row of `meta`.

Hosts upgrade one at a time, so two wxtoken releases may meet one database: the newer one
migrates it (under an advisory lock, so racing hosts take turns) and the older one, finding a
version it does not know, refuses every command instead of writing rows it does not understand.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .._format import SCHEMA_VERSION
from ..errors import StorageError

# Version 1: the concepts of the embedded store's first release.
_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    name TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    base_url TEXT NOT NULL,
    client_secret BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    profile TEXT PRIMARY KEY REFERENCES profiles(name) ON DELETE CASCADE,
    access_token BYTEA NOT NULL,
    access_expires_at DOUBLE PRECISION NOT NULL,
    refresh_token BYTEA,
    refresh_expires_at DOUBLE PRECISION,
    scopes TEXT NOT NULL,
    obtained_at DOUBLE PRECISION NOT NULL,
    org_id TEXT, person_id TEXT, email TEXT, display_name TEXT,
    generation BIGINT NOT NULL,
    access_fp TEXT, refresh_fp TEXT,
    status TEXT NOT NULL DEFAULT 'ok',
    status_reason TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at DOUBLE PRECISION,
    last_success_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    profile TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_profile_kind ON events(profile, kind, id)
"""

# Version 2: profile kinds and settings, failure exit codes, notes, causes, probes, the
# recorder's copy and the expiry trend (see migrations.py for why each exists).
_V2 = """
ALTER TABLE profiles ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'integration';
ALTER TABLE profiles ADD COLUMN IF NOT EXISTS extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_error_code INTEGER;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS notes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS cause TEXT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS probe TEXT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS recorder_copy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expiry_trend TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS events_at ON events(at)
"""

# Version 3: the older client secret held while the integration's secret is rotated.
_V3 = """
ALTER TABLE profiles ADD COLUMN IF NOT EXISTS old_client_secret BYTEA;
ALTER TABLE profiles ADD COLUMN IF NOT EXISTS secret_added_at DOUBLE PRECISION
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)

assert len(MIGRATIONS) == SCHEMA_VERSION, "add the PostgreSQL migration with the SQLite one"

VERSION_KEY = "schema_version"


def statements(version: int) -> list[str]:
    """The SQL statements of migration `version` (1-based)."""
    return [s.strip() for s in MIGRATIONS[version - 1].split(";") if s.strip()]


def known_version(conn: psycopg.Connection[Any], location: str) -> int:
    """The database's schema version (0: no wxtoken tables), refusing one this release does not
    know: a newer wxtoken wrote it, and rows it added would be misread."""
    row = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    found = None
    if row and row[0]:
        found = conn.execute("SELECT value FROM meta WHERE key = %s", (VERSION_KEY,)).fetchone()
    version = int(found[0]) if found else 0
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the store {location} is at schema {version}, written by a newer wxtoken "
            f"(this one knows {SCHEMA_VERSION}); nothing was read or changed",
            fix="upgrade wxtoken (pip install -U 'wxtoken[postgres]') on this host too",
        )
    return version
