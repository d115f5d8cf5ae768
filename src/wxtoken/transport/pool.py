"""Idle keep-alive connections per origin, shared safely by many threads.

A connection is in the pool only while idle; a thread takes it out for one exchange and gives it
back when the response was read to the end. Each origin's idle connections form a stack (the most
recently used is reused first, being the least likely to have been closed by the server). One
taken from the pool is checked first: past the idle expiry, or readable (EOF, reset or stray
bytes: the server closed it or is out of step), it is closed and the next one is tried. That check
happens before any byte of a request is written, so no request is ever sent twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .connection import Connection, Origin


class Pool:
    def __init__(self, max_idle_per_origin: int, idle_expiry: float, clock: Callable[[], float]):
        self._max_idle = max_idle_per_origin
        self._expiry = idle_expiry
        self._clock = clock
        self._idle: dict[Origin, list[Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, origin: Origin) -> Connection | None:
        """A live idle connection to `origin`, or None."""
        while True:
            with self._lock:
                stack = self._idle.get(origin)
                if not stack:
                    return None
                conn = stack.pop()
            if self._clock() - conn.idle_since < self._expiry and not conn.is_dropped():
                return conn
            conn.close()

    def give(self, conn: Connection) -> None:
        """Keep a connection whose response was read to the end, or close it if there is no room."""
        now = self._clock()
        conn.idle_since = now
        expired: list[Connection] = []
        with self._lock:
            stack = self._idle.setdefault(conn.origin, [])
            # The oldest lie at the bottom of the stack.
            while stack and now - stack[0].idle_since >= self._expiry:
                expired.append(stack.pop(0))
            if not self._closed and len(stack) < self._max_idle:
                stack.append(conn)
            else:
                expired.append(conn)
        for old in expired:
            old.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [conn for stack in self._idle.values() for conn in stack]
            self._idle.clear()
        for conn in idle:
            conn.close()
