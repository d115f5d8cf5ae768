"""Which HTTP proxy, if any, a request goes through: curl's rules, written out.

    proxy = choose("https", "webexapis.com", configured=None, env=os.environ, password=None)

The order (curl's, for an https URL): a proxy configured for the profile; else `https_proxy`,
then `HTTPS_PROXY`; else `all_proxy`, then `ALL_PROXY`. `no_proxy` (else `NO_PROXY`) then
exempts hosts from whichever proxy was chosen: `*` exempts all; a name exempts itself and its
subdomains (a leading dot is optional); an IP address or CIDR block exempts the IP literals in
it. A loopback host (127.0.0.0/8, ::1, localhost) is never proxied: that is the emulator, or a
local service a proxy could not reach anyway.

Only http:// proxies are spoken to (CONNECT over plain TCP; the tunnel itself carries TLS to
Webex end to end). Basic credentials come from the URL's userinfo, or, for a URL that names
only a user, from the password given separately (`WXTOKEN_PROXY_PASSWORD`), so that a password
need not sit in a URL; a URL without a user gets no credentials. A `Proxy` prints as
scheme://host:port and never shows them.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..profile import is_loopback_host

# Read in this order for an https request; the first set (non-empty) one wins, as in curl.
HTTPS_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
HTTP_VARIABLES = ("http_proxy", "all_proxy", "ALL_PROXY")  # curl ignores HTTP_PROXY (httpoxy)
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", *NO_PROXY_VARIABLES)
DEFAULT_PORT = 1080  # curl's default proxy port when the URL names none
PROFILE_SOURCE = "the profile's --proxy"


class ProxySettingError(ValueError):
    """A proxy setting wxtoken cannot use; the message never repeats the URL's userinfo."""


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    source: str  # where it was configured: a variable's name, or PROFILE_SOURCE
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The proxy as it may be shown: scheme, host and port, never credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    def authorization(self) -> bytes | None:
        """The Proxy-Authorization header value (Basic), or None without a user name."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return b"Basic " + base64.b64encode(pair)


def parse_proxy(value: str, source: str, password: str | None = None) -> Proxy:
    """A proxy URL ("host:port" is read as http://host:port, as curl does)."""
    value = value.strip()
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ProxySettingError(f"the proxy in {source} contains spaces or control characters")
    if parts.scheme.lower() != "http":
        raise ProxySettingError(
            f"the proxy in {source} is a {parts.scheme}:// proxy; wxtoken speaks to HTTP proxies "
            "(http://host:port, which tunnel TLS with CONNECT)"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = 0
    if not parts.hostname or not 0 < port < 65536:
        raise ProxySettingError(f"the proxy in {source} is not http://host:port")
    username = unquote(parts.username) if parts.username is not None else None
    given = unquote(parts.password) if parts.password is not None else None
    if username is None:
        # A password without a user is not sent: one keeper may serve profiles whose proxies
        # differ, only some of them asking for credentials (a 407 then says what is missing).
        return Proxy(parts.hostname, port, source)
    return Proxy(parts.hostname, port, source, username, given if given is not None else password)


def shown(value: str) -> str:
    """A proxy setting as it may be printed: without userinfo, whatever shape it has."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    host = rest.rpartition("@")[2].split("/", 1)[0]
    return f"{scheme}://{host}" if scheme else host


def choose(
    scheme: str,
    host: str,
    *,
    configured: str | None,
    env: Mapping[str, str],
    password: str | None = None,
) -> Proxy | None:
    """The proxy a request to scheme://host goes through, or None to connect directly."""
    if is_loopback_host(host):
        return None
    raw, source = None, ""
    if configured:
        raw, source = configured, PROFILE_SOURCE
    else:
        for name in HTTPS_VARIABLES if scheme == "https" else HTTP_VARIABLES:
            if env.get(name, "").strip():
                raw, source = env[name], name
                break
    if raw is None or bypassed(host, no_proxy(env)):
        return None
    return parse_proxy(raw, source, password)


def no_proxy(env: Mapping[str, str]) -> str:
    for name in NO_PROXY_VARIABLES:
        if name in env:
            return env[name]
    return ""


def bypassed(host: str, rules: str) -> bool:
    """Whether NO_PROXY's `rules` exempt `host` (names by suffix, IPs by address or CIDR)."""
    host = host.strip("[]").rstrip(".").lower()
    address = _ip(host)
    for entry in (e.strip().lower() for e in rules.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
