"""The `wxtoken` command: click group, and the single error boundary that maps errors to exits.

Conventions scripts rely on: stdout carries only what a script captures (a token, an export, a
--json document); everything else (messages, prompts, progress, the authorize URL) goes to
stderr. Heavy modules (httpx2, rich, starlette) are imported inside the commands that need them,
so `wxtoken token` with a valid stored token stays close to bare interpreter start-up.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from . import _local
from ._version import __version__
from .errors import (
    EXIT_USAGE,
    OAuthError,
    UsageError,
    WxtokenError,
)

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  other error (wrong client id/secret, redirect URI rejected, state mismatch, ...)
  2  usage error
  3  attention: a refresh token is inside the warning window (status)
  4  login required (no tokens; refresh token expired, revoked or rejected;
     code invalid, expired or used; consent denied)
  5  Webex unreachable, failing after retries, or answering malformed responses
  6  storage or key error (wrong passphrase, tampered data, unsafe permissions)
"""

PROFILE_HELP = "Profile to use (default: $WXTOKEN_PROFILE, or the only profile)."


def _err(text: str) -> None:
    click.echo(text, err=True)


_SETTINGS: list[_local.Settings] = []


def _settings() -> _local.Settings:
    """This process's settings, read once (a bad WXTOKEN_* value is a usage error)."""
    if not _SETTINGS:
        _SETTINGS.append(_local.Settings())
    return _SETTINGS[0]


def _store() -> Any:
    from .store import open_store

    prompt: Callable[[str, bool], str] | None = None
    if sys.stdin.isatty():

        def prompt(label: str, confirm: bool) -> str:
            value: str = click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
            return value

    return open_store(_settings(), prompt=prompt)


def _manager(profile: str | None) -> Any:
    from .manager import TokenManager

    return TokenManager(profile, store=_store(), settings=_settings())


def profile_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-p", "--profile", "profile", envvar="WXTOKEN_PROFILE", default=None, help=PROFILE_HELP
    )(f)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wxtoken", message="%(prog)s %(version)s")
def cli() -> None:
    """Create, store, refresh, hand over and watch OAuth tokens for Webex integrations.

    \b
    Typical first run (a recorder such as Verint):
      wxtoken profile add recorder --client-id C123... \\
          --redirect-uri http://127.0.0.1:8765/callback --preset verint-calling
      wxtoken login -p recorder
      wxtoken export -p recorder      # the refresh token for the recorder
      wxtoken status                  # exit 3 when a refresh token nears its end

    Data lives in $WXTOKEN_HOME (default: the platform's user data directory).
    """


# --- profiles ----------------------------------------------------------------------------------


@cli.group(epilog=EXIT_CODES_HELP)
def profile() -> None:
    """Add, list, show and remove integration profiles."""


