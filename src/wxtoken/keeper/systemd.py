"""`wxtoken keep --print-systemd-unit`: a systemd unit that runs this keeper as it was asked to run.

Everything in the unit comes from the running process, so it is right for a venv, pipx or system
install alike: ExecStart is the `wxtoken` that is running (not a guessed /usr/local/bin), with the
`keep` options given; Environment= carries the WXTOKEN_* settings in effect, from `Settings`,
except secret-valued ones, which belong in the EnvironmentFile the unit names; User= is whoever
runs the command, since the store is private to its owner. The hardening is fixed: no new
privileges, a read-only system with only the home (and the socket's directory) writable, a
private /tmp, no core dumps (a dump of the keeper would hold decrypted tokens and the store key).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._local import (
    DB_NAME,
    DEFAULT_HTTP_DEADLINE,
    DEFAULT_KEYRING_TIMEOUT,
    ENV_HOME,
    ENV_HTTP_DEADLINE,
    ENV_KEY_FILE,
    ENV_KEY_SOURCE,
    ENV_KEYRING_TIMEOUT,
    ENV_PASSPHRASE,
    ENV_PROFILE,
    ENV_SOCKET,
    ENV_STORE,
    Settings,
)
from ..errors import EXIT_USAGE, UsageError
from .config import KeeperConfig

# Secrets go here, root-owned and 0600; systemd reads it before dropping to User=. The leading
# "-" lets the unit start without it when no secret is needed.
ENV_FILE = "/etc/wxtoken/keeper.env"
# Where a user's files live: ProtectHome=yes would hide them from the service entirely.
HOME_TREES = ("/home", "/root", "/run/user")
UNIT_NAME = "wxtoken-keeper.service"


@dataclass(frozen=True)
class Running:
    """What the unit is built from: this process and the account running it."""

    command: tuple[str, ...]  # how to start this wxtoken: its console script, or python -m
    interpreter: tuple[str, ...]  # paths the command needs to read (the venv, the interpreter)
    user: str
    group: str

    @classmethod
    def this_process(cls, which: Callable[[str], str | None] = shutil.which) -> Running:
        import grp
        import pwd

        return cls(
            command=tuple(wxtoken_command(sys.argv[0], sys.executable, which)),
            interpreter=(
                sys.prefix,
                sys.base_prefix,
                os.path.realpath(sys.executable),
            ),
            user=pwd.getpwuid(os.geteuid()).pw_name,
            group=grp.getgrgid(os.getegid()).gr_name,
        )


def wxtoken_command(
    argv0: str, executable: str, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """The `wxtoken` console script that started this process (symlinks resolved, so a pipx
    shim or a PATH change does not move it), else the one beside the interpreter (a venv), else
    the one on PATH, else the interpreter running the package."""
    started = Path(argv0)
    candidates = [
        started if started.name == "wxtoken" else None,
        Path(executable).parent / "wxtoken",
        Path(found) if (found := which("wxtoken")) else None,
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return [os.path.realpath(candidate)]
    return [os.path.realpath(executable), "-m", "wxtoken"]


def keep_arguments(
    *,
    profiles: Sequence[str],
    all_: bool,
    config_path: str | None,
    metrics_listen: str | None,
    socket_option: str | None,
) -> list[str]:
    """The `keep` options given now, with paths made absolute (a unit has no working
    directory of the user's)."""
    args = ["keep"]
    if all_:
        args.append("--all")
    for name in profiles:
        args += ["-p", name]
    if config_path:
        args += ["--config", os.path.abspath(os.path.expanduser(config_path))]
    if metrics_listen:
        args += ["--metrics-listen", metrics_listen]
    if socket_option:
        args += ["--socket", os.path.abspath(os.path.expanduser(socket_option))]
    return args


def environment(settings: Settings) -> list[tuple[str, str]]:
    """The WXTOKEN_* settings the keeper needs, as in effect now; never a secret's value."""
    env = [(ENV_HOME, settings.home)]  # always: the service's own HOME would pick another
    if settings.key_file is not None:
        env.append((ENV_KEY_FILE, settings.key_file))
    if settings.key_source:
        env.append((ENV_KEY_SOURCE, settings.key_source))
    if settings.keyring_timeout != DEFAULT_KEYRING_TIMEOUT:
        env.append((ENV_KEYRING_TIMEOUT, f"{settings.keyring_timeout:g}"))
    if settings.socket_explicit:
        env.append((ENV_SOCKET, settings.socket_path))
    if settings.timeouts.http_deadline != DEFAULT_HTTP_DEADLINE:
        env.append((ENV_HTTP_DEADLINE, f"{settings.timeouts.http_deadline:g}"))
    if settings.profile:
        env.append((ENV_PROFILE, settings.profile))
    if settings.store_url is not None:
        # Without its password: the unit file is world-readable; ~/.pgpass holds that.
        env.append((ENV_STORE, settings.store_location))
    elif settings.db_path != os.path.join(settings.home, DB_NAME):
        env.append((ENV_STORE, f"sqlite://{settings.db_path}"))
    return env


def key_source(settings: Settings, stored: str | None) -> str | None:
    """The store's key source: as the store records it, else as these settings would choose."""
    if stored:
        return stored
    if settings.passphrase:
        return "passphrase"
    if settings.key_file is not None:
        return "keyfile"
    return settings.key_source or "keyring"


def secret_variables(settings: Settings, config: KeeperConfig, source: str | None) -> list[str]:
    """Names (never values) of the secret-valued variables the keeper will read."""
    names = [ENV_PASSPHRASE] if source == "passphrase" else []
    names += [c.token_env for c in config.webex]
    names += [c.password_env for c in config.email if c.password_env]
    return list(dict.fromkeys(names))


def _under(path: str, trees: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == t or real.startswith(t.rstrip("/") + "/") for t in trees)


def _quote(value: str, *, exec_line: bool = False) -> str:
    """A value as systemd reads it back: `%` is a specifier and, on ExecStart=, `$` expands
    a variable, so both are doubled; a value with spaces, quotes or backslashes is quoted."""
    if any(c in value for c in "\n\r\0"):
        raise UsageError(
            f"{value!r} cannot be written into a systemd unit (a line break)",
            fix="use paths and names without control characters",
        )
    escaped = value.replace("%", "%%")
    if exec_line:
        escaped = escaped.replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(
    running: Running,
    keep_args: Sequence[str],
    settings: Settings,
    config: KeeperConfig,
    socket_path: Path,
    stored_key_source: str | None = None,
) -> str:
    """The unit's text; see the module docstring for where each line comes from.
    `stored_key_source` is what the store records (None when there is no store yet)."""
    writable = [settings.home]
    socket_dir = str(socket_path.parent)
    if not _under(socket_dir, [settings.home]):
        writable.append(socket_dir)
    needed = [*running.command[:1], *running.interpreter, settings.home, *writable]
    if settings.key_file:
        needed.append(settings.key_file)
    protect_home = "read-only" if any(_under(p, HOME_TREES) for p in needed) else "yes"
    source = key_source(settings, stored_key_source)
    secrets = secret_variables(settings, config, source)
    exec_start = " ".join(_quote(a, exec_line=True) for a in [*running.command, *keep_args])
    stop = math.ceil(settings.timeouts.lock_wait)

    head = [
        "# systemd unit for the wxtoken keeper, printed by `wxtoken keep --print-systemd-unit`",
        "# for this install and user. Install it and start the keeper:",
        f"#   wxtoken keep ... --print-systemd-unit > /etc/systemd/system/{UNIT_NAME}",
        f"#   systemctl daemon-reload && systemctl enable --now {UNIT_NAME}",
        "# Profiles are signed in as the same user with the same WXTOKEN_HOME, e.g.:",
        f"#   sudo -u {running.user} env {ENV_HOME}={settings.home} \\",
        "#     wxtoken login -p NAME --no-browser",
        f"# Secret values never go in this file: put them in {ENV_FILE} (root-owned, 0600),",
        "# one NAME=value a line.",
    ]
    if secrets:
        head.append(f"# This keeper reads: {', '.join(secrets)}.")
    if source == "keyring":
        head += [
            "# The store's key is in the OS keyring, which a system service cannot reach: create",
            f"# the store with {ENV_KEY_FILE} or {ENV_PASSPHRASE} to run the keeper as a service.",
        ]
    elif source == "keyfile" and settings.key_file is None:
        head.append(f"# The store's key is a key file: print this unit with {ENV_KEY_FILE} set.")
    if protect_home == "read-only":
        head.append("# ProtectHome=read-only: wxtoken or its home lives under a home directory.")
    lines = [
        *head,
        "",
        "[Unit]",
        "Description=wxtoken keeper: keeps Webex grants alive and warns before they lapse",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={_quote(running.user)}",
        f"Group={_quote(running.group)}",
        *(f"Environment={_quote(f'{k}={v}')}" for k, v in environment(settings)),
        f"EnvironmentFile=-{ENV_FILE}",
        f"ExecStart={exec_start}",
        "# SIGTERM lets refreshes in flight finish and be stored: the longest refresh plus the",
        "# time to store it.",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={stop}",
        "Restart=on-failure",
        "RestartSec=10",
        "# Exit 2 is a bad option, setting or config file: restarting cannot fix it.",
        f"RestartPreventExitStatus={EXIT_USAGE}",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "# No core dumps: a dump of the keeper's memory would hold decrypted tokens and the key.",
        "LimitCORE=0",
        "ProtectSystem=strict",
        f"ProtectHome={protect_home}",
        "PrivateTmp=yes",
        *(f"ReadWritePaths={_quote(p)}" for p in writable),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
