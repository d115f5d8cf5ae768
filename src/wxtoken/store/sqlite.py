"""The embedded record store: one SQLite file (WAL, synchronous=FULL) in the wxtoken home.

Crash safety is SQLite's: every change is one transaction, so after `kill -9` or power loss the
file holds the old complete state or the new one (https://www.sqlite.org/atomiccommit.html).
Deleted secrets are overwritten (`secure_delete`) and the write-ahead log is truncated after a
delete, so `logout` and `profile remove` leave no readable copy in freed pages or the WAL.
Single flight is `flock.ProfileLocks`. The schema comes from `migrations`, applied on open.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._format import SCHEMA_VERSION
from .._local import Settings
from ..errors import CorruptStore, NoTokens, StorageError
from ..identity import Identity
from . import migrations
from .flock import ProfileLocks
from .fs import check_private, ensure_private_dir, unreadable
from .records import (
    FIRST_PROFILE,
    Event,
    ExpiryTrend,
    Probe,
    ProfileRow,
    RecorderCopy,
    TokenRecord,
    TokenRow,
)

_PROFILE_COLS = (
    "name, kind, client_id, redirect_uri, scopes, base_url, extra, client_secret, created_at"
)
_RECORD_COLS = (
    "access_expires_at, refresh_expires_at, scopes, obtained_at, org_id, person_id, email, "
    "display_name, generation, status, status_reason, access_fp, refresh_fp, failures, "
    "last_error, last_attempt_at, last_success_at, last_error_code, notes, cause, probe, "
    "recorder_copy, expiry_trend"
)
_RECORD_WIDTH = 23

# Room a token write needs, with a wide margin: a transaction is a few pages, a checkpoint may
# briefly need the WAL's size again.
MIN_ROOM = 1024 * 1024
OPEN_RETRY = 10.0  # seconds an open may wait out another process switching a new file to WAL


def _profile(r: tuple[Any, ...]) -> ProfileRow:
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
    )


def _record(name: str, r: tuple[Any, ...]) -> TokenRecord:
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


def _record_values(rec: TokenRecord) -> tuple[Any, ...]:
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
        json.dumps(asdict(rec.probe)) if rec.probe else None,
        json.dumps(asdict(rec.copy)),
        json.dumps(asdict(rec.trend)),
    )


class _Tx:
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
            f"SELECT {_PROFILE_COLS} FROM profiles WHERE name = ?", (name,)
        ).fetchone()
        return None if r is None else _profile(r)

    def profiles(self) -> list[ProfileRow]:
        rows = self.conn.execute(f"SELECT {_PROFILE_COLS} FROM profiles ORDER BY name")
        return [_profile(r) for r in rows.fetchall()]

    def put_profile(self, row: ProfileRow) -> None:
        self.conn.execute(
            f"INSERT INTO profiles({_PROFILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, client_id=excluded.client_id, "
            "redirect_uri=excluded.redirect_uri, scopes=excluded.scopes, "
            "base_url=excluded.base_url, extra=excluded.extra, "
            "client_secret=excluded.client_secret",
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
            ),
        )

    def delete_profile(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = ?", (name,))
        self.conn.execute("DELETE FROM profiles WHERE name = ?", (name,))
        self.deleted = True

    def token(self, name: str) -> TokenRow | None:
        r = self.conn.execute(
            f"SELECT {_RECORD_COLS}, access_token, refresh_token FROM tokens WHERE profile = ?",
            (name,),
        ).fetchone()
        if r is None:
            return None
        return TokenRow(
            _record(name, r[:_RECORD_WIDTH]),
            bytes(r[_RECORD_WIDTH]),
            None if r[_RECORD_WIDTH + 1] is None else bytes(r[_RECORD_WIDTH + 1]),
        )

    def put_token(self, row: TokenRow) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO tokens(profile, {_RECORD_COLS}, access_token, refresh_token) "
            f"VALUES ({', '.join('?' * (_RECORD_WIDTH + 3))})",
            (row.record.profile, *_record_values(row.record), row.access_token, row.refresh_token),
        )

    def put_record(self, record: TokenRecord) -> None:
        sets = ", ".join(f"{c.strip()} = ?" for c in _RECORD_COLS.split(","))
        self.conn.execute(
            f"UPDATE tokens SET {sets} WHERE profile = ?",
            (*_record_values(record), record.profile),
        )

    def delete_token(self, name: str) -> None:
        self.conn.execute("DELETE FROM tokens WHERE profile = ?", (name,))
        self.deleted = True

    def event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO events(at, profile, kind, detail) VALUES (?, ?, ?, ?)",
            (self._clock(), profile, kind, json.dumps(dict(detail), sort_keys=True)),
        )


class SQLiteRecords:
    """The RecordStore in `settings.home`: one SQLite file, one connection per thread."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.home = Path(settings.home)
        self.path = Path(settings.db_path)
        self._clock = clock
        self._local = threading.local()
        self._locks = ProfileLocks(Path(settings.lock_dir))

    def __repr__(self) -> str:
        return f"SQLiteRecords({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        try:
            return self.path.exists()
        except PermissionError:
            raise unreadable(self.path) from None

    # --- connections ---------------------------------------------------------------------

    def _conn(self, create: bool = False) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if not self.exists():
            if not create:
                raise NoTokens(f"no wxtoken store at {self.home} yet", fix=FIRST_PROFILE)
            ensure_private_dir(self.home)
            self._create_file()
        check_private(self.home, is_dir=True)
        check_private(self.path, is_dir=False)
        with self._errors("open"):
            conn = self._open()
        self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL and bring the schema up to date.

        Two processes opening a brand-new file at once can meet SQLITE_BUSY while one of them
        switches it to WAL: SQLite reports that without calling the busy handler. It lasts only
        as long as the other's switch, so it is retried briefly instead of ending the command.
        """
        deadline = time.monotonic() + OPEN_RETRY
        delay = 0.01
        while True:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise CorruptStore(f"cannot switch {self.path} to WAL mode")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA secure_delete=ON")
                self._migrate(conn)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                busy = "locked" in str(exc).lower() or "busy" in str(exc).lower()
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except BaseException:
                conn.close()
                raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} was written by a newer wxtoken (schema {version}; this one "
                f"knows {SCHEMA_VERSION}) and is left untouched",
                fix="upgrade wxtoken (pip install -U wxtoken) on every host using this store",
            )
        # One transaction for all steps: a crash leaves the old schema or the new one. A racing
        # opener waits on BEGIN IMMEDIATE, then finds the version already current.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in range(current + 1, SCHEMA_VERSION + 1):
                for statement in migrations.statements(step):
                    conn.execute(statement)
            if current == 0:
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', ?)",
                    (uuid.uuid4().hex,),
                )
            if current < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(
                    "INSERT INTO events(at, profile, kind, detail) VALUES (?, NULL, ?, ?)",
                    (
                        self._clock(),
                        "schema_created" if current == 0 else "schema_upgraded",
                        json.dumps({"from": current, "to": SCHEMA_VERSION}),
                    ),
                )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _create_file(self) -> None:
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
            raise self._storage_error(exc, doing) from None

    def _storage_error(self, exc: sqlite3.DatabaseError, doing: str) -> StorageError:
        text = str(exc).lower()
        if "disk is full" in text or "disk i/o" in text:
            return StorageError(
                f"the store could not {doing}: the disk is full or failing",
                fix=f"free space on the disk holding {self.home}; nothing was changed",
            )
        if "readonly" in text or "unable to open" in text or "read-only" in text:
            return StorageError(
                f"the store could not {doing}: {self.home} is not writable",
                fix=f"make {self.home} writable by you (chmod 700 {self.home})",
            )
        if "locked" in text or "busy" in text:
            return StorageError(
                f"the store could not {doing}: another wxtoken held it for too long",
                fix="retry; if it persists, look for a stuck wxtoken process",
            )
        if isinstance(exc, sqlite3.OperationalError) and "no such" not in text:
            return StorageError(
                f"the store could not {doing} ({exc})",
                fix=f"check {self.path}; nothing was changed",
            )
        return CorruptStore(
            f"the store {self.path} is damaged or not a wxtoken database ({exc})",
            fix=f"restore {self.path} from a backup, or move it aside and sign in again",
        )

    @contextlib.contextmanager
    def write(self, doing: str, *, create: bool = False) -> Iterator[_Tx]:
        conn = self._conn(create=create)
        tx = _Tx(conn, self._clock)
        with self._errors(doing):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if tx.deleted:
                # Secrets deleted above must not survive in the write-ahead log either.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _read(self, doing: str) -> _Tx:
        return _Tx(self._conn(), self._clock)

    # --- reads ----------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        if not self.exists():
            return {}
        with self._errors("read"):
            return self._read("read").meta()

    def profiles(self) -> list[ProfileRow]:
        if not self.exists():
            return []
        with self._errors("read its profiles"):
            return self._read("read").profiles()

    def profile(self, name: str) -> ProfileRow | None:
        if not self.exists():
            return None
        with self._errors("read a profile"):
            return self._read("read").profile(name)

    def token(self, name: str) -> TokenRow | None:
        if not self.exists():
            return None
        with self._errors("read tokens"):
            return self._read("read").token(name)

    def records(self) -> dict[str, TokenRecord]:
        if not self.exists():
            return {}
        with self._errors("read tokens"):
            rows = self._conn().execute(f"SELECT profile, {_RECORD_COLS} FROM tokens").fetchall()
        return {r[0]: _record(r[0], r[1:]) for r in rows}

    def events(
        self,
        profile: str | None,
        kinds: tuple[str, ...],
        limit: int,
        since: float | None = None,
    ) -> list[Event]:
        if not self.exists():
            return []
        sql = "SELECT id, at, profile, kind, detail FROM events WHERE 1=1"
        args: list[Any] = []
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        if profile is not None:
            sql += " AND profile = ?"
            args.append(profile)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._errors("read events"):
            rows = self._conn().execute(sql, args).fetchall()
        return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def refresh_lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locks.hold(name, timeout)

    def check_writable(self) -> None:
        wal = self.path.with_name(self.path.name + "-wal")
        sizes = [p.stat().st_size for p in (self.path, wal) if p.exists()]
        stat = os.statvfs(self.home)
        room = stat.f_bavail * stat.f_frsize
        limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if limit != resource.RLIM_INFINITY:
            room = min(room, limit - max(sizes, default=0))
        if room < MIN_ROOM:
            raise StorageError(
                f"the store cannot grow: less than {MIN_ROOM // 1024} KiB left on the disk "
                f"holding {self.home} (or under this process's file-size limit); nothing was "
                "sent to Webex, since its answer could not be stored",
                fix=f"free space on the disk holding {self.home}, then retry",
            )
        if not os.access(self.home, os.W_OK) or (
            self.path.exists() and not os.access(self.path, os.W_OK)
        ):
            raise StorageError(
                f"the store {self.path} is read-only; nothing was sent to Webex, since its "
                "answer could not be stored",
                fix=f"make {self.home} and {self.path} writable by you, then retry",
            )
