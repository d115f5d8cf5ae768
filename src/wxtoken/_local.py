"""Local settings, decided once: every WXTOKEN_* variable, and where the store, key and socket are.

Standard library only and cheap to import, because the `wxtoken token` hot path imports it
before anything else (click, dataclasses, typing or platformdirs alone cost more than that whole
path may). Every other module (store, keeper, CLI, library, hot path) asks this module instead of
reading the environment or joining paths itself, so two commands can never disagree about where
the home, the store, the key or the keeper's socket is.

It also owns the few things the hot path needs and the rest of wxtoken shares with it: the
"is this file private to me" rule, the timeouts that depend on each other, the read of one token
row, and the client side of the keeper's token socket.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping

# --- names -------------------------------------------------------------------------------------

APP = "wxtoken"
DB_NAME = "wxtoken.db"
CONFIG_NAME = "config.toml"  # in the home: settings shared by every command (the store's URL)
SOCKET_NAME = "keeper.sock"
LOCK_DIR_NAME = "locks"

ENV_HOME = "WXTOKEN_HOME"
ENV_PROFILE = "WXTOKEN_PROFILE"
ENV_KEY_FILE = "WXTOKEN_KEY_FILE"
ENV_PASSPHRASE = "WXTOKEN_PASSPHRASE"
ENV_KEY_SOURCE = "WXTOKEN_KEY_SOURCE"
ENV_KEYRING_TIMEOUT = "WXTOKEN_KEYRING_TIMEOUT"
ENV_SOCKET = "WXTOKEN_SOCKET"
ENV_CLIENT_SECRET = "WXTOKEN_CLIENT_SECRET"
ENV_HTTP_DEADLINE = "WXTOKEN_HTTP_DEADLINE"
ENV_DEBUG = "WXTOKEN_DEBUG"
ENV_PROXY_PASSWORD = "WXTOKEN_PROXY_PASSWORD"
# The standard variables wxtoken reads for its network (curl's and OpenSSL's names).
NETWORK_VARIABLES = (
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
ENV_STORE = "WXTOKEN_STORE"
ENV_STORE_POOLER = "WXTOKEN_STORE_POOLER"

# Variables whose values are secrets: never shown, and removed from the environment of any
# program wxtoken starts (the browser, for one).
SECRET_VARIABLES = (ENV_PASSPHRASE, ENV_CLIENT_SECRET, ENV_PROXY_PASSWORD)

# --- timeouts, derived from each other -----------------------------------------------------------

# One HTTP exchange (connect, TLS, request, status line, headers, body) never takes longer than
# the deadline; a server that trickles bytes cannot stretch it.
DEFAULT_HTTP_DEADLINE = 60.0
HTTP_CONNECT_TIMEOUT = 10.0
HTTP_READ_TIMEOUT = 30.0
# A refresh is retried on transient failures within this many attempts and seconds.
RETRY_ATTEMPTS = 4
RETRY_BUDGET = 30.0
# Time to commit a refresh to the store after Webex answered (fsync on a slow disk).
STORE_MARGIN = 15.0
HOLDER_MARGIN = 5.0  # scheduling slack before a silent lock holder on a shared store is dropped
DEFAULT_KEYRING_TIMEOUT = 10.0  # an unlock prompt nobody answers must not hang a service
DEFAULT_MIN_VALID = 300  # seconds an access token must still be valid when handed out
MAX_MIN_VALID = 10**8  # more is nonsense (three years); refused at every door

# Every variable wxtoken reads, and what it means: `wxtoken help environment` prints this, each
# command's --help names them, and a test holds the README's table and the ENV_* names to it.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    (
        ENV_HOME,
        "the directory of the store, its locks and the keeper's socket (default: the "
        "platform's user data directory, ~/.local/share/wxtoken on Linux)",
    ),
    (ENV_PROFILE, "the profile a command uses when -p is not given"),
    (
        ENV_KEY_SOURCE,
        "the key source of a new store: keyring, passphrase or keyfile (default: "
        "the OS keyring if it answers, else a passphrase asked on the terminal)",
    ),
    (
        ENV_PASSPHRASE,
        "the store's passphrase, for services (on a terminal wxtoken asks instead; "
        "a secret: never shown, and not passed to programs wxtoken starts)",
    ),
    (
        ENV_KEY_FILE,
        "a file holding the store's key (created 0600 if missing; weaker than a "
        "passphrase or the keyring)",
    ),
    (
        ENV_KEYRING_TIMEOUT,
        f"seconds to wait for the OS keyring (default {DEFAULT_KEYRING_TIMEOUT:g})",
    ),
    (ENV_SOCKET, "the keeper's token socket (default: keeper.sock in the home)"),
    (
        ENV_CLIENT_SECRET,
        "the client secret for `profile add` and `profile set`, instead of the "
        "hidden prompt (a secret, like the passphrase)",
    ),
    (
        ENV_HTTP_DEADLINE,
        f"seconds one exchange with Webex may take, all included (default "
        f"{DEFAULT_HTTP_DEADLINE:g}); retry and lock waits are derived from it",
    ),
    (
        ENV_STORE,
        "where the store is: unset or sqlite:///PATH for the embedded file in the home, or "
        "postgresql://USER@HOST/DB for a store shared by several hosts (password from "
        "PGPASSWORD or ~/.pgpass; also `store = ...` in config.toml in the home)",
    ),
    (
        ENV_STORE_POOLER,
        "transaction: the PostgreSQL store is reached through PgBouncer (or another pooler) in "
        "transaction mode, so no statement is prepared on a server session; keepers refuse it",
    ),
    (
        ENV_DEBUG,
        "1: the same as --debug (each HTTP request and lock wait on stderr; never a secret)",
    ),
    (
        "BROWSER",
        "the browser `wxtoken login` starts (without wxtoken's secrets in its "
        "environment); unset, the platform's default",
    ),
    (
        "HTTPS_PROXY, ALL_PROXY, NO_PROXY",
        "the proxy for Webex and alert webhooks, with curl's precedence (lower-case first); "
        "NO_PROXY takes names and CIDR blocks; loopback is never proxied",
    ),
    (
        ENV_PROXY_PASSWORD,
        "the proxy's password, so it stays out of the proxy URL (which then names only the "
        "user: http://USER@host:port); a secret, never shown",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "CA certificates trusted in addition to the OS trust store (never instead of it)",
    ),
    ("NO_COLOR", "set to anything: no colour in the output"),
    ("PYTHON_KEYRING_BACKEND", "the keyring library's own choice of OS keyring backend"),
)


class Timeouts:
    """Waits that depend on each other, derived from the HTTP deadline in one place.

    A retry may start just inside the retry budget and then run a whole deadline, so the longest
    refresh is budget + deadline. Whoever waits for a profile's refresh lock must outlast that,
    or a process queued behind a merely slow Webex would give up and report a storage fault. A
    caller of the keeper's socket may wait for the lock and then for a refresh of its own.
    """

    __slots__ = (
        "holder_idle",
        "http_deadline",
        "keeper_answer",
        "lock_wait",
        "refresh_worst",
        "retry_budget",
    )

    def __init__(self, http_deadline: float = DEFAULT_HTTP_DEADLINE):
        self.http_deadline = http_deadline
        self.retry_budget = RETRY_BUDGET
        self.refresh_worst = self.retry_budget + http_deadline
        self.lock_wait = self.refresh_worst + STORE_MARGIN
        # A lock holder on a shared store is silent at most while Webex answers; one silent
        # for longer is gone (frozen, cut off) and the database ends its session, freeing the
        # lock well before a waiter gives up (lock_wait).
        self.holder_idle = self.refresh_worst + HOLDER_MARGIN
        self.keeper_answer = self.lock_wait + self.refresh_worst + 5.0

    def __repr__(self) -> str:
        return f"Timeouts(http_deadline={self.http_deadline:g}, lock_wait={self.lock_wait:g})"


class SettingError(ValueError):
    """A WXTOKEN_* variable has a value wxtoken cannot use (the CLI shows it as a usage error)."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message = message
        self.fix = fix


