"""`wxtoken emulator`: the local Webex identity service, for tests, demos and development."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .options import EXIT_CODES_HELP


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback must be asked for explicitly.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="TOML file declaring integrations, users, service apps and [policy].",
)
@click.option("--auto-approve", is_flag=True, help="Approve consent at once (scripts, demos).")
@click.option(
    "--access-ttl",
    type=click.IntRange(1),
    default=None,
    help="Access-token lifetime in seconds (default 1209600, 14 days).",
)
@click.option(
    "--refresh-ttl",
    type=click.IntRange(1),
    default=None,
    help="Refresh-token lifetime in seconds (default 7776000, 90 days).",
)
@click.option(
    "--rotate",
    default=None,
    help="Refresh-token rotation: never | always | grace:N | reuse-kills-family.",
)
@click.option(
    "--refresh-expiry",
    type=click.Choice(["sliding", "fixed", "sliding-daily"]),
    default=None,
    help="Refresh-token expiry policy (default sliding).",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Also register this redirect URI on the integration, first in its list (repeatable).",
)
@click.option(
    "--replace-redirect-uris",
    is_flag=True,
    help="Register only the --redirect-uri ones, instead of adding them to the built-in list.",
)
@click.option(
    "--control", is_flag=True, help="Serve the test control API under /_emulator/ (loopback only)."
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Keep state (integration, grants, tokens) in this file across restarts.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve HTTPS with a throwaway CA; its certificate's path is in the banner and JSON "
    "(trust it with SSL_CERT_FILE or a profile's --ca-file).",
)
@click.option(
    "--tls-name",
    "tls_names",
    multiple=True,
    help="With --tls: also put this host name in the certificate (repeatable).",
)
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --tls: keep the CA and keys here and reuse them at the next start (default: a "
    "private temporary directory removed at exit).",
)
@click.option("--quiet", is_flag=True, help="No request log on stderr.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the base URL and the integration's details as one JSON line.",
)
def emulator(
    host: str,
    port: int,
    config: str | None,
    auto_approve: bool,
    access_ttl: int | None,
    refresh_ttl: int | None,
    rotate: str | None,
    refresh_expiry: str | None,
    redirect_uris: tuple[str, ...],
    replace_redirect_uris: bool,
    control: bool,
    state_file: str | None,
    tls: bool,
    tls_names: tuple[str, ...],
    tls_dir: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Run a local stand-in for Webex's OAuth and APIs.

    The emulator is a local stand-in for Webex's OAuth service and the few Webex APIs
    wxtoken uses. It answers on Webex's own paths (sign-in and consent, access_token, people/me,
    tokenExpiry, authorizations, device and service-app tokens, messages), so you can try
    wxtoken without a Webex integration, run wxtoken's tests against it, or develop and test
    your own Webex integration's OAuth handling. It is not Webex: its tokens and client
    secrets work nowhere else, it reaches no Webex service, and it listens on loopback
    (127.0.0.1) unless --host says otherwise. It prints its integration's client id and
    secret at start, and one line per request (method, path, status, client id, outcome;
    never a secret) on stderr.

    \b
    Example:
      wxtoken emulator --port 0 --auto-approve
      wxtoken emulator --state-file ~/emu.json --redirect-uri http://127.0.0.1:9000/cb
      wxtoken emulator --tls --json     # HTTPS; "ca_file" names the CA to trust
    """
    from ..emulator.server import EmulatorOptions, serve

    if rotate is not None and not (
        rotate in ("never", "always", "reuse-kills-family") or rotate.startswith("grace")
    ):
        raise UsageError(
            f"--rotate {rotate!r} is not a rotation policy",
            fix="use never, always, grace:N or reuse-kills-family",
        )
    if (tls_names or tls_dir) and not tls:
        raise UsageError("--tls-name and --tls-dir go with --tls", fix="add --tls")
    opts = EmulatorOptions(
        host=host,
        port=port,
        config=Path(config) if config else None,
        auto_approve=auto_approve,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        rotate=rotate,
        refresh_expiry=refresh_expiry,
        control=control,
        state_file=Path(state_file) if state_file else None,
        redirect_uris=list(redirect_uris),
        replace_redirect_uris=replace_redirect_uris,
        json=as_json,
        quiet=quiet,
        tls=tls,
        tls_names=list(tls_names),
        tls_dir=Path(tls_dir) if tls_dir else None,
    )
    click.get_current_context().exit(serve(opts))
