"""The embedded store's schema as numbered migrations, applied in order when a store is opened.

Migration N takes a store at schema N-1 to schema N; `PRAGMA user_version` records where a file
is. A new store runs every migration from 1, so the path an old store takes on upgrade is the
path every test store takes too. Each migration only adds (columns with defaults, tables,
indexes): a store is upgraded without its key, so `status` keeps working for monitoring, and
nothing readable before is lost. A store written by a newer wxtoken (a higher version) is
refused rather than guessed at.

To change the schema: append a migration, bump `_format.SCHEMA_VERSION` (the hot path reads it),
and add a case to tests/test_migrations.py.
"""

from __future__ import annotations

from .._format import SCHEMA_VERSION

# Version 1 is the schema of release 0.1.0; tests/fixtures/store-v1 holds a store it wrote.
_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    name TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    base_url TEXT NOT NULL,
    client_secret BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    profile TEXT PRIMARY KEY REFERENCES profiles(name) ON DELETE CASCADE,
    access_token BLOB NOT NULL,
    access_expires_at REAL NOT NULL,
    refresh_token BLOB,
    refresh_expires_at REAL,
    scopes TEXT NOT NULL,
    obtained_at REAL NOT NULL,
    org_id TEXT, person_id TEXT, email TEXT, display_name TEXT,
    generation INTEGER NOT NULL,
    access_fp TEXT, refresh_fp TEXT,
    status TEXT NOT NULL DEFAULT 'ok',
    status_reason TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at REAL,
    last_success_at REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    profile TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_profile_kind ON events(profile, kind, id);
"""

# Version 2: profiles have a kind (integration now, service-app next) and kind-specific
# settings; a failure records its exit code so waiters can report it; notes say what was odd
# about the answer that issued the tokens (an unusable lifetime taken as unknown); a dead grant
# has a named cause; the last live probe, the state of the recorder's copy and the observed
# expiry trend are kept as JSON (readable without the key, like all metadata).
_V2 = """
ALTER TABLE profiles ADD COLUMN kind TEXT NOT NULL DEFAULT 'integration';
ALTER TABLE profiles ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tokens ADD COLUMN last_error_code INTEGER;
ALTER TABLE tokens ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN cause TEXT;
ALTER TABLE tokens ADD COLUMN probe TEXT;
ALTER TABLE tokens ADD COLUMN recorder_copy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tokens ADD COLUMN expiry_trend TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS events_at ON events(at);
"""

# Version 3: a profile may hold a second, older client secret while the integration's secret is
# rotated (requests use the newest and fall back to the older on invalid_client), and when the
# newest was added, so status can say how long two have been held.
_V3 = """
ALTER TABLE profiles ADD COLUMN old_client_secret BLOB;
ALTER TABLE profiles ADD COLUMN secret_added_at REAL;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)

assert len(MIGRATIONS) == SCHEMA_VERSION, "bump _format.SCHEMA_VERSION with each migration"


def statements(version: int) -> list[str]:
    """The SQL statements of migration `version` (1-based)."""
    return [s.strip() for s in MIGRATIONS[version - 1].split(";") if s.strip()]
