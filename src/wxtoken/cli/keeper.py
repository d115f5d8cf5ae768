"""`wxtoken keep`: options in, the keeper process (keeper/daemon.py) out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from .app import App, pass_app
from .options import EXIT_CODES_HELP


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "-p",
    "--profile",
    "profiles",
    multiple=True,
    help="A profile to keep (repeatable; default: the config's list, else all).",
)
@click.option("--all", "all_", is_flag=True, help="Keep every profile in the store.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML configuration (see --print-config).",
)
@click.option("--print-config", is_flag=True, help="Print a complete, commented example config.")
@click.option(
    "--print-systemd-unit",
    is_flag=True,
    help="Print a hardened systemd unit that runs this wxtoken with these options, and exit.",
)
@click.option(
    "--metrics-listen",
    default=None,
    help="HOST:PORT for /metrics and /healthz (default 127.0.0.1:9477; port 0: any).",
)
@click.option(
    "--socket",
    "socket_option",
    default=None,
    help="Token socket path (default $WXTOKEN_HOME/keeper.sock).",
)
@pass_app
@click.pass_context
def keep(
    ctx: click.Context,
    app: App,
    profiles: tuple[str, ...],
    all_: bool,
    config_path: str | None,
    print_config: bool,
    print_systemd_unit: bool,
    metrics_listen: str | None,
    socket_option: str | None,
) -> None:
    """Keep grants alive: refresh on schedule, alert before anything lapses, serve tokens.

    Runs in the foreground until SIGTERM or SIGINT (in-flight refreshes finish and are stored).
    Local programs get access tokens from the token socket; `wxtoken token` uses it
    automatically, so scripts need no store key while the keeper runs.

    \b
    Examples:
      wxtoken keep --all --config /etc/wxtoken/keeper.toml
      wxtoken keep --all --config /etc/wxtoken/keeper.toml --print-systemd-unit \\
        > /etc/systemd/system/wxtoken-keeper.service
    """
    from ..keeper.config import EXAMPLE, load_config, parse_listen
    from ..keeper.daemon import serve, socket_path

    if print_config:
        click.echo(EXAMPLE, nl=False)
        return
    config = load_config(Path(config_path) if config_path else None)
    if metrics_listen is not None:
        host, port = parse_listen(metrics_listen, "--metrics-listen")
        config = dataclasses.replace(config, metrics_host=host, metrics_port=port)
    wanted = profiles or (None if all_ else config.profiles)
    sock = socket_path(app.settings, config, socket_option)
    if print_systemd_unit:
        from ..keeper import systemd

        args = systemd.keep_arguments(
            profiles=profiles,
            all_=all_,
            config_path=config_path,
            metrics_listen=metrics_listen,
            socket_option=socket_option,
        )
        # Read without the key; a store not created yet records nothing.
        stored = app.store().key_source()
        running = systemd.Running.this_process()
        unit = systemd.render_unit(running, args, app.settings, config, sock, stored)
        click.echo(unit, nl=False)
        return
    ctx.exit(serve(app.store(), config, profiles=wanted, sock_path=sock, settings=app.settings))
