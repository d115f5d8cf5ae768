"""The embedded store: one SQLite file (WAL, synchronous=FULL) in WXTOKEN_HOME.

Crash safety is SQLite's: every change is one transaction, so after `kill -9` or power loss the
file holds the old complete state or the new one (https://www.sqlite.org/atomiccommit.html).
Single flight uses one lock file per profile held with flock(2) across read → HTTP → write; flock
dies with the process (no stale locks) and, unlike fcntl locks, is not dropped when some other
descriptor of the file is closed (P4). Threads of one process first queue on a per-profile
threading.Lock, so they share the winner's result instead of hammering flock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._format import SCHEMA_VERSION
from .._format import ad as _ad
from .._format import exp as _exp
from .._local import Settings
from ..errors import (
    CorruptStore,
    NoTokens,
    ProfileNotFound,
    StorageError,
    UsageError,
)
from ..profile import Profile
from ..token import Token
from . import STATUS_LOGIN_REQUIRED, STATUS_OK, Event, Identity, TokenRecord
from .crypto import (
    Cipher,
    existing_store_key,
    make_keycheck,
    new_store_key,
    verify_keycheck,
)
from .fs import check_private, ensure_private_dir

_SCHEMA = """
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

# Threads of one process that refresh the same profile queue here first (keyed by lock path).
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class SQLiteStore:
    def __init__(
        self,
        settings: Settings,
        prompt: Callable[[str, bool], str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.home = Path(settings.home)
        self.path = Path(settings.db_path)
        self._prompt = prompt
        self._clock = clock
        self._local = threading.local()
        self._cipher: Cipher | None = None
        self._cipher_lock = threading.Lock()
        self._lock_dir_ready = False

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.home)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    # --- connections ---------------------------------------------------------------------

    def _exists(self) -> bool:
        return self.path.exists()

    def _conn(self, create: bool = False) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if not self._exists():
            if not create:
                raise NoTokens(
                    f"no wxtoken store at {self.home} yet",
                    fix="create a profile first: wxtoken profile add NAME --client-id ID "
                    "--redirect-uri URI --preset verint-calling",
                )
            ensure_private_dir(self.home)
            self._create_db_file()
        check_private(self.home, is_dir=True)
        check_private(self.path, is_dir=False)
        with self._errors("open"):
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise CorruptStore(f"cannot switch {self.path} to WAL mode")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._create_schema(conn)
            elif version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} was written by a newer wxtoken (schema {version})",
                    fix="upgrade wxtoken: pip install -U wxtoken",
                )
        self._local.conn = conn
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        # One transaction, so a crash leaves either no schema or all of it; the version is
        # set last, inside it, and a racing creator finds it set and does nothing.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', ?)",
                    (uuid.uuid4().hex,),
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _create_db_file(self) -> None:
        # Created 0600 before SQLite sees it; SQLite gives its -wal and -shm files the same mode.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            os.close(os.open(self.path, flags, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(
                f"cannot create {self.path} ({exc.strerror})",
                fix=f"make {self.home} writable, or set WXTOKEN_HOME elsewhere",
            ) from None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc).lower()
            if "disk is full" in text or "disk i/o" in text:
                raise StorageError(
                    f"the store could not {doing}: the disk is full or failing",
                    fix=f"free space on the disk holding {self.home}; nothing was changed",
                ) from None
            if "readonly" in text or "unable to open" in text or "read-only" in text:
                raise StorageError(
                    f"the store could not {doing}: {self.home} is not writable",
                    fix=f"make {self.home} writable by you (chmod 700 {self.home})",
                ) from None
            if "locked" in text or "busy" in text:
                raise StorageError(
                    f"the store could not {doing}: another wxtoken held it for too long",
                    fix="retry; if it persists, look for a stuck wxtoken process",
                ) from None
            if isinstance(exc, sqlite3.OperationalError) and "no such" not in text:
                raise StorageError(
                    f"the store could not {doing} ({exc})",
                    fix=f"check {self.path}; nothing was changed",
                ) from None
            raise CorruptStore(
                f"the store {self.path} is damaged or not a wxtoken database ({exc})",
                fix=f"restore {self.path} from a backup, or move it aside and sign in again",
            ) from None

    @contextlib.contextmanager
    def _tx(self, doing: str, create: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._conn(create=create)
        with self._errors(doing):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _meta(self) -> dict[str, str]:
        conn = self._conn()
        with self._errors("read"):
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    # --- key -------------------------------------------------------------------------------

    def key_source(self) -> str | None:
        if not self._exists():
            return None
        return self._meta().get("key_source")

    def _get_cipher(self, create: bool = False) -> Cipher:
        if self._cipher is not None:
            return self._cipher
        with self._cipher_lock:
            if self._cipher is not None:
                return self._cipher
            meta = self._meta() if self._exists() else {}
            if "key_source" in meta:
                key = existing_store_key(self.settings, meta, meta["store_id"], self._prompt)
                cipher = Cipher(key)
                verify_keycheck(cipher, meta["keycheck"], meta["key_source"])
            elif create:
                conn = self._conn(create=True)
                store_id = dict(conn.execute("SELECT key, value FROM meta").fetchall())["store_id"]
                decision = new_store_key(self.settings, store_id, self._prompt)
                cipher = Cipher(decision.key)
                rows = dict(decision.new_meta, keycheck=make_keycheck(cipher))
                with self._tx("record its key source") as tx:
                    if tx.execute("SELECT 1 FROM meta WHERE key='key_source'").fetchone():
                        raise UsageError(
                            "another wxtoken created this store's key at the same moment",
                            fix="run the command again",
                        )
                    tx.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows.items())
                    self._event(tx, None, "store_created", {"key_source": decision.source})
            else:
                raise NoTokens(
                    "the store has no profiles yet",
                    fix="wxtoken profile add NAME --client-id ID --redirect-uri URI "
                    "--preset verint-calling",
                )
            self._cipher = cipher
            return cipher

    def fingerprint(self, secret: str) -> str:
        return self._get_cipher().fingerprint(secret)

    # --- profiles -------------------------------------------------------------------------

    def list_profiles(self) -> list[Profile]:
        if not self._exists():
            return []
        conn = self._conn()
        with self._errors("read its profiles"):
            rows = conn.execute(
                "SELECT name, client_id, redirect_uri, scopes, base_url FROM profiles ORDER BY name"
            ).fetchall()
        return [Profile(r[0], r[1], r[2], tuple(r[3].split()), r[4]) for r in rows]

    def get_profile(self, name: str) -> Profile:
        if self._exists():
            conn = self._conn()
            with self._errors("read a profile"):
                r = conn.execute(
                    "SELECT name, client_id, redirect_uri, scopes, base_url FROM profiles "
                    "WHERE name = ?",
                    (name,),
                ).fetchone()
            if r is not None:
                return Profile(r[0], r[1], r[2], tuple(r[3].split()), r[4])
        raise ProfileNotFound(
            f"there is no profile named {name!r}",
            fix="list them with `wxtoken profile list`, or create it with `wxtoken profile add`",
        )

    def add_profile(self, profile: Profile, client_secret: str, *, replace: bool) -> None:
        cipher = self._get_cipher(create=True)
        sealed = cipher.seal(client_secret, _ad(profile.name, "client_secret", profile.client_id))
        with self._tx("save the profile", create=True) as tx:
            old = tx.execute(
                "SELECT client_id FROM profiles WHERE name = ?", (profile.name,)
            ).fetchone()
            if old is not None and not replace:
                raise UsageError(
                    f"a profile named {profile.name!r} exists already",
                    fix=f"add --replace to overwrite it, or `wxtoken profile remove "
                    f"{profile.name}` first",
                )
            values = (
                profile.client_id,
                profile.redirect_uri,
                " ".join(profile.scopes),
                profile.base_url,
                sealed,
            )
            if old is None:
                tx.execute(
                    "INSERT INTO profiles(name, client_id, redirect_uri, scopes, base_url, "
                    "client_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (profile.name, *values, self._clock()),
                )
            else:
                tx.execute(
                    "UPDATE profiles SET client_id=?, redirect_uri=?, scopes=?, base_url=?, "
                    "client_secret=? WHERE name=?",
                    (*values, profile.name),
                )
                if old[0] != profile.client_id:
                    # Tokens belong to the old integration; keeping them would mix identities.
                    tx.execute("DELETE FROM tokens WHERE profile = ?", (profile.name,))
            self._event(
                tx,
                profile.name,
                "profile_replaced" if old else "profile_added",
                {
                    "client_id": profile.client_id,
                    "scopes": list(profile.scopes),
                    "base_url": profile.base_url,
                },
            )

    def remove_profile(self, name: str) -> None:
        self.get_profile(name)
        with self._tx("remove the profile") as tx:
            tx.execute("DELETE FROM tokens WHERE profile = ?", (name,))
            tx.execute("DELETE FROM profiles WHERE name = ?", (name,))
            self._event(tx, name, "profile_removed", {})

    def client_secret(self, name: str) -> str:
        cipher = self._get_cipher()
        conn = self._conn()
        with self._errors("read the client secret"):
            row = conn.execute(
                "SELECT client_id, client_secret FROM profiles WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            self.get_profile(name)  # raises ProfileNotFound
            raise AssertionError("unreachable")
        return cipher.open(row[1], _ad(name, "client_secret", row[0]), what="client secret")

    # --- tokens ----------------------------------------------------------------------------

    _TOKEN_COLS = (
        "access_expires_at, refresh_expires_at, scopes, obtained_at, org_id, person_id, email, "
        "display_name, generation, status, status_reason, access_fp, refresh_fp, failures, "
        "last_error, last_attempt_at, last_success_at"
    )

    def _record(self, name: str, r: tuple[Any, ...]) -> TokenRecord:
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
        )

    def token_record(self, name: str) -> TokenRecord | None:
        if not self._exists():
            return None
        conn = self._conn()
        with self._errors("read tokens"):
            r = conn.execute(
                f"SELECT {self._TOKEN_COLS} FROM tokens WHERE profile = ?", (name,)
            ).fetchone()
        return None if r is None else self._record(name, r)

    def all_token_records(self) -> dict[str, TokenRecord]:
        """Every profile's token metadata in one query (the keeper's pass over thousands)."""
        if not self._exists():
            return {}
        conn = self._conn()
        with self._errors("read tokens"):
            rows = conn.execute(f"SELECT profile, {self._TOKEN_COLS} FROM tokens").fetchall()
        return {r[0]: self._record(r[0], r[1:]) for r in rows}

    def load_token(self, name: str) -> tuple[TokenRecord, Token] | None:
        if not self._exists():
            return None
        conn = self._conn()
        with self._errors("read tokens"):
            r = conn.execute(
                f"SELECT {self._TOKEN_COLS}, access_token, refresh_token FROM tokens "
                "WHERE profile = ?",
                (name,),
            ).fetchone()
        if r is None:
            return None
        record = self._record(name, r[:17])
        cipher = self._get_cipher()
        access = cipher.open(
            r[17], _ad(name, "access_token", _exp(record.access_expires_at)), what="access token"
        )
        refresh = None
        if r[18] is not None:
            refresh = cipher.open(
                r[18],
                _ad(name, "refresh_token", _exp(record.refresh_expires_at)),
                what="refresh token",
            )
        token = Token(
            access_token=access,
            access_expires_at=record.access_expires_at,
            refresh_token=refresh,
            refresh_expires_at=record.refresh_expires_at,
            scopes=record.scopes,
            obtained_at=record.obtained_at,
        )
        return record, token

    def save_token(
        self, name: str, token: Token, identity: Identity, *, event: str, detail: Mapping[str, Any]
    ) -> TokenRecord:
        cipher = self._get_cipher()
        access_ct = cipher.seal(
            token.access_token, _ad(name, "access_token", _exp(token.access_expires_at))
        )
        refresh_ct = (
            None
            if token.refresh_token is None
            else cipher.seal(
                token.refresh_token, _ad(name, "refresh_token", _exp(token.refresh_expires_at))
            )
        )
        access_fp = cipher.fingerprint(token.access_token)
        refresh_fp = (
            None if token.refresh_token is None else cipher.fingerprint(token.refresh_token)
        )
        now = self._clock()
        with self._tx("save tokens") as tx:
            if tx.execute("SELECT 1 FROM profiles WHERE name = ?", (name,)).fetchone() is None:
                raise ProfileNotFound(
                    f"profile {name!r} was removed while signing in",
                    fix="add it again with `wxtoken profile add`",
                )
            old = tx.execute(
                "SELECT generation, org_id, person_id, email, display_name FROM tokens "
                "WHERE profile = ?",
                (name,),
            ).fetchone()
            generation = 1 if old is None else old[0] + 1
            if old is not None and identity.email is None and identity.person_id is None:
                # A refresh learns nothing about the person: keep what the login recorded.
                identity = Identity(
                    org_id=identity.org_id or old[1],
                    person_id=old[2],
                    email=old[3],
                    display_name=old[4],
                )
            tx.execute(
                "INSERT OR REPLACE INTO tokens(profile, access_token, access_expires_at, "
                "refresh_token, "
                "refresh_expires_at, scopes, obtained_at, org_id, person_id, email, display_name, "
                "generation, access_fp, refresh_fp, status, status_reason, failures, last_error, "
                "last_attempt_at, last_success_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', NULL, 0, NULL, ?, ?)",
                (
                    name,
                    access_ct,
                    token.access_expires_at,
                    refresh_ct,
                    token.refresh_expires_at,
                    " ".join(token.scopes),
                    token.obtained_at,
                    identity.org_id,
                    identity.person_id,
                    identity.email,
                    identity.display_name,
                    generation,
                    access_fp,
                    refresh_fp,
                    now,
                    now,
                ),
            )
            self._event(
                tx,
                name,
                event,
                dict(detail, generation=generation, access_fp=access_fp, refresh_fp=refresh_fp),
            )
        record = self.token_record(name)
        assert record is not None
        return record

    def delete_token(self, name: str, *, event: str, detail: Mapping[str, Any]) -> None:
        with self._tx("remove tokens") as tx:
            tx.execute("DELETE FROM tokens WHERE profile = ?", (name,))
            self._event(tx, name, event, detail)

    def mark_login_required(self, name: str, reason: str) -> None:
        with self._tx("record the failure") as tx:
            tx.execute(
                "UPDATE tokens SET status = ?, status_reason = ?, last_attempt_at = ? "
                "WHERE profile = ?",
                (STATUS_LOGIN_REQUIRED, reason, self._clock(), name),
            )
            self._event(tx, name, "login_required", {"reason": reason})

    def record_failure(self, name: str, error: str, at: float) -> None:
        with self._tx("record the failure") as tx:
            tx.execute(
                "UPDATE tokens SET failures = failures + 1, last_error = ?, last_attempt_at = ? "
                "WHERE profile = ?",
                (error, at, name),
            )
            self._event(tx, name, "refresh_failed", {"error": error})

    # --- events ----------------------------------------------------------------------------

    def _event(
        self, tx: sqlite3.Connection, profile: str | None, kind: str, detail: Mapping[str, Any]
    ) -> None:
        tx.execute(
            "INSERT INTO events(at, profile, kind, detail) VALUES (?, ?, ?, ?)",
            (self._clock(), profile, kind, json.dumps(dict(detail), sort_keys=True)),
        )

    def append_event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        with self._tx("record an event") as tx:
            self._event(tx, profile, kind, detail)

    def events(
        self, profile: str | None = None, kinds: tuple[str, ...] = (), limit: int = 100
    ) -> list[Event]:
        if not self._exists():
            return []
        sql = "SELECT id, at, profile, kind, detail FROM events WHERE 1=1"
        args: list[Any] = []
        if profile is not None:
            sql += " AND profile = ?"
            args.append(profile)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        conn = self._conn()
        with self._errors("read events"):
            rows = conn.execute(sql, args).fetchall()
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # --- single flight -----------------------------------------------------------------------

    @contextlib.contextmanager
    def refresh_lock(self, name: str, timeout: float) -> Iterator[None]:
        lock_dir = Path(self.settings.lock_dir)
        if not self._lock_dir_ready:  # checked once per store: the keeper locks thousands/s
            ensure_private_dir(lock_dir)
            self._lock_dir_ready = True
        lock_path = lock_dir / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault(str(lock_path), threading.Lock())
        deadline = time.monotonic() + timeout
        if not tlock.acquire(timeout=timeout):
            raise _lock_timeout(name, timeout)
        try:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(lock_path, flags, 0o600)
            except OSError as exc:
                raise StorageError(
                    f"cannot open the lock file {lock_path} ({exc.strerror})",
                    fix=f"make {lock_dir} writable by you",
                ) from None
            try:
                delay = 0.002
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise _lock_timeout(name, timeout) from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
                yield
            finally:
                os.close(fd)  # closing releases the flock
        finally:
            tlock.release()


def _lock_timeout(name: str, timeout: float) -> StorageError:
    return StorageError(
        f"another wxtoken has been refreshing profile {name!r} for over {timeout:g} s",
        fix="retry shortly; if it persists, look for a stuck `wxtoken` or keeper process",
    )


__all__ = ["STATUS_LOGIN_REQUIRED", "STATUS_OK", "SQLiteStore"]
