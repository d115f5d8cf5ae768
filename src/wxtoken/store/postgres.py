"""The shared record store: PostgreSQL, for several hosts (`WXTOKEN_STORE=postgresql://...`).

What PostgreSQL gives that a home-made scheme would not:
- single flight across hosts: `refresh_lock` is a transaction holding a transaction-scoped
  advisory lock on the profile across read -> HTTP -> write; the writes made under it are
  savepoints of that transaction, so a holder whose connection dies (kill -9, a cut network,
  `pg_terminate_backend`) leaves nothing half-written and releases the lock at once;
- timeouts set by wxtoken on every transaction (`SET LOCAL`, so they hold through PgBouncer in
  transaction mode), derived from the HTTP deadline: `idle_in_transaction_session_timeout`
  outlasts the longest refresh, so a client that vanished without closing its socket gives the
  lock up after it; `lock_timeout` is the waiter's wait; `statement_timeout` bounds a statement;
- NOTIFY on every change (pg_rows.py) so keepers drop what they cached.

Connections come from a small per-process pool: a thread borrows one per read or write, and
keeps the one its refresh lock holds until the lock is released. Threads of one process queue
on a per-profile thread lock first, so eight threads waiting for one profile use one connection.
The password never passes through argv or a message: it is in the URL held in the environment,
PGPASSWORD or ~/.pgpass, and `location` is the URL without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors

from .._format import SCHEMA_VERSION
from .._local import (
    ENV_STORE,
    ENV_STORE_POOLER,
    STORE_MARGIN,
    Settings,
    process_label,
    redact_store,
)
from ..errors import NoTokens, StorageError, UsageError
from . import pg_schema
from .flock import lock_timeout
from .pg_errors import storage_error
from .pg_pool import Pool, connect
from .pg_rows import CHANGED_CHANNEL, PgTx
from .records import FIRST_PROFILE, Event, Leadership, ProfileRow, TokenRecord, TokenRow
from .rows import (
    PROFILE_COLS,
    RECORD_COLS,
    event_from_row,
    events_query,
    profile_from_row,
    record_from_row,
)

# Advisory-lock namespaces (the first key of the two-key form), so wxtoken's locks never meet
# another application's in the same database: "wxtk" and its neighbours.
LOCK_CLASS = 0x7778746B  # per-profile refresh lock
SCHEMA_CLASS = LOCK_CLASS + 1  # migrations, one host at a time
LEADER_CLASS = LOCK_CLASS + 2  # keeper leadership (pg_leader.py)

# An ordinary statement may take as long as committing a refresh may; the lock wait sets its own.
STATEMENT_TIMEOUT_MS = int(STORE_MARGIN * 1000)


def advisory_key(text: str) -> int:
    """A signed 32-bit key for `text` (a collision only makes two profiles take turns)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


T = TypeVar("T")

