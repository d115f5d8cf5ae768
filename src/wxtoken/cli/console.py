"""`wxtoken console`: the local web console (src/wxtoken/console/)."""

from __future__ import annotations

from pathlib import Path

import click

from ..console import DEFAULT_PORT
from .app import App, pass_app
from .options import EXIT_CODES_HELP


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help=f"Port on 127.0.0.1 (and [::1]); default {DEFAULT_PORT}, 0 picks a free one.",
)
@click.option("--no-browser", is_flag=True, help="Print the address only; open no browser.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The keeper's TOML configuration, for its schedule, thresholds and alert channels.",
)
@pass_app
def console(app: App, port: int | None, no_browser: bool, config_path: str | None) -> None:
    """Serve the admin console on loopback and open it in the browser.

    Every grant at a glance with an expiry timeline, a guided "connect a recorder" wizard,
    sign-in, export and revoke. Only this machine can reach it: it listens on 127.0.0.1 (and
    [::1]) and answers loopback host names only. It prints a one-time address on stderr; the
    first browser to open it gets the session, and nothing works without it. From another
    machine, forward the port over SSH and open the address there.

    \b
    Examples:
      wxtoken console
      wxtoken console --port 9000 --no-browser
      ssh -N -L 8766:127.0.0.1:8766 admin@recorder-host   # then open the printed address
    """
    from ..console.app import Console
    from ..console.security import Gate
    from ..console.server import serve
    from ..keeper.config import load_config

    config = load_config(Path(config_path) if config_path else None)
    chosen = DEFAULT_PORT if port is None else port
    c = Console(
        app.settings,
        app.store(),
        Gate(),
        config=config,
        config_path=config_path,
        transport=app.transport,
        clock=app.clock,
    )
    if not c.store_is_new():
        c.store.unlock()  # a passphrase is asked here, on the terminal, before serving
    serve(c, chosen, open_browser=not no_browser)
