"""Running the console: loopback sockets (127.0.0.1, and [::1] on the same port where the host
has IPv6), uvicorn without an access log (the start URL carries the one-time token), the start
URL printed once on stderr, and the browser opened through a private file.

The browser is not handed the start URL on its command line (other local users can read the
process list): like Jupyter, wxtoken writes a 0600 HTML file that redirects to it and opens
that file; it is removed once the console stops.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import IO

from ..errors import UsageError
from ..login import browser
from ..store.fs import create_private_file, ensure_private_dir
from .app import Console, build_app

NO_IPV6 = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
MAX_HEADER_BYTES = 64 * 1024  # a browser's request line and headers for this console: ~2 KB


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def bind_loopback(port: int) -> list[socket.socket]:
    """127.0.0.1:port, then [::1] on the same port unless the host has no IPv6."""
    try:
        first = _bind("127.0.0.1", port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port} for the console ({exc.strerror})",
            fix="wxtoken console --port 0 (any free port), or another --port N",
        ) from None
    port = int(first.getsockname()[1])
    try:
        return [first, _bind("::1", port)]
    except OSError as exc:
        if exc.errno in NO_IPV6:
            return [first]
        first.close()
        raise UsageError(
            f"cannot listen on [::1]:{port} for the console ({exc.strerror})",
            fix="wxtoken console --port 0 (any free port), or another --port N",
        ) from None


def opener_file(home: str, url: str) -> Path:
    """A private page that sends the browser on to `url` (meta refresh: no script needed)."""
    ensure_private_dir(Path(home))
    path = Path(home) / f"console-{os.getpid()}-open.html"
    path.unlink(missing_ok=True)
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={escape(url)}">'
        "<title>wxtoken console</title></head><body>"
        f'<p><a href="{escape(url)}">Open the wxtoken console</a></p></body></html>'
    )
    create_private_file(path, page.encode())
    return path


def serve(
    console: Console,
    port: int,
    *,
    open_browser: bool,
    err: IO[str] = sys.stderr,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Run until SIGINT or SIGTERM."""
    import uvicorn

    sockets = bind_loopback(port)
    port = int(sockets[0].getsockname()[1])
    console.gate.listening_on(port)
    start = console.gate.start_url(f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        build_app(console),
        log_level="warning",
        access_log=False,  # request lines carry the start token
        lifespan="off",
        # h11, not httptools: uvicorn's httptools protocol buffers a request's headers without
        # limit, so any local user could grow this process by sending a header that never
        # ends; h11 answers 431 past MAX_HEADER_BYTES.
        http="h11",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=30,
        server_header=False,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    opener: list[Path] = []

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            where = "127.0.0.1" + (" and [::1]" if len(sockets or ()) > 1 else "")
            err.write(
                f"wxtoken console listening on {where}, port {port} (loopback only).\n"
                f"Open this address once (it signs the browser in and is then spent):\n\n"
                f"  {start}\n\n"
                f"From another machine: ssh -N -L {port}:127.0.0.1:{port} USER@THIS-HOST, "
                "then open the address there. Stop with Ctrl-C.\n"
            )
            err.flush()
            if on_ready is not None:
                on_ready(start)
            if open_browser:
                opener.append(opener_file(console.settings.home, start))
                browser.open_browser(opener[0].as_uri(), _say_no_browser(err))

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        Server(config).run(sockets=sockets)
    finally:
        for path in opener:
            path.unlink(missing_ok=True)
    return 0


def _say_no_browser(err: IO[str]) -> browser.OnFailure:
    def say(why: str) -> None:
        err.write(
            f"wxtoken console: no browser could be started here ({why}); open the "
            "address above yourself.\n"
        )
        err.flush()

    return say