# --- settings ----------------------------------------------------------------------------------


def default_home(env: Mapping[str, str], platform: str = sys.platform) -> str:
    """The platform's per-user data directory for wxtoken.

    The same answer as platformdirs.user_data_dir("wxtoken") (a test holds the two together),
    written out because importing platformdirs costs ~35 ms, more than the hot path's budget.
    """
    if platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = env.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
    return os.path.join(base, APP)


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also refuses NaN
        raise SettingError(
            f"{name}={raw!r} is not a number of seconds between {low:g} and {high:g}",
            fix=f"unset {name} (default {default:g}) or set it to e.g. {default:g}",
        )
    return value


def process_label(role: str) -> str:
    """How a wxtoken process names itself to others (the database's activity list, the keepers'
    leader in status and metrics): its role, host and process id."""
    import socket

    return f"wxtoken {role} {socket.gethostname()[:24]} pid {os.getpid()}"[:63]


def _path(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value))


def _configured_store(path: str) -> str:
    import tomllib

    try:
        with open(path, "rb") as f:
            value = tomllib.load(f).get("store", "")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingError(
            f"{path} cannot be read as TOML ({type(exc).__name__})",
            fix=f'fix {path}: it holds one line such as store = "postgresql://USER@HOST/DB"',
        ) from None
    if not isinstance(value, str):
        raise SettingError(
            f"`store` in {path} is not a string",
            fix=f'write it as store = "postgresql://USER@HOST/DB" in {path}',
        )
    return value.strip()


