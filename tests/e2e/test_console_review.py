"""The console under review, as a real `wxtoken console` process: what another local user can
do to it without a session (each a defect that was found and fixed)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import base_env
from tests.e2e.console_harness import start_console

HEADER_FLOOD = 4 * 1024 * 1024  # far beyond any real request's headers


def test_an_endless_header_is_cut_off_not_buffered(tmp_path: Path) -> None:
    """Any local user can connect; headers without an end used to be buffered without limit
    (the console's memory grew by what was sent, 200 MB for 200 MB)."""
    console = start_console(base_env(tmp_path))
    try:
        with socket.create_connection(("127.0.0.1", console.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ")
            sent = 0
            try:
                while sent < HEADER_FLOOD:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:
                pass  # the console closed the connection: what it should do
            sock.settimeout(5)
            try:
                answer = sock.recv(200)
            except (TimeoutError, ConnectionResetError):
                answer = b"(no answer: still reading the header)"
        refused = answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))
        closed = answer == b"" and sent < HEADER_FLOOD
        assert refused or closed, (answer, sent)
        assert console.proc.poll() is None  # still serving
    finally:
        console.stop()
    assert "Traceback" not in "".join(console.lines)