def _read_client_secret(from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError(
                "no client secret arrived on stdin",
                fix="printf '%s\\n' \"$SECRET\" | wxtoken profile add ... --client-secret-stdin",
            )
        return value
    env = _settings().client_secret
    if env:
        return env
    if sys.stdin.isatty():
        value = click.prompt("Client secret (input hidden)", hide_input=True, err=True).strip()
        if value:
            return value
    raise UsageError(
        "no client secret given (it is never taken as a command-line argument)",
        fix="use --client-secret-stdin, set WXTOKEN_CLIENT_SECRET, or run on a terminal",
    )


@profile.command("add", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--client-id", required=True, help="The integration's Client ID.")
@click.option(
    "--redirect-uri",
    required=True,
    help="A redirect URI registered on the integration; http://127.0.0.1:PORT/... "
    "or http://localhost:PORT/... lets wxtoken catch the redirect itself.",
)
@click.option(
    "--scopes", default=None, help='Space-separated scopes, e.g. "spark:kms spark:people_read".'
)
@click.option(
    "--preset", default=None, help="A scope preset: verint-calling, calling-admin-recordings."
)
@click.option(
    "--base-url", default=None, help="Webex API base URL (default https://webexapis.com)."
)
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@click.option("--replace", is_flag=True, help="Overwrite an existing profile of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def profile_add(
    name: str,
    client_id: str,
    redirect_uri: str,
    scopes: str | None,
    preset: str | None,
    base_url: str | None,
    client_secret_stdin: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Add a profile. The client secret comes from a hidden prompt, stdin or
    $WXTOKEN_CLIENT_SECRET, never from the command line.

    \b
    Example:
      wxtoken profile add recorder --client-id C0123... \\
        --redirect-uri http://127.0.0.1:8765/callback --preset verint-calling
    """
    from .profile import (
        DEFAULT_BASE_URL,
        Profile,
        parse_scopes,
        preset_scopes,
        validate_base_url,
        validate_client_id,
        validate_name,
        validate_redirect_uri,
    )

    if (scopes is None) == (preset is None):
        raise UsageError(
            "give exactly one of --scopes or --preset", fix="e.g. --preset verint-calling"
        )
    chosen = parse_scopes(scopes) if scopes is not None else preset_scopes(preset or "")
    prof = Profile(
        name=validate_name(name),
        client_id=validate_client_id(client_id),
        redirect_uri=validate_redirect_uri(redirect_uri),
        scopes=chosen,
        base_url=validate_base_url(base_url or DEFAULT_BASE_URL),
    )
    secret = _read_client_secret(client_secret_stdin)
    store = _store()
    store.save_profile(prof, secret, replace=replace)
    if as_json:
        click.echo(json.dumps(_profile_json(prof, store)))
    _err(
        f"Profile {prof.name!r} saved in {store.location} "
        f"(secrets encrypted; key: {_key_text(store.key_source())})."
    )
    _err(f"Next: wxtoken login -p {prof.name}")


def _key_text(source: str | None) -> str:
    from .store.keys import WEAKNESS

    return WEAKNESS.get(source or "", "none yet")


def _profile_json(p: Any, store: Any) -> dict[str, Any]:
    record = store.token_record(p.name)
    return {
        "name": p.name,
        "client_id": p.client_id,
        "redirect_uri": p.redirect_uri,
        "scopes": list(p.scopes),
        "base_url": p.base_url,
        "has_tokens": record is not None,
    }


@profile.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def profile_list(as_json: bool) -> None:
    """List profiles.

    \b
    Example:
      wxtoken profile list --json
    """
    store = _store()
    profiles = store.list_profiles()
    if as_json:
        click.echo(json.dumps([_profile_json(p, store) for p in profiles]))
        return
    if not profiles:
        _err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
        return
    for p in profiles:
        click.echo(f"{p.name}\t{p.client_id}\t{p.base_url}")


@profile.command("show")
@click.argument("name", required=False)
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def profile_show(name: str | None, profile: str | None, as_json: bool) -> None:
    """Show one profile (never its secret).

    \b
    Example:
      wxtoken profile show recorder
    """
    from .manager import resolve_profile_name

    store = _store()
    p = store.get_profile(resolve_profile_name(store, name or profile))
    data = _profile_json(p, store)
    if as_json:
        click.echo(json.dumps(data))
        return
    for key, value in data.items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key:13} {shown}")
    click.echo(f"{'client_secret':13} (stored encrypted; not shown)")


@profile.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def profile_remove(name: str, yes: bool, as_json: bool) -> None:
    """Remove a profile and its local tokens (the grant at Webex stays; see `revoke`).

    \b
    Example:
      wxtoken profile remove old-recorder --yes
    """
    store = _store()
    store.get_profile(name)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"removing {name!r} needs confirmation", fix=f"wxtoken profile remove {name} --yes"
            )
        click.confirm(f"Remove profile {name!r} and its local tokens?", abort=True, err=True)
    store.remove_profile(name)
    if as_json:
        click.echo(json.dumps({"removed": name}))
    _err(f"Profile {name!r} removed.")


# --- login and exchange ------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--no-browser", is_flag=True, help="Print the sign-in URL instead of opening it.")
@click.option("--paste", is_flag=True, help="Paste the redirect URL instead of listening for it.")
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds to wait for the sign-in.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def login(
    profile: str | None, no_browser: bool, paste: bool, timeout: float, as_json: bool
) -> None:
    """Sign in at Webex and store the tokens (state and PKCE S256 checked).

    With a loopback redirect URI (http://127.0.0.1:PORT/... or http://localhost:PORT/...)
    wxtoken listens on 127.0.0.1 for the redirect; otherwise, or with --paste, paste the
    address the browser lands on. The browser is $BROWSER or the platform's default.

    \b
    Examples:
      wxtoken login -p recorder
      wxtoken login -p recorder --no-browser --paste
    """
    from .login import run_login

    manager = _manager(profile)
    result = run_login(manager, open_browser=not no_browser, paste=paste, timeout=timeout)
    _summary(manager, result, as_json)


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--code",
    required=True,
    help="The authorization code, or - to read it from stdin (preferred: a code on "
    "the command line lands in shell history and the process list).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def exchange(profile: str | None, code: str, as_json: bool) -> None:
    """Exchange a code obtained elsewhere: the seed procedure's curl step, done safely.

    \b
    Example:
      pbpaste | wxtoken exchange -p recorder --code -
    """
    if code == "-":
        code = sys.stdin.readline().strip()
    else:
        _err(
            "wxtoken: warning: a code on the command line is visible to other local users; "
            "prefer --code - and stdin"
        )
    if not code:
        raise UsageError("no authorization code given", fix="echo CODE | wxtoken exchange --code -")
    from .oauth import parse_pasted

    manager = _manager(profile)
    if "://" in code or "code=" in code:
        code = parse_pasted(code, manager.profile.redirect_uri, None)
    result = manager.exchange_code(code, code_verifier=None, via="exchange")
    _summary(manager, result, as_json)


def _summary(manager: Any, result: Any, as_json: bool) -> None:
    from .token import human_left, iso

    rec = result.record
    now = time.time()
    ident = rec.identity
    if as_json:
        click.echo(json.dumps(result.as_json(manager.name, manager.store.location)))
    who = ident.email or "unknown user"
    if ident.display_name:
        who = f"{ident.display_name} <{who}>"
    lines = [
        f"Signed in as {who}, org {ident.org_id or 'unknown'}.",
        f"  scopes granted  {' '.join(result.granted_scopes) or '(none reported)'}",
        f"  access token    expires {iso(rec.access_expires_at)} "
        f"(in {human_left(rec.access_expires_at - now)})",
    ]
    if rec.refresh_expires_at is not None:
        lines.append(
            f"  refresh token   expires {iso(rec.refresh_expires_at)} "
            f"(in {human_left(rec.refresh_expires_at - now)})"
        )
    lines.append(f"  stored in       {manager.store.location}")
    for w in result.warnings:
        lines.append(f"wxtoken: warning: {w}")
    lines.append(
        f"Next: `wxtoken export -p {manager.name}` hands the refresh token to the "
        "recorder; `wxtoken status` watches it."
    )
    _err("\n".join(lines))


# --- using the tokens --------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--min-valid",
    default=_local.DEFAULT_MIN_VALID,
    show_default=True,
    type=click.IntRange(0, 10**8),
    help="Refresh first if the token would expire within this many seconds.",
)
def token(profile: str | None, min_valid: int) -> None:
    """Print a valid access token on stdout (and nothing else).

    \b
    Example:
      curl -H "Authorization: Bearer $(wxtoken token -p recorder)" \\
        https://webexapis.com/v1/people/me
    """
    from ._fastpath import ask_keeper_line

    answered = ask_keeper_line(profile, min_valid, _settings())
    if answered is not None:
        sys.exit(answered)
    manager = _manager(profile)
    tok = manager.token(min_valid)
    left = tok.access_expires_at - time.time()
    if left < min_valid:
        _err(
            f"wxtoken: warning: the access token has only {int(left)} s left, less than "
            f"--min-valid {min_valid}, even after a refresh"
        )
    _rotation_warning(manager.name, manager.last_refresh)
    click.echo(tok.access_token)


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--force", is_flag=True, help="Refresh even if another process refreshed in the last minute."
)
def refresh(profile: str | None, force: bool) -> None:
    """Refresh the access token now (the refresh token is kept or rotated as Webex decides).

    \b
    Example:
      wxtoken refresh -p recorder --force
    """
    from .reasons import Forced
    from .token import human_left, iso

    manager = _manager(profile)
    result = manager.refresh(Forced(unless_newer_than=None if force else 60))
    tok = result.token
    if result.refreshed:
        _err(
            f"Refreshed {manager.name!r}: access token expires {iso(tok.access_expires_at)} "
            f"(in {human_left(tok.access_expires_at - time.time())})."
        )
    else:
        _err(
            f"{manager.name!r} was refreshed less than a minute ago; nothing to do "
            "(--force to refresh anyway)."
        )
    _rotation_warning(manager.name, result)


def _rotation_warning(name: str, result: Any) -> None:
    if result is None or not result.rotated:
        return
    msg = (
        "wxtoken: warning: Webex returned a NEW refresh token (stored); any copy handed to "
        "a recorder is now stale"
    )
    if result.last_export:
        msg += (
            f" (last export: {result.last_export.get('at')}, format "
            f"{result.last_export.get('format')})"
        )
    _err(msg + f"; hand it over again with `wxtoken export -p {name}`")


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--all", "all_", is_flag=True, help="Every profile (the default without -p).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.option(
    "--warn-days",
    default=14.0,
    show_default=True,
    type=click.FloatRange(0, 3650),
    help="Warn when a refresh token expires within this many days.",
)
def status(profile: str | None, all_: bool, as_json: bool, warn_days: float) -> int:
    """Show each profile's state (ok, warning, login_required) without printing any token.

    Exits with the worst state: 4 login_required, 3 warning, 0 ok. Needs no key and no network.

    \b
    Examples:
      wxtoken status
      wxtoken status --json --warn-days 30   # for monitoring
    """
    from .status import exit_code, profile_status

    store = _store()
    if profile and not all_:
        profiles = [store.get_profile(profile)]
    else:
        profiles = store.list_profiles()
    now = time.time()
    rows = [profile_status(store, p, now, warn_days) for p in profiles]
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows]))
    elif not rows:
        _err("No profiles yet. Add one with `wxtoken profile add NAME ...`.")
    else:
        _status_table(rows, now)
    return exit_code([r.state for r in rows])


def _status_table(rows: list[Any], now: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from .store.keys import WEAKNESS
    from .token import human_left

    colour = {"ok": "green", "warning": "yellow", "login_required": "red"}
    table = Table(show_header=True, header_style="bold")
    for col in ("profile", "state", "access token", "refresh token", "scopes", "org", "user"):
        table.add_column(col)
    for r in rows:

        def left(ts: float | None) -> str:
            return "-" if ts is None else human_left(ts - now)

        scopes = f"{len(r.scopes)} granted"
        missing = [s for s in r.requested_scopes if s not in r.scopes] if r.scopes else []
        if missing:
            scopes += f", missing {' '.join(missing)}"
        table.add_row(
            r.profile,
            f"[{colour[r.state]}]{r.state}[/]",
            left(r.access_expires_at),
            left(r.refresh_expires_at),
            scopes,
            r.org_id or "-",
            r.user or "-",
        )
    # Piped output (monitoring scripts, logs) gets full rows instead of 80-column wrapping.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    from .profile import DEFAULT_BASE_URL

    for r in rows:
        if r.base_url != DEFAULT_BASE_URL:
            # P20: tokens and the client secret go wherever the base URL points; say so.
            console.print(
                f"{r.profile}: talks to {r.base_url}, not Webex ({DEFAULT_BASE_URL})", markup=False
            )
        if r.reason:
            console.print(f"{r.profile}: {r.reason}", markup=False)
        if r.failures:
            console.print(
                f"{r.profile}: {r.failures} failed refresh attempt(s); last: {r.last_error}",
                markup=False,
            )
    first = rows[0]
    keeper = "running" if _local.keeper_alive(_settings().socket_path) else "not running"
    console.print(f"keeper: {keeper}", markup=False)
    console.print(
        f"store: {first.storage}  key: {WEAKNESS.get(first.key_source or '', 'none')}", markup=False
    )


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["refresh-token", "json", "env"]),
    default="refresh-token",
    show_default=True,
    help="What to print.",
)
def export(profile: str | None, fmt: str) -> None:
    """Hand the refresh token (and client credentials) to a recorder's data source.

    Records a hand-off event (time, format, fingerprint; never the token), so wxtoken can tell
    you later that a rotated token made this copy stale.

    \b
    Examples:
      wxtoken export -p recorder                       # just the refresh token
      wxtoken export -p recorder --format json          # client_id, client_secret, ...
      eval "$(wxtoken export -p recorder --format env)" # WEBEX_* variables
    """
    manager = _manager(profile)
    data = manager.export(fmt)
    _rotation_warning(manager.name, manager.last_refresh)
    from .token import iso

    if fmt == "refresh-token":
        click.echo(data.refresh_token)
    elif fmt == "json":
        click.echo(
            json.dumps(
                {
                    "client_id": data.client_id,
                    "client_secret": data.client_secret,
                    "refresh_token": data.refresh_token,
                    "refresh_expires_at": iso(data.refresh_expires_at),
                }
            )
        )
    else:
        for var, value in (
            ("WEBEX_CLIENT_ID", data.client_id),
            ("WEBEX_CLIENT_SECRET", data.client_secret),
            ("WEBEX_REFRESH_TOKEN", data.refresh_token),
            ("WEBEX_ACCESS_TOKEN", data.access_token),
        ):
            click.echo(f"{var}={shlex.quote(value)}")
    _err(
        f"Exported {manager.name!r} ({fmt}); the hand-off is recorded. Refresh token expires "
        f"{iso(data.refresh_expires_at)}."
    )


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def verify(profile: str | None, as_json: bool) -> int:
    """Check the token at Webex: who it belongs to, its expiry and its scopes.

    \b
    Example:
      wxtoken verify -p recorder --json
    """
    manager = _manager(profile)
    result = manager.verify()
    _rotation_warning(manager.name, manager.last_refresh)
    data = result.as_json()
    if as_json:
        click.echo(json.dumps(data))
    else:
        _err(
            f"Token of {data['display_name'] or ''} <{data['user']}>, org {data['org_id']}, "
            f"valid until {data['access_expires_at']} (per Webex)."
        )
    if not result.ok:
        _err(
            "wxtoken: error: the grant lacks scopes the profile needs: "
            f"{' '.join(result.missing_scopes)}; fix: `wxtoken login -p {manager.name}` and "
            "accept all scopes (register them on the integration first)"
        )
        return 1
    if not as_json:
        _err("All requested scopes granted.")
    return 0


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def revoke(profile: str | None, yes: bool) -> None:
    """Revoke the integration's grant at Webex, then remove the local tokens.

    Needs identity:tokens_write and an admin role. The profile itself stays.

    \b
    Example:
      wxtoken revoke -p recorder --yes
    """
    manager = _manager(profile)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "revoking needs confirmation", fix=f"wxtoken revoke -p {manager.name} --yes"
            )
        click.confirm(
            f"Revoke every grant of {manager.profile.client_id} in this org at Webex? "
            "Recorders using it stop working.",
            abort=True,
            err=True,
        )
    manager.revoke()
    _err(
        f"Revoked at Webex and removed locally for {manager.name!r}. Sign in again with "
        f"`wxtoken login -p {manager.name}`."
    )


@cli.command(epilog=EXIT_CODES_HELP)
@profile_option
def logout(profile: str | None) -> None:
    """Remove the local tokens only (the grant at Webex stays valid; see `revoke`).

    \b
    Example:
      wxtoken logout -p recorder
    """
    manager = _manager(profile)
    had = manager.logout()
    _err(
        f"Local tokens of {manager.name!r} {'removed' if had else 'were already absent'}; "
        "the grant at Webex is untouched."
    )


# --- keeper ------------------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
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
    "--metrics-listen",
    default=None,
    help="HOST:PORT for /metrics and /healthz (default 127.0.0.1:9477; port 0: any).",
)
@click.option(
    "--socket",
    "socket_path",
    default=None,
    help="Token socket path (default $WXTOKEN_HOME/keeper.sock).",
)
def keep(
    profiles: tuple[str, ...],
    all_: bool,
    config_path: str | None,
    print_config: bool,
    metrics_listen: str | None,
    socket_path: str | None,
) -> int:
    """Keep grants alive: refresh on schedule, alert before anything lapses, serve tokens.

    Runs in the foreground until SIGTERM or SIGINT (in-flight refreshes finish and are stored).
    Local programs get access tokens from the token socket; `wxtoken token` uses it
    automatically, so scripts need no store key while the keeper runs.

    \b
    Example:
      wxtoken keep --all --config /etc/wxtoken/keeper.toml
    """
    import dataclasses
    import signal
    import threading

    from .keeper.config import EXAMPLE, load_config, parse_listen
    from .keeper.run import Keeper
    from .keeper.service import MetricsServer, TokenSocket

    if print_config:
        click.echo(EXAMPLE, nl=False)
        return 0
    config = load_config(Path(config_path) if config_path else None)
    if metrics_listen is not None:
        host, port = parse_listen(metrics_listen, "--metrics-listen")
        config = dataclasses.replace(config, metrics_host=host, metrics_port=port)
    store = _store()
    wanted: tuple[str, ...] | None = None
    if profiles:
        wanted = profiles
    elif not all_:
        wanted = config.profiles
    store.fingerprint("")  # loads the key now: a missing key is exit 6 at start, not later
    keeper = Keeper(store, config, profiles=wanted)
    names = keeper.names()
    if not names:
        raise UsageError("there are no profiles to keep", fix="wxtoken profile add ... first")
    settings = _settings()
    # --socket, then WXTOKEN_SOCKET, then the config file, then the default in the home.
    if socket_path:
        sock_path = Path(socket_path).expanduser()
    elif settings.socket_explicit or config.socket_path is None:
        sock_path = Path(settings.socket_path)
    else:
        sock_path = config.socket_path
    metrics = MetricsServer(
        config.metrics_host, config.metrics_port, keeper.metrics, keeper.healthy
    )
    sock = TokenSocket(sock_path.absolute(), keeper.answer)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics.start()
    sock.start()
    _err(f"wxtoken keep: metrics and health on {metrics.url}/metrics")
    _err(f"wxtoken keep: token socket at {sock.path}")
    _err(
        f"wxtoken keep: keeping {len(names)} profile(s): {', '.join(names[:10])}"
        f"{' ...' if len(names) > 10 else ''}; alerts via "
        f"{', '.join(c.describe() for c in config.channels) or 'the log only'}"
    )
    try:
        keeper.run(stop)
    finally:
        sock.stop()
        keeper.close()
        metrics.stop()
    _err("wxtoken keep: stopped cleanly; in-flight refreshes were finished and stored")
    return 0


# --- emulator ----------------------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
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
    help="Register this redirect URI on the seeded integration (repeatable).",
)
@click.option(
    "--control", is_flag=True, help="Serve the test control API under /_emulator/ (loopback only)."
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Persist state to this file so a long demo survives a restart.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the base URL and seeded integration as one JSON line.",
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
    control: bool,
    state_file: str | None,
    as_json: bool,
) -> int:
    """Run a local Webex identity emulator (same /v1/... paths as Webex).

    \b
    Example:
      wxtoken emulator --port 0 --auto-approve
    """
    from pathlib import Path

    from .emulator.server import EmulatorOptions, serve

    if rotate is not None and not (
        rotate in ("never", "always", "reuse-kills-family") or rotate.startswith("grace")
    ):
        raise UsageError(
            f"--rotate {rotate!r} is not a rotation policy",
            fix="use never, always, grace:N or reuse-kills-family",
        )
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
        json=as_json,
    )
    return serve(opts)


# --- the error boundary ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    # Everything wxtoken creates is private from the first byte, whatever the caller's umask.
    os.umask(0o077)
    try:
        rv = cli.main(args=argv, prog_name="wxtoken", standalone_mode=False)
    except click.exceptions.Abort:
        _err("wxtoken: aborted")
        sys.exit(EXIT_USAGE if not sys.stdin.isatty() else 1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except WxtokenError as exc:
        _err(f"wxtoken: error: {exc.one_line()}")
        sys.exit(exc.exit_code)
    except _local.SettingError as exc:
        _err(f"wxtoken: error: {exc.message}; fix: {exc.fix}")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        _err("wxtoken: interrupted; nothing was half-written")
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["OAuthError", "cli", "main"]
