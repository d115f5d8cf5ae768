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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._format import SCHEMA_VERSION
from .._local import Settings
from ..errors import CorruptStore, NoTokens, StorageError
from . import migrations
from .flock import ProfileLocks
from .fs import check_private, ensure_private_dir, unreadable
from .records import (
    FIRST_PROFILE,
    Event,
    ProfileRow,
    SoleLeader,
    TokenRecord,
    TokenRow,
)
from .rows import (
    PROFILE_COLS,
    RECORDS_SELECT,
    decode_memo,
    decode_records,
    event_from_row,
    events_query,
    profile_from_row,
)
from .sqlite_rows import Tx

# Room a token write needs, with a wide margin: a transaction is a few pages, a checkpoint may
# briefly need the WAL's size again.
MIN_ROOM = 1024 * 1024
OPEN_RETRY = 10.0  # seconds an open may wait out another process switching a new file to WAL


class SQLiteRecords:
    """The RecordStore in `settings.home`: one SQLite file, one connection per thread."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.path = Path(settings.db_path)
        # The directory holding the file: the home, unless WXTOKEN_STORE=sqlite:///PATH moved it.
        self.home = self.path.parent
        self._clock = clock
        self._local = threading.local()
        # Threads of one process (the keeper's workers) queue here for the write transaction:
        # SQLite's own busy handler polls with sleeps of up to 100 ms, which under contention
        # left the database idle most of the time. Other processes still meet busy_timeout.
        self._writing = threading.RLock()  # re-entered, SQLite refuses loudly: no deadlock
        # The keeper reads every row on each pass; most are unchanged since the last one.
        self._profile_rows: dict[tuple[Any, ...], ProfileRow] = {}
        self._record_rows: dict[tuple[Any, ...], TokenRecord] = {}
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

    def leadership(self, group: str, identity: str) -> SoleLeader:
        return SoleLeader(identity)

    def leaders(self) -> list[str]:
        return []  # one host: `status` asks the keeper's socket instead

    def watch(self, changed: Callable[[str | None], None], stopping: threading.Event) -> None:
        return None  # one host, and its only keeper reads the file it writes

    def reserve(self, threads: int) -> None:
        return None  # one connection per thread already

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
    def write(self, doing: str, *, create: bool = False) -> Iterator[Tx]:
        conn = self._conn(create=create)
        tx = Tx(conn, self._clock)
        with self._writing, self._errors(doing):
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

    def _read(self, doing: str) -> Tx:
        return Tx(self._conn(), self._clock)

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
            rows = (
                self._conn()
                .execute(f"SELECT {PROFILE_COLS} FROM profiles ORDER BY name")
                .fetchall()
            )
        self._profile_rows = decode_memo(rows, self._profile_rows, profile_from_row)
        return list(self._profile_rows.values())

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
            rows = self._conn().execute(RECORDS_SELECT).fetchall()
        self._record_rows = decode_records(rows, self._record_rows)
        return {rec.profile: rec for rec in self._record_rows.values()}

    def events(
        self,
        profile: str | None,
        kinds: tuple[str, ...],
        limit: int,
        since: float | None = None,
    ) -> list[Event]:
        if not self.exists():
            return []
        sql, args = events_query("?", profile, kinds, limit, since)
        with self._errors("read events"):
            rows = self._conn().execute(sql, args).fetchall()
        return [event_from_row(r) for r in rows]

    def refresh_lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self._locks.hold(name, timeout)

    def check_writable(self) -> None:
        # Called before every refresh, so only the file-size limit's rare case stats the files.
        stat = os.statvfs(self.home)
        room = stat.f_bavail * stat.f_frsize
        limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if limit != resource.RLIM_INFINITY:
            wal = self.path.with_name(self.path.name + "-wal")
            sizes = [p.stat().st_size for p in (self.path, wal) if p.exists()]
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
