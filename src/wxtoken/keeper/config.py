"""The keeper's configuration: one TOML file, validated at start with one clear error per fault.

Secrets never live in this file: the bot token and the SMTP password are named by environment
variables (`token_env`, `password_env`). `EXAMPLE` is what `wxtoken keep --print-config` prints,
and a test parses it, so it cannot drift from the parser.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import durations
from ..errors import UsageError
from ..profile import is_loopback_host

DEFAULT_METRICS_PORT = 9477
DAY = 86400.0

EXAMPLE = """\
# wxtoken keeper configuration (TOML). Every key is optional; these are the defaults.
# Durations are seconds, or a number with a unit: "90s", "15m", "12h", "7d".

# Which profiles to keep alive; leave out (or use -p / --all) for every profile in the store.
# profiles = ["recorder"]

[schedule]
check_interval = "60s"    # wake when a profile is due and at least this often (clock jumps)
refresh_fraction = 0.25   # refresh when this fraction of the access token's life is left
max_age = "7d"            # refresh at least this often, so a sliding refresh token never lapses
min_interval = "1d"       # refresh one grant at most this often, unless its access token needs
                          # it sooner (Webex is reported to repeat answers within a day)
probe_interval = "6h"     # ask Webex whether each grant is alive (never a refresh); 0: never
jitter = "5m"             # spread refreshes of many profiles over this much time
workers = 8               # refreshes in flight at once (different profiles)
retry_base = "30s"        # first retry after a transient failure, doubling ...
retry_cap = "1h"          # ... up to this; Retry-After from Webex is honoured as a floor

[alerts]
thresholds = ["30d", "14d", "7d", "3d", "1d"]   # refresh token expiry warnings, once each
failures = 3              # alert after this many consecutive transient failures

# Any number of channels of each kind; alerts go to all of them.
# [[alerts.webhook]]      # JSON POST with "text": Slack, Teams and Webex incoming webhooks
# url = "https://hooks.slack.com/services/..."

# [[alerts.webex]]        # a Webex space message sent by a bot
# room_id = "Y2lzY29zcGFyazovL..."          # or: to_person_email = "oncall@example.com"
# token_env = "WXTOKEN_ALERT_BOT_TOKEN"     # environment variable holding the bot token
# base_url = "https://webexapis.com"

# [[alerts.email]]        # SMTP with STARTTLS
# host = "smtp.example.com"
# port = 587
# sender = "wxtoken@example.com"
# to = ["oncall@example.com"]
# username = "wxtoken"                      # optional
# password_env = "WXTOKEN_SMTP_PASSWORD"    # optional; environment variable
# ca_file = "/etc/ssl/certs/internal-ca.pem"  # optional; system CAs otherwise

[metrics]
listen = "127.0.0.1:9477"  # /metrics (Prometheus) and /healthz; port 0 picks a free one

