"""Running the emulator: options and TOML config → seeded state → uvicorn on a loopback socket.

The socket is bound before uvicorn starts, so `--port 0` works and the printed URL is the real
one; the banner is printed only once uvicorn accepts connections, so a script that reads the
first line of `--json` output can connect at once. The banner goes to stdout; the request log
(`RequestLog`, one line per request) to stderr, so the two never mix.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError
from ..profile import is_loopback_host
from .app import DropConnection, create_app
from .clock import Clock
from .model import Integration, Policy, ServiceApp, User, b64_id
from .persistence import UnsafeStateFile, check_state_path, load, restore
from .requestlog import RequestLog
from .state import Emulator


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0
    config: Path | None = None
    auto_approve: bool = False
    access_ttl: int | None = None
    refresh_ttl: int | None = None
    rotate: str | None = None  # never | always | grace:N | reuse-kills-family
    refresh_expiry: str | None = None
    control: bool = False
    state_file: Path | None = None
    # Registered on the integrations before the seeded (or configured) ones, so the banner's
    # example uses them; with `replace_redirect_uris`, instead of them.
    redirect_uris: list[str] = field(default_factory=list)
    replace_redirect_uris: bool = False
    json: bool = False
    quiet: bool = False  # no request log
    tls: bool = False  # HTTPS with a throwaway CA (tlscerts.py)
    tls_names: list[str] = field(default_factory=list)  # more names for its certificate
    tls_dir: Path | None = None  # where the CA and keys go (default: a private temp dir)


def parse_rotate(value: str, policy: Policy) -> None:
    if value.startswith("grace"):
        _, _, seconds = value.partition(":")
        policy.rotate = "grace"
        if seconds:
            if not seconds.isdigit():
                raise UsageError(
                    f"--rotate {value}: N must be whole seconds", fix="--rotate grace:60"
                )
            policy.grace_seconds = int(seconds)
    else:
        policy.rotate = value


def build(opts: EmulatorOptions, *, clock: Clock | None = None) -> tuple[Emulator, dict[str, Any]]:
    """The emulator the options describe, and the seed the banner shows; `clock` for tests.

    With a state file, the state is written at once, so the integration's client id and secret
    are the same after a restart even if the emulator is killed before its first request."""
    if opts.replace_redirect_uris and not opts.redirect_uris:
        raise UsageError(
            "--replace-redirect-uris needs at least one --redirect-uri to register instead",
            fix="add --redirect-uri URI, or drop --replace-redirect-uris",
        )
    if opts.state_file is not None:
        try:
            check_state_path(opts.state_file)
        except UnsafeStateFile as exc:
            raise UsageError(str(exc), fix=exc.fix) from None
    if opts.state_file is not None and opts.state_file.exists():
        try:
            emu = restore(load(opts.state_file), clock=clock)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"the emulator state file {opts.state_file} is unreadable ({exc})",
                fix="move it aside to start with fresh state",
            ) from None
        _register(emu, opts.redirect_uris, replace=opts.replace_redirect_uris)
        seed = _describe(emu)
    else:
        config: dict[str, Any] = {}
        if opts.config is not None:
            try:
                config = tomllib.loads(opts.config.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise UsageError(
                    f"cannot read emulator config {opts.config}: {exc}", fix="fix the TOML file"
                ) from None
        try:
            emu = Emulator(Policy(**config.get("policy", {})), clock=clock)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"emulator config [policy]: {exc}", fix="fix the TOML file") from None
        seed = _seed(emu, config, opts.redirect_uris, replace=opts.replace_redirect_uris)
    p = emu.policy
    if opts.access_ttl is not None:
        p.access_ttl = opts.access_ttl
    if opts.refresh_ttl is not None:
        p.refresh_ttl = opts.refresh_ttl
    if opts.rotate is not None:
        parse_rotate(opts.rotate, p)
    if opts.refresh_expiry is not None:
        p.refresh_expiry = opts.refresh_expiry
    if opts.auto_approve:
        p.auto_approve = True
    try:
        p.validate()
    except ValueError as exc:
        raise UsageError(f"emulator policy: {exc}", fix="see `wxtoken emulator --help`") from None
    emu.persist_path = opts.state_file
    if opts.state_file is not None:
        try:
            emu.save()
        except OSError as exc:
            raise UsageError(
                f"cannot write the emulator state file {opts.state_file} ({exc.strerror})",
                fix="pick a --state-file in a directory you can write",
            ) from None
    return emu, seed


def _register(emu: Emulator, redirect_uris: list[str], *, replace: bool) -> None:
    """Put `redirect_uris` first on every integration; keep the others unless `replace`."""
    if not redirect_uris:
        return
    given = list(dict.fromkeys(redirect_uris))
    for integ in emu.integrations.values():
        kept = [] if replace else [u for u in integ.redirect_uris if u not in given]
        integ.redirect_uris = given + kept


def _seed(
    emu: Emulator, config: dict[str, Any], redirect_uris: list[str], *, replace: bool
) -> dict[str, Any]:
    if not config.get("integrations") and not config.get("users"):
        # Replacing is the seed's own rule (it keeps what every seeded integration needs).
        info = emu.seed_default(redirect_uris if replace else None)
        if not replace:
            _register(emu, redirect_uris, replace=False)
        return _describe(emu, bot=info["bot_token"])
    try:
        org_default = str(uuid.uuid4())
        for u in config.get("users", []):
            emu.add_user(
                User(
                    uuid=u.get("uuid", str(uuid.uuid4())),
                    email=u["email"],
                    org_uuid=u.get("org_id", org_default),
                    display_name=u.get("display_name", u["email"]),
                    roles=list(u.get("roles", ["Full_Admin"])),
                )
            )
        for i in config.get("integrations", []):
            emu.add_integration(
                Integration(
                    client_id=i["client_id"],
                    client_secret=i["client_secret"],
                    redirect_uris=list(i["redirect_uris"]),
                    scopes=list(i["scopes"]),
                    name=i.get("name", "Emulated integration"),
                )
            )
        for a in config.get("service_apps", []):
            app = ServiceApp(
                application_id=a.get("application_id", b64_id("APPLICATION", str(uuid.uuid4()))),
                client_id=a["client_id"],
                client_secret=a["client_secret"],
                scopes=list(a["scopes"]),
                authorized_org_uuids=list(a["authorized_org_ids"]),
                name=a.get("name", "Emulated service app"),
            )
            emu.add_service_app(app)
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"emulator config is missing or mistypes {exc}",
            fix="see the emulator section of the README",
        ) from None
    if not emu.users or not emu.integrations:
        raise UsageError(
            "emulator config needs at least one [[users]] and one [[integrations]]",
            fix="add them, or drop --config for the built-in defaults",
        )
    _register(emu, redirect_uris, replace=replace)
    first_org = next(iter(emu.users.values())).org_uuid
    return _describe(emu, bot=emu.issue_bot_token(first_org))


def _describe(emu: Emulator, bot: str | None = None) -> dict[str, Any]:
    integ = next(iter(emu.integrations.values()))
    user = emu.users.get(emu.consent_user or "") or next(iter(emu.users.values()))
    app = next(iter(emu.service_apps.values()), None)
    if bot is None:
        bot = next((t.value for t in emu.access.values() if t.bot), None)
    return {
        "client_id": integ.client_id,
        "client_secret": integ.client_secret,
        "integration_name": integ.name,
        "redirect_uris": integ.redirect_uris,
        "scopes": integ.scopes,
        "user": {
            "email": user.email,
            "display_name": user.display_name,
            "person_id": user.person_id,
        },
        "org_id": user.org_uuid,
        "service_app": None
        if app is None
        else {
            "application_id": app.application_id,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
        "bot_token": bot,
    }


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it Nagle plus delayed ACKs cost ~40 ms per keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            fix="pick another --port, or --port 0 for any free port",
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def serve(opts: EmulatorOptions, out: IO[str] | None = None, log: IO[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM: banner on `out`, request log on `log` (stdout, stderr)."""
    import uvicorn

    if not is_loopback_host(opts.host) and opts.control:
        raise UsageError(
            "the control API (--control) is served only on loopback addresses",
            fix="drop --control, or use --host 127.0.0.1",
        )
    emu, seed = build(opts)
    sock = _bind(opts.host, opts.port)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    tls_args, tls_seed, cleanup = _tls(opts)
    base_url = f"{'https' if opts.tls else 'http'}://{shown_host}:{port}"
    seed = dict(seed, base_url=base_url, control=opts.control, **tls_seed)
    banner_out = out or sys.stdout
    request_log = None if opts.quiet else RequestLog(emu, log or sys.stderr)
    app = create_app(emu, control=opts.control, on_reply=request_log)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
        timeout_keep_alive=30,
        date_header=False,  # the router dates each answer by the emulator's own clock
        **tls_args,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            _banner(seed, opts, banner_out)

    # uvicorn re-raises the signal that stopped it once it has shut down; with these no-op
    # handlers in place that re-raise is harmless and we exit 0 as documented.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        Server(config).run(sockets=[sock])
    finally:
        cleanup()
    emu.save()
    return 0