def store_password(url: str) -> bool:
    """Whether a store URL carries a password (in its userinfo or a password= parameter)."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        return bool(parts.password) or "password" in parse_qs(parts.query)
    except ValueError:
        return False


def redact_store(url: str) -> str:
    """A store URL safe to print: no password, whether in the userinfo or the query."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}@{hostport}" if user else hostport
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return url.split("://", 1)[0] + "://(unreadable URL)"


class Settings:
    """Every WXTOKEN_* setting of one process, read once from one environment mapping.

    Secret-valued settings (the passphrase, a client secret) are kept out of the repr.
    """

    __slots__ = (
        "_client_secret",
        "_passphrase",
        "_proxy_password",
        "db_path",
        "debug",
        "home",
        "home_explicit",
        "key_file",
        "key_source",
        "keyring_timeout",
        "lock_dir",
        "network_env",
        "no_color",
        "profile",
        "socket_explicit",
        "socket_path",
        "store_pooler",
        "store_url",
        "timeouts",
    )

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        explicit = env.get(ENV_HOME, "").strip()
        self.home_explicit = bool(explicit)
        self.home = _path(explicit) if explicit else default_home(env)
        self.db_path = os.path.join(self.home, DB_NAME)
        # A shared store (PostgreSQL) by URL; None is the embedded SQLite file at db_path.
        self.store_url: str | None = None
        self._choose_store(env)
        self.store_pooler = env.get(ENV_STORE_POOLER, "").strip().lower() or None
        if self.store_pooler not in (None, "transaction", "session"):
            raise SettingError(
                f"{ENV_STORE_POOLER}={self.store_pooler!r} is not a pooling mode",
                fix=f"set {ENV_STORE_POOLER}=transaction for PgBouncer's transaction mode, or "
                "unset it for a direct connection or session pooling",
            )
        self.lock_dir = os.path.join(self.home, LOCK_DIR_NAME)
        sock = env.get(ENV_SOCKET, "").strip()
        self.socket_explicit = bool(sock)
        self.socket_path = _path(sock) if sock else os.path.join(self.home, SOCKET_NAME)
        self.profile = env.get(ENV_PROFILE, "").strip() or None
        self.no_color = bool(env.get("NO_COLOR"))  # the no-color.org convention
        self.debug = env.get(ENV_DEBUG, "").strip() not in ("", "0")
        key_file = env.get(ENV_KEY_FILE, "").strip()
        self.key_file = _path(key_file) if key_file else None
        self._passphrase = env.get(ENV_PASSPHRASE) or None
        self._client_secret = env.get(ENV_CLIENT_SECRET, "").strip() or None
        self.key_source = env.get(ENV_KEY_SOURCE, "").strip().lower() or None
        self._proxy_password = env.get(ENV_PROXY_PASSWORD) or None
        self.network_env = {k: env[k] for k in NETWORK_VARIABLES if k in env}
        self.keyring_timeout = _number(
            env, ENV_KEYRING_TIMEOUT, DEFAULT_KEYRING_TIMEOUT, 0.1, 600.0
        )
        self.timeouts = Timeouts(
            _number(env, ENV_HTTP_DEADLINE, DEFAULT_HTTP_DEADLINE, 1.0, 3600.0)
        )

    def _choose_store(self, env: Mapping[str, str]) -> None:
        """WXTOKEN_STORE, else `store = "..."` in the home's config.toml, else the SQLite file.

        The config file is read only if it exists (one stat on the hot path). It may not hold a
        password: a file is copied, backed up and shown; libpq's PGPASSWORD or ~/.pgpass is the
        place for one, or a DSN held in the environment.
        """
        raw = env.get(ENV_STORE, "").strip()
        origin = ENV_STORE
        config = os.path.join(self.home, CONFIG_NAME)
        if not raw and os.path.exists(config):
            raw, origin = _configured_store(config), config
            if raw and store_password(raw):
                raise SettingError(
                    f"{config} holds a database password in its store URL",
                    fix="remove the password from the URL there and put it in ~/.pgpass "
                    "(or PGPASSWORD in the service's environment)",
                )
        if not raw:
            return
        scheme, sep, rest = raw.partition("://")
        scheme = scheme.lower()
        if sep and scheme == "sqlite" and rest.startswith("/"):
            self.db_path = _path(rest)
        elif sep and scheme in ("postgresql", "postgres"):
            self.store_url = raw
        else:
            raise SettingError(
                f"the store {redact_store(raw)!r} (from {origin}) is neither sqlite:///PATH nor "
                "postgresql://...",
                fix=f"set {ENV_STORE} to sqlite:///{self.db_path} or to "
                "postgresql://USER@HOST:5432/DBNAME",
            )

    @property
    def store_location(self) -> str:
        """Where the store is, safe to print: the file, or the URL without its password."""
        return redact_store(self.store_url) if self.store_url else self.db_path

    @property
    def passphrase(self) -> str | None:
        return self._passphrase

    @property
    def client_secret(self) -> str | None:
        return self._client_secret

    @property
    def proxy_password(self) -> str | None:
        return self._proxy_password

    def __repr__(self) -> str:
        return (
            f"Settings(home={self.home!r}, key_file={self.key_file!r}, "
            f"passphrase={'<set>' if self._passphrase else None}, socket={self.socket_path!r})"
        )


