"""The keeper as a process: wire the scheduler, alerts, metrics and the token socket together,
stop cleanly on SIGTERM or SIGINT. `wxtoken keep` parses options and calls `serve`.

Stopping waits for work in flight, each piece bounded: a token answer or a refresh ends when
its exchange does (at the latest at the HTTP deadline, WXTOKEN_HTTP_DEADLINE), retries are not
started any more, and refreshes not yet started are dropped; the store keeps every grant as it
was, and a restarted keeper picks the schedule up from it.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import IO

from .._local import Settings
from ..errors import UsageError
from ..store import TokenStore
from .config import KeeperConfig
from .run import Keeper
from .service import MetricsServer, TokenSocket


def socket_path(settings: Settings, config: KeeperConfig, option: str | None) -> Path:
    """--socket, then WXTOKEN_SOCKET, then the config file, then the default in the home."""
    if option:
        return Path(option).expanduser().absolute()
    if settings.socket_explicit or config.socket_path is None:
        return Path(settings.socket_path)
    return config.socket_path.expanduser().absolute()


def serve(
    store: TokenStore,
    config: KeeperConfig,
    *,
    profiles: tuple[str, ...] | None,
    sock_path: Path,
    log: IO[str] = sys.stderr,
    settings: Settings | None = None,
) -> int:
    """Run until SIGTERM or SIGINT; work in flight finishes (or reaches its deadline) first."""
    store.unlock()  # a missing key is exit 6 at start, not at the first refresh
    keeper = Keeper(store, config, profiles=profiles, settings=settings, log=log)
    names = keeper.names()
    if not names:
        raise UsageError("there are no profiles to keep", fix="wxtoken profile add ... first")
    metrics = MetricsServer(
        config.metrics_host, config.metrics_port, keeper.metrics, keeper.healthy, log=log
    )
    sock = TokenSocket(sock_path, keeper.answer, log=log, about={"metrics": metrics.url})

    def on_signal(signum: int, frame: object) -> None:
        # From another thread: the handler runs inside whatever the main thread was doing,
        # possibly holding the very lock an Event's set() needs, which would deadlock.
        threading.Thread(target=keeper.stop, name="wxtoken-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics.start()
    sock.start()
    channels = ", ".join(c.describe() for c in config.channels) or "the log only"
    shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
    log.write(f"wxtoken keep: metrics and health on {metrics.url}/metrics\n")
    log.write(f"wxtoken keep: token socket at {sock.path}\n")
    log.write(f"wxtoken keep: keeping {len(names)} profile(s): {shown}; alerts via {channels}\n")
    log.flush()
    try:
        keeper.run()
    finally:
        keeper.stop()  # also on an error: retries in flight give up before the waits below
        sock.stop()
        keeper.close()
        metrics.stop()
    log.write(
        "wxtoken keep: stopped cleanly; refreshes in flight were stored, or given up at their "
        "deadline with the stored grant unchanged\n"
    )
    return 0