_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class PostgresRecords:
    """The RecordStore in a PostgreSQL database (tables in the connection's search_path)."""

    def __init__(self, url: str, settings: Settings, clock: Callable[[], float] = time.time):
        self.url = url
        self._location = redact_store(url)
        self._clock = clock
        timeouts = settings.timeouts
        # A client gone silent inside a refresh holds the lock until PostgreSQL drops it, after
        # the longest a live one is silent (see _local.Timeouts).
        self.idle_timeout_ms = int(timeouts.holder_idle * 1000)
        self._local = threading.local()
        # Behind a transaction-mode pooler a server session lasts one transaction: no prepared
        # statements, and none of what needs a session (keeper leadership, LISTEN).
        self.pooled = settings.store_pooler == "transaction"
        self._pool = Pool(url, process_label("client"), self._ready, prepare=not self.pooled)
        self._schema_ok = False
        self._schema_guard = threading.Lock()
        # name -> (row version, row): see _versioned
        self._profile_rows: dict[str, tuple[str, ProfileRow]] = {}
        self._record_rows: dict[str, tuple[str, TokenRecord]] = {}

    def __repr__(self) -> str:
        return f"PostgresRecords({self._location!r})"

    @property
    def location(self) -> str:
        return self._location

    # --- connections and schema -------------------------------------------------------------

    def _ready(self, conn: psycopg.Connection[Any], create: bool) -> None:
        """Check (and with `create`, bring up) the schema once per process."""
        if self._schema_ok:
            return
        with self._schema_guard:
            if not self._schema_ok:
                self._schema_ok = self._migrate(conn, create)

    def _migrate(self, conn: psycopg.Connection[Any], create: bool) -> bool:
        version = pg_schema.known_version(conn, self._location)
        if version == SCHEMA_VERSION:
            return True
        if version == 0 and not create:
            return False
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (SCHEMA_CLASS,))
            # Another host may have migrated while this one waited, perhaps a newer release.
            current = pg_schema.known_version(conn, self._location)
            for step in range(current + 1, SCHEMA_VERSION + 1):
                for statement in pg_schema.statements(step):
                    conn.execute(statement)
            if current < SCHEMA_VERSION:
                tx = PgTx(conn, self._clock)
                values = {pg_schema.VERSION_KEY: str(SCHEMA_VERSION)}
                if current == 0:
                    values["store_id"] = uuid.uuid4().hex
                tx.set_meta(values)
                kind = "schema_created" if current == 0 else "schema_upgraded"
                tx.event(None, kind, {"from": current, "to": SCHEMA_VERSION})
        return True

    @contextlib.contextmanager
    def _borrow(self, doing: str, create: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """This thread's locked connection if it holds a refresh lock, else one from the pool."""
        pinned: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        with self._errors(doing):
            if pinned is not None:
                yield pinned
                return
            conn = self._pool.get(create)
            try:
                if not self._schema_ok:
                    raise NoTokens(f"no wxtoken store at {self._location} yet", fix=FIRST_PROFILE)
                yield conn
            finally:
                self._pool.put(conn)

    def exists(self) -> bool:
        """Whether wxtoken's tables are there (the database itself is the administrator's)."""
        if not self._schema_ok:
            with self._errors("open"):
                self._pool.put(self._pool.get(False))  # checks the schema on the way
        return self._schema_ok

    def leadership(self, group: str, identity: str) -> Leadership:
        from .pg_leader import PgLeadership

        if self.pooled:
            raise UsageError(
                f"a keeper leads through a session of its own, which {ENV_STORE_POOLER}="
                "transaction says this store's connections do not have",
                fix=f"run the keeper with {ENV_STORE} pointing at PostgreSQL itself (or a "
                f"session-mode pool) and without {ENV_STORE_POOLER}",
            )
        return PgLeadership(self.url, group, identity)

    def leaders(self) -> list[str]:
        from .pg_leader import leaders

        with self._borrow("read who leads the keepers") as conn:
            return leaders(conn)

    def watch(self, changed: Callable[[str | None], None], stopping: threading.Event) -> None:
        """LISTEN for the NOTIFY every change sends (pg_rows.py), reconnecting after a loss."""
        while not stopping.is_set():
            try:
                with connect(self.url, process_label("listen")) as conn:
                    conn.execute(f"LISTEN {CHANGED_CHANNEL}")
                    changed(None)  # what changed while not listening is unknown
                    while not stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            changed(note.payload)
            except psycopg.Error:
                stopping.wait(1.0)

    def reserve(self, threads: int) -> None:
        self._pool.grow(threads)

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise self._storage_error(exc, doing) from None

    def _storage_error(self, exc: psycopg.Error, doing: str) -> StorageError:
        return storage_error(exc, doing, self._location, pooled=self.pooled)

    # --- writes -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, doing: str, *, create: bool = False) -> Iterator[PgTx]:
        with self._borrow(doing, create=create) as conn, conn.transaction():
            if conn is not getattr(self._local, "conn", None):
                conn.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            elif self._local.seen:
                self._local.seen = {}
            yield PgTx(conn, self._clock)

    # --- reads ------------------------------------------------------------------------------

    def _fetch(self, doing: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._borrow(doing) as conn:
            return conn.execute(sql, args).fetchall()

    def meta(self) -> dict[str, str]:
        if not self.exists():
            return {}
        return dict(self._fetch("read", "SELECT key, value FROM meta"))

    def profiles(self) -> list[ProfileRow]:
        if not self.exists():
            return []
        self._profile_rows = self._versioned(
            "read its profiles", "profiles", PROFILE_COLS, self._profile_rows, profile_from_row,
        )  # fmt: skip
        return [row for _, (_, row) in sorted(self._profile_rows.items())]

    def profile(self, name: str) -> ProfileRow | None:
        if not self.exists():
            return None
        # Under a refresh lock the profile is read once (a refresh asks for it, then for its
        # secrets), until a write under the lock may have changed it.
        seen: dict[str, ProfileRow | None] | None = getattr(self._local, "seen", None)
        if seen is not None and name in seen:
            return seen[name]
        with self._borrow("read a profile") as conn:
            row = PgTx(conn, self._clock).profile(name)
        if seen is not None:
            seen[name] = row
        return row

    def token(self, name: str) -> TokenRow | None:
        if not self.exists():
            return None
        with self._borrow("read tokens") as conn:
            return PgTx(conn, self._clock).token(name)

    def records(self) -> dict[str, TokenRecord]:
        if not self.exists():
            return {}
        self._record_rows = self._versioned(
            "read tokens", "tokens", f"profile, {RECORD_COLS}", self._record_rows,
            lambda r: record_from_row(r[0], r[1:]),
        )  # fmt: skip
        return {name: rec for name, (_, rec) in self._record_rows.items()}

    def _versioned(
        self,
        doing: str,
        table: str,
        cols: str,
        memo: dict[str, tuple[str, T]],
        decode: Callable[[tuple[Any, ...]], T],
    ) -> dict[str, tuple[str, T]]:
        """Every row of `table` (first of `cols` its key), re-reading only rows whose version
        changed since `memo`: the keeper passes over thousands each second, and most are as
        they were. A row's version is its xmin, the transaction that wrote it, which every
        update changes; a version read before a later change only causes one more re-read.
        """
        key = cols.split(",", 1)[0]
        versions = dict(self._fetch(doing, f"SELECT {key}, xmin::text FROM {table}"))
        fresh = {k: v for k, v in memo.items() if versions.get(k) == v[0]}
        stale = [k for k in versions if k not in fresh]
        if stale:
            sql = f"SELECT xmin::text, {cols} FROM {table} WHERE {key} = ANY(%s)"
            for r in self._fetch(doing, sql, (stale,)):
                fresh[r[1]] = (r[0], decode(r[1:]))
        return fresh

    def events(
        self,
        profile: str | None,
        kinds: tuple[str, ...],
        limit: int,
        since: float | None = None,
    ) -> list[Event]:
        if not self.exists():
            return []
        sql, args = events_query("%s", profile, kinds, limit, since)
        return [event_from_row(r) for r in self._fetch("read events", sql, tuple(args))]

    # --- single flight ----------------------------------------------------------------------

    @contextlib.contextmanager
    def refresh_lock(self, name: str, timeout: float) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            # Nested (a service app's minter under its own lock): the same transaction takes
            # this lock too, and both are released when the outer one commits.
            with self._errors("lock the profile"):
                self._local.conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, advisory_key(name))
                )
            yield
            return
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault((self.url, name), threading.Lock())
        started = time.monotonic()
        if not tlock.acquire(timeout=timeout):
            raise lock_timeout(name, timeout)
        try:
            conn = self._lock(name, max(0.001, timeout - (time.monotonic() - started)))
            self._local.conn = conn
            self._local.seen = {}
            try:
                yield
            except BaseException:
                self._release(conn, failing=True)
                raise
            self._release(conn, failing=False)
        finally:
            self._local.conn = None
            self._local.seen = None
            tlock.release()

    def _lock(self, name: str, timeout: float) -> psycopg.Connection[Any]:
        with self._errors("lock the profile"):
            conn = self._pool.get(False)
        try:
            wait_ms = max(1, int(timeout * 1000))
            # One round trip (only our integers in it, so no parameters are needed): the keeper
            # takes thousands of these locks a minute.
            conn.execute(
                f"BEGIN; SET LOCAL lock_timeout = {wait_ms}; "
                f"SET LOCAL statement_timeout = {wait_ms + STATEMENT_TIMEOUT_MS}; "
                f"SET LOCAL idle_in_transaction_session_timeout = {self.idle_timeout_ms}; "
                f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, {advisory_key(name)}); "
                f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"
            )
            return conn
        except (pgerrors.LockNotAvailable, pgerrors.QueryCanceled, pgerrors.DeadlockDetected):
            self._give_back(conn)
            raise lock_timeout(name, timeout) from None
        except psycopg.Error as exc:
            self._give_back(conn)
            raise self._storage_error(exc, "lock the profile") from None
        except BaseException:
            self._give_back(conn)
            raise

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(psycopg.Error):
            if not conn.broken:
                conn.execute("ROLLBACK")
        self._pool.put(conn)

    def _release(self, conn: psycopg.Connection[Any], *, failing: bool) -> None:
        """Commit what was written under the lock, which releases it.

        The writes were savepoints the manager saw succeed; committing keeps them whether the
        refresh then succeeded or failed (a failure is recorded under the lock too). If the
        commit itself fails, the error is raised unless another one is already on its way.
        """
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            if not failing:
                raise self._storage_error(exc, "save under the profile's lock") from None
        finally:
            self._pool.put(conn)

    def check_writable(self) -> None:
        # The server owns its disk; a failed write is rolled back whole, so nothing to pre-check
        # beyond reaching it, which the refresh lock has just done.
        return None