# Kept from programs wxtoken starts too: the shared store's URL (it may carry the database
# password) and libpq's password variable. Not wxtoken's secrets to scrub from its own process:
# a later connection to the store needs them.
CHILD_EXCLUDED = (*SECRET_VARIABLES, ENV_STORE, "PGPASSWORD")


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a program wxtoken starts: without any secret-valued variable."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k not in CHILD_EXCLUDED}


# --- core dumps --------------------------------------------------------------------------------


def forbid_core_dumps(*, prctl: bool = True) -> None:
    """Keep this process's memory (tokens, the store key) out of core files.

    RLIMIT_CORE 0 stops ordinary core files, coredump_filter 0 leaves no memory in any that a
    piped core handler still takes, and PR_SET_DUMPABLE 0 (Linux) forbids dumps and ptrace by
    other processes of the same user. The hot path skips prctl: loading ctypes would cost more
    than the rest of it, and the other two already hold there. Failures are ignored: each is a
    hardening on top, not a condition to run.
    """
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    try:
        with open("/proc/self/coredump_filter", "w") as fh:
            fh.write("0")
    except OSError:
        pass
    if prctl and sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_dumpable = 4
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


# --- private files -----------------------------------------------------------------------------

NOT_PRIVATE_SYMLINK = "symlink"
NOT_PRIVATE_TYPE = "type"
NOT_PRIVATE_OWNER = "owner"
NOT_PRIVATE_MODE = "mode"


