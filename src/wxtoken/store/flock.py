"""Single flight on one host: a per-profile lock file held with flock(2), plus a thread lock.

flock dies with its process, so `kill -9` never leaves a stale lock, and unlike POSIX fcntl
locks it is not dropped when some other descriptor of the same file is closed in the process.
Threads of one process first queue on a per-profile `threading.Lock`, so they share the winner's
result instead of spinning on flock. Lock files are named by a hash of the profile name, so a
name can never steer a path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import StorageError, WebexUnavailable
from .fs import ensure_private_dir

# Keyed by lock path, shared by every store object of the process.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()

_debug = logging.getLogger("wxtoken.lock")  # `wxtoken --debug`: lock waits


class ProfileLocks:
    """flock-based refresh locks in one private directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._ready = False  # checked once: the keeper takes thousands of locks a second

    def path(self, name: str) -> Path:
        return self.directory / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")

    @contextlib.contextmanager
    def hold(self, name: str, timeout: float) -> Iterator[None]:
        if not self._ready:
            ensure_private_dir(self.directory)
            self._ready = True
        lock_path = self.path(name)
        with _THREAD_LOCKS_GUARD:
            tlock = _THREAD_LOCKS.setdefault(str(lock_path), threading.Lock())
        deadline = time.monotonic() + timeout
        if not tlock.acquire(timeout=timeout):
            raise lock_timeout(name, timeout)
        try:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(lock_path, flags, 0o600)
            except OSError as exc:
                raise StorageError(
                    f"cannot open the lock file {lock_path} ({exc.strerror})",
                    fix=f"make {self.directory} writable by you",
                ) from None
            try:
                delay = 0.002
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise lock_timeout(name, timeout) from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
                waited = time.monotonic() - (deadline - timeout)
                if waited >= 0.01:
                    _debug.debug("waited %.2f s for the lock of profile %r", waited, name)
                yield
            finally:
                os.close(fd)  # closing releases the flock
        finally:
            tlock.release()


def lock_timeout(name: str, timeout: float) -> WebexUnavailable:
    """The wait outlasts any refresh a working process can make (see _local.Timeouts), so a
    holder this slow is stuck, most likely on an unresponsive Webex or proxy: retrying later is
    the fix, not a storage repair."""
    return WebexUnavailable(
        f"another wxtoken has been refreshing profile {name!r} for over {timeout:g} s, longer "
        "than any refresh may take",
        fix="retry shortly; if it persists, look for a stuck `wxtoken` or keeper process "
        "(ps aux | grep wxtoken)",
    )