def _tls(opts: EmulatorOptions) -> tuple[dict[str, Any], dict[str, Any], Callable[[], None]]:
    """uvicorn's TLS arguments, what the banner says of TLS, and what removes the keys at exit
    (a directory of our own making; one given with --tls-dir is left in place)."""
    if not opts.tls:
        return {}, {}, lambda: None
    import shutil
    import tempfile

    from .tlscerts import make_tls_files

    made = opts.tls_dir is None
    directory = Path(tempfile.mkdtemp(prefix="wxtoken-emulator-tls-")) if made else opts.tls_dir
    assert directory is not None
    files = make_tls_files(directory, tuple(opts.tls_names), reuse=not made)
    args = {"ssl_certfile": str(files.cert_file), "ssl_keyfile": str(files.key_file)}
    return (
        args,
        {"ca_file": str(files.ca_file)},
        (lambda: shutil.rmtree(directory, ignore_errors=True)) if made else (lambda: None),
    )


def _banner(seed: dict[str, Any], opts: EmulatorOptions, out: IO[str]) -> None:
    if opts.json:
        out.write(json.dumps(seed) + "\n")
        out.flush()
        return
    lines = [
        f"Webex emulator listening on {seed['base_url']}",
        f"  integration    {seed['integration_name']}",
        f"  client id      {seed['client_id']}",
        f"  client secret  {seed['client_secret']}   (emulator only; never a real secret)",
        f"  redirect URIs  {' '.join(seed['redirect_uris'])}",
        f"  scopes         {' '.join(seed['scopes'])}",
        f"  signed-in user {seed['user']['email']} (org {seed['org_id']})",
        f"  control API    {'on at /_emulator/' if opts.control else 'off (--control)'}",
        *(
            [f"  CA certificate {seed['ca_file']}   (throwaway; trust it to use HTTPS)"]
            if "ca_file" in seed
            else []
        ),
        "",
        "Try:",
        *([f"  export SSL_CERT_FILE={seed['ca_file']}"] if "ca_file" in seed else []),
        f"  export WXTOKEN_CLIENT_SECRET={seed['client_secret']}",
        f"  wxtoken profile add emu --client-id {seed['client_id']} \\",
        f"      --redirect-uri {seed['redirect_uris'][0]} --preset verint-calling \\",
        f"      --base-url {seed['base_url']}",
        "  wxtoken login -p emu",
        "",
        "Each request is logged on stderr"
        + (" (off: --quiet)." if opts.quiet else "; --quiet turns it off."),
        "Ctrl-C stops it.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()
