"""Who holds a local TCP port, for the one line that says why the sign-in cannot listen.

Linux only (/proc/net/tcp and tcp6); elsewhere, or when /proc names nobody, callers just say the
port is taken. Processes of other users hide their descriptors, so for them only the user is
named. A process name is whatever its starter chose, so it is cleaned before it is shown.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import clean_server_text

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column
_SCAN_SECONDS = 1.0  # reading every process's descriptors is bounded: this is only a hint


@dataclass(frozen=True)
class Holder:
    uid: int
    pid: int | None = None
    command: str | None = None

    @property
    def is_other_user(self) -> bool:
        return self.uid != os.geteuid()

    def describe(self) -> str:
        user = _user_name(self.uid)
        if self.pid is not None:
            return f"held by pid {self.pid} ({self.command or '?'}) of user {user}"
        return f"held by a program of user {user}"


def holder(host: str, port: int, proc: Path = Path("/proc")) -> Holder | None:
    """The listener that stops us binding `host`:`port`, if /proc can tell."""
    conflicting = _conflicting(host)
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, hex_port = fields[1].rpartition(":")
            try:
                if int(hex_port, 16) != port or _address(family, address) not in conflicting:
                    continue
                uid, inode = int(fields[7]), int(fields[9])
            except ValueError:
                continue
            pid = _pid_of_socket(inode, proc)
            return Holder(uid, pid, _command(pid, proc) if pid is not None else None)
    return None


def _conflicting(host: str) -> set[str]:
    """Bound addresses that make binding `host` fail: itself and its family's wildcard, and
    for IPv4 also a dual-stack IPv6 wildcard or the IPv4-mapped form."""
    if ":" in host:
        return {host, "::"}
    return {host, "0.0.0.0", "::", f"::ffff:{host}"}


def _address(family: int, text: str) -> str:
    """/proc prints each 32-bit word of the address in host byte order."""
    raw = b"".join(struct.pack("=I", int(text[i : i + 8], 16)) for i in range(0, len(text), 8))
    return socket.inet_ntop(family, raw)


def _pid_of_socket(inode: int, proc: Path) -> int | None:
    target = f"socket:[{inode}]"
    deadline = time.monotonic() + _SCAN_SECONDS
    for entry in proc.iterdir():
        if not entry.name.isdigit() or time.monotonic() > deadline:
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    return int(entry.name)
        except OSError:  # another user's process, or one that just exited
            continue
    return None


def _command(pid: int, proc: Path) -> str | None:
    try:
        return clean_server_text((proc / str(pid) / "comm").read_text(), 40) or None
    except OSError:
        return None


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"{clean_server_text(pwd.getpwuid(uid).pw_name, 40)} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