[socket]
# path = "/home/me/.local/share/wxtoken/keeper.sock"   # default: $WXTOKEN_HOME/keeper.sock
"""


def parse_duration(value: Any, where: str) -> float:
    seconds = durations.parse_duration(value)
    if seconds is None:
        raise _bad(where, f"{durations.EXAMPLES}, not negative")
    return seconds


def _bad(where: str, wanted: str) -> UsageError:
    return UsageError(
        f"keeper config: {where} must be {wanted}",
        fix="see `wxtoken keep --print-config` for a complete example",
    )


@dataclass(frozen=True)
class Schedule:
    check_interval: float = 60.0
    refresh_fraction: float = 0.25
    max_age: float = 7 * DAY
    min_interval: float = DAY
    jitter: float = 300.0
    probe_interval: float = 6 * 3600.0
    workers: int = 8
    retry_base: float = 30.0
    retry_cap: float = 3600.0


@dataclass(frozen=True)
class WebhookChannel:
    url: str

    def describe(self) -> str:
        u = urlsplit(self.url)
        return f"webhook {u.scheme}://{u.hostname}"  # the path of a webhook URL is a secret


@dataclass(frozen=True)
class WebexChannel:
    room_id: str | None
    to_person_email: str | None
    token_env: str
    base_url: str

    def describe(self) -> str:
        return f"webex {self.room_id[:12] + '…' if self.room_id else self.to_person_email}"


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    starttls: bool = True

    def describe(self) -> str:
        return f"email via {self.host}:{self.port}"


@dataclass(frozen=True)
class KeeperConfig:
    profiles: tuple[str, ...] | None = None
    schedule: Schedule = field(default_factory=Schedule)
    thresholds: tuple[float, ...] = (30 * DAY, 14 * DAY, 7 * DAY, 3 * DAY, 1 * DAY)
    failures: int = 3
    webhooks: tuple[WebhookChannel, ...] = ()
    webex: tuple[WebexChannel, ...] = ()
    email: tuple[EmailChannel, ...] = ()
    metrics_host: str = "127.0.0.1"
    metrics_port: int = DEFAULT_METRICS_PORT
    socket_path: Path | None = None

    @property
    def channels(self) -> tuple[WebhookChannel | WebexChannel | EmailChannel, ...]:
        return (*self.webhooks, *self.webex, *self.email)


def _table(data: Mapping[str, Any], key: str, allowed: set[str], where: str) -> dict[str, Any]:
    return _entry(data.get(key, {}), allowed, where)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, "a non-empty string")
    return value.strip()


def _url(value: Any, where: str) -> str:
    url = _str(value, where)
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise _bad(where, "an http(s) URL")
    if u.scheme == "http" and not is_loopback_host(u.hostname):
        raise _bad(where, "an https URL (plain http only to a loopback host)")
    return url


def parse_listen(value: str, where: str = "metrics.listen") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise _bad(where, "HOST:PORT, e.g. 127.0.0.1:9477")
    return host, int(port)


def load_config(path: Path | None) -> KeeperConfig:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise UsageError(
                f"cannot read the keeper config {path} ({exc.strerror})",
                fix="check the path given to --config",
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(
                f"keeper config {path} is not valid TOML ({exc})",
                fix="fix the file; `wxtoken keep --print-config` shows an example",
            ) from None
    return parse_config(data)


def parse_config(data: Mapping[str, Any]) -> KeeperConfig:
    unknown = sorted(set(data) - {"profiles", "schedule", "alerts", "metrics", "socket"})
    if unknown:
        raise UsageError(
            f"keeper config: unknown section or key {unknown[0]!r}",
            fix="see `wxtoken keep --print-config` for every key",
        )
    profiles = data.get("profiles")
    if profiles is not None and (
        not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles)
    ):
        raise _bad("profiles", "a list of profile names")
    s = _table(data, "schedule", set(Schedule.__dataclass_fields__), "schedule")
    d = Schedule()
    sched = Schedule(
        check_interval=parse_duration(
            s.get("check_interval", d.check_interval), "schedule.check_interval"
        ),
        refresh_fraction=float(s.get("refresh_fraction", d.refresh_fraction)),
        max_age=parse_duration(s.get("max_age", d.max_age), "schedule.max_age"),
        min_interval=parse_duration(s.get("min_interval", d.min_interval), "schedule.min_interval"),
        jitter=parse_duration(s.get("jitter", d.jitter), "schedule.jitter"),
        probe_interval=parse_duration(
            s.get("probe_interval", d.probe_interval), "schedule.probe_interval"
        ),
        workers=s.get("workers", d.workers),
        retry_base=parse_duration(s.get("retry_base", d.retry_base), "schedule.retry_base"),
        retry_cap=parse_duration(s.get("retry_cap", d.retry_cap), "schedule.retry_cap"),
    )
    if not 0 < sched.refresh_fraction < 1:
        raise _bad("schedule.refresh_fraction", "a number between 0 and 1")
    if (
        not isinstance(sched.workers, int)
        or isinstance(sched.workers, bool)
        or not (1 <= sched.workers <= 256)
    ):
        raise _bad("schedule.workers", "a whole number from 1 to 256")
    if sched.check_interval <= 0:
        raise _bad("schedule.check_interval", "a positive duration")
    a = _table(data, "alerts", {"thresholds", "failures", "webhook", "webex", "email"}, "alerts")
    thresholds_raw = a.get("thresholds", ["30d", "14d", "7d", "3d", "1d"])
    if not isinstance(thresholds_raw, list):
        raise _bad("alerts.thresholds", "a list of durations")
    thresholds = tuple(
        sorted((parse_duration(t, "alerts.thresholds") for t in thresholds_raw), reverse=True)
    )
    failures = a.get("failures", 3)
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        raise _bad("alerts.failures", "a whole number of at least 1")
    webhooks = tuple(
        WebhookChannel(
            url=_url(_entry(w, {"url"}, "alerts.webhook").get("url"), "alerts.webhook.url")
        )
        for w in _list(a, "webhook")
    )
    webex = []
    for w in _list(a, "webex"):
        w = _entry(w, {"room_id", "to_person_email", "token_env", "base_url"}, "alerts.webex")
        if ("room_id" in w) == ("to_person_email" in w):
            raise _bad("alerts.webex", "given exactly one of room_id or to_person_email")
        webex.append(
            WebexChannel(
                room_id=_str(w["room_id"], "alerts.webex.room_id") if "room_id" in w else None,
                to_person_email=_str(w["to_person_email"], "alerts.webex.to_person_email")
                if "to_person_email" in w
                else None,
                token_env=_str(
                    w.get("token_env", "WXTOKEN_ALERT_BOT_TOKEN"), "alerts.webex.token_env"
                ),
                base_url=_url(w.get("base_url", "https://webexapis.com"), "alerts.webex.base_url"),
            )
        )
    email = []
    for e in _list(a, "email"):
        e = _entry(
            e,
            {"host", "port", "sender", "to", "username", "password_env", "ca_file", "starttls"},
            "alerts.email",
        )
        to = e.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
            raise _bad("alerts.email.to", "a non-empty list of addresses")
        port = e.get("port", 587)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise _bad("alerts.email.port", "a port number")
        host = _str(e.get("host"), "alerts.email.host")
        starttls = e.get("starttls", True)
        if starttls is not True and not is_loopback_host(host):
            raise _bad("alerts.email.starttls", "true for a non-loopback SMTP server")
        email.append(
            EmailChannel(
                host=host,
                port=port,
                sender=_str(e.get("sender"), "alerts.email.sender"),
                to=tuple(to),
                username=_str(e["username"], "alerts.email.username") if "username" in e else None,
                password_env=_str(e["password_env"], "alerts.email.password_env")
                if "password_env" in e
                else None,
                ca_file=_str(e["ca_file"], "alerts.email.ca_file") if "ca_file" in e else None,
                starttls=bool(starttls),
            )
        )
    m = _table(data, "metrics", {"listen"}, "metrics")
    host, port = parse_listen(str(m.get("listen", f"127.0.0.1:{DEFAULT_METRICS_PORT}")))
    so = _table(data, "socket", {"path"}, "socket")
    return KeeperConfig(
        profiles=tuple(profiles) if profiles is not None else None,
        schedule=sched,
        thresholds=thresholds,
        failures=failures,
        webhooks=webhooks,
        webex=tuple(webex),
        email=tuple(email),
        metrics_host=host,
        metrics_port=port,
        socket_path=Path(_str(so["path"], "socket.path")).expanduser() if "path" in so else None,
    )


def _list(table: Mapping[str, Any], key: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise _bad(f"alerts.{key}", f"an array of tables ([[alerts.{key}]])")
    return value


def _entry(value: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, "a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UsageError(
            f"keeper config: unknown key {where}.{unknown[0]}",
            fix="see `wxtoken keep --print-config` for every key",
        )
    return value