def private_problem(st: os.stat_result, *, is_dir: bool) -> str | None:
    """Why a file or directory is not private to this user, or None when it is.

    Private means: not a symbolic link, the expected type, owned by us, and no access for group
    or others, as OpenSSH demands of a private key. Checked on the opened descriptor where there
    is one, so the file cannot be swapped between the check and the use.
    """
    if stat.S_ISLNK(st.st_mode):
        return NOT_PRIVATE_SYMLINK
    if is_dir != stat.S_ISDIR(st.st_mode):
        return NOT_PRIVATE_TYPE
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return NOT_PRIVATE_OWNER
    if st.st_mode & 0o077:
        return NOT_PRIVATE_MODE
    return None


# --- the token row the hot path reads ----------------------------------------------------------

TOKEN_ROW_SQL = "SELECT access_token, access_expires_at, status FROM tokens WHERE profile = ?"
KEY_SOURCE_SQL = "SELECT value FROM meta WHERE key = 'key_source'"
PROFILE_NAMES_SQL = "SELECT name FROM profiles ORDER BY name LIMIT 2"
DEFAULT_PROFILE_SQL = "SELECT value FROM meta WHERE key = 'default_profile'"


def read_token_row(
    db_path: str, profile: str | None, schema_version: int
) -> tuple[str, bytes, float, str, str | None] | None:
    """(profile, sealed access token, its expiry, status, key source) without the key.

    None when the store is missing, of another schema version, or the profile cannot be chosen
    without asking (several profiles, none named and no default; the rule of
    `manager.resolve_profile_name`). Callers check privacy first.
    """
    import sqlite3

    conn = sqlite3.connect(db_path, timeout=2.0, isolation_level=None)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != schema_version:
            return None
        source = conn.execute(KEY_SOURCE_SQL).fetchone()
        if profile is None:
            default = conn.execute(DEFAULT_PROFILE_SQL).fetchone()
            names = [default] if default and default[0] else []
            names = names or conn.execute(PROFILE_NAMES_SQL).fetchall()
            if len(names) != 1:
                return None
            profile = str(names[0][0])
        row = conn.execute(TOKEN_ROW_SQL, (profile,)).fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    return profile, bytes(row[0]), float(row[1]), str(row[2]), source[0] if source else None


# --- the keeper's token socket, client side ------------------------------------------------------

MAX_SOCKET_MESSAGE = 64 * 1024  # an answer is one short JSON line; anything longer is not ours
MAX_SOCKET_PATH = 107  # bytes of a Unix socket path on Linux (sun_path is 108 with its NUL)


def socket_is_ours(path: str) -> bool:
    """A Unix socket owned by us: the only kind of keeper socket wxtoken talks to."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()


def ask_keeper(
    path: str, request: Mapping[str, object], timeout: float
) -> dict[str, object] | None:
    """Send one JSON line to a keeper and return its JSON answer, or None if no keeper answers."""
    if not socket_is_ours(path):
        return None
    import json
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(json.dumps(dict(request)).encode() + b"\n")
            data = b""
            while len(data) <= MAX_SOCKET_MESSAGE:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if len(data) > MAX_SOCKET_MESSAGE:
            return None
        answer = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else None


def keeper_alive(path: str) -> bool:
    """Whether a keeper answers on `path`; asks politely, so the keeper logs nothing."""
    answer = ask_keeper(path, {"ping": True}, timeout=2.0)
    return answer is not None and answer.get("ok") is True
