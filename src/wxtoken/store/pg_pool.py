"""A small per-process pool of PostgreSQL connections for the shared store.

Threads borrow a connection per read or write and give it back; a refresh lock keeps its
connection until the lock is released. The bound keeps a keeper (or a script's threads) from
opening more connections than the server allows others; a borrower waits for one instead.
Connections are autocommit: transactions are explicit (`conn.transaction()`, or the lock's BEGIN).
Client-side TCP keepalives and `tcp_user_timeout` make a cut network an error within seconds
instead of a hang, on the client; the server's side is set per transaction (postgres.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from ..errors import StorageError

# Connections per process unless it says it runs more threads (`reserve`): few, so that many
# processes on many hosts stay under the server's max_connections (100 by default); 16
# processes of 8 threads each, all asking at once, then open at most 64.
POOL_SIZE = 4
BORROW_WAIT = 60.0  # seconds a thread waits for a free connection before giving up
CONNECT_TIMEOUT = 10  # seconds, libpq's connect_timeout
# A network cut is noticed after KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds
# of silence, or TCP_USER_TIMEOUT of unacknowledged data, instead of the kernel's two hours.
KEEPALIVE_IDLE = 5
KEEPALIVE_INTERVAL = 2
KEEPALIVE_COUNT = 3
TCP_USER_TIMEOUT_MS = 15_000

Conn = psycopg.Connection[Any]


# psycopg prepares a statement on the server after it has run this many times: less parsing and
# planning for the keeper's repeated statements (about a fifth more refreshes a second). Off
# behind a transaction-mode pooler (PgBouncer before 1.21), where the next transaction may get
# another server session without them.
PREPARE_AFTER = 5


def connect(url: str, name: str, *, prepare: bool = True) -> Conn:
    return psycopg.connect(
        url,
        autocommit=True,
        application_name=name,
        connect_timeout=CONNECT_TIMEOUT,
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE,
        keepalives_interval=KEEPALIVE_INTERVAL,
        keepalives_count=KEEPALIVE_COUNT,
        tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        prepare_threshold=PREPARE_AFTER if prepare else None,
    )


class Pool:
    def __init__(
        self,
        url: str,
        name: str,
        ready: Callable[[Conn, bool], None],
        size: int = POOL_SIZE,
        prepare: bool = True,
    ):
        self._prepare = prepare
        self._url = url
        self._name = name
        self._ready = ready
        self._idle: list[Conn] = []
        self.size = size
        self._slots = threading.Semaphore(size)
        self._guard = threading.Lock()

    def grow(self, size: int) -> None:
        """Allow up to `size` connections at once (never fewer than now)."""
        with self._guard:
            for _ in range(size - self.size):
                self._slots.release()
            self.size = max(self.size, size)

    def get(self, create: bool) -> Conn:
        """A live connection, its schema checked by `ready(conn, create)`."""
        if not self._slots.acquire(timeout=BORROW_WAIT):
            raise StorageError(
                f"every connection of this process to the store was busy for {BORROW_WAIT:g} s",
                fix="retry; if it repeats, lower the keeper's workers or look for a stuck query",
            )
        conn: Conn | None = None
        try:
            with self._guard:
                while self._idle and conn is None:
                    conn = self._idle.pop()
                    if conn.closed or conn.broken:
                        conn = None
            if conn is None:
                conn = connect(self._url, self._name, prepare=self._prepare)
            self._ready(conn, create)
            return conn
        except BaseException:
            if conn is not None:
                self._keep_or_close(conn)
            self._slots.release()
            raise

    def put(self, conn: Conn) -> None:
        try:
            self._keep_or_close(conn)
        finally:
            self._slots.release()

    def _keep_or_close(self, conn: Conn) -> None:
        idle = not conn.closed and not conn.broken
        if idle and conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            idle = False  # a transaction left open by a failure: never hand it to another
        if idle:
            with self._guard:
                self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
