"""Where wxtoken's HTTP goes and what it trusts: one rule for tokens, the API and alerts.

    net = Network.of(settings, profile)        # the profile's --proxy / --ca-file, the environment
    transport = net.transport(timeouts)        # StdlibTransport with that proxy rule and trust

Every HTTP client wxtoken makes (a profile's WebexClient for exchange, refresh, verify, revoke,
probe and `api`; the keeper's shared clients; its webhook and Webex-message alerts) is built
from a `Network`, so they cannot disagree. A profile's settings live in `Profile.extra`
(`proxy`, `ca_file`) and are therefore bound into its client secret's associated data: editing
them in the database file, which needs no key, makes the secret fail to open, so nobody can
route a profile's secrets through their own proxy or CA that way.

A stored proxy URL never holds a password: `--proxy` refuses one (it would sit in shell history
and the process list). The password comes from `WXTOKEN_PROXY_PASSWORD`, or from a proxy URL in
the environment (HTTPS_PROXY=http://user:pass@host:port, curl's way).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from . import _local
from .errors import PROFILE, UsageError, WebexUnavailable
from .profile import Profile, is_loopback_host
from .transport.proxy import Proxy, ProxySettingError, choose, parse_proxy, shown
from .transport.trust import Anchors, TrustSettingError, load_anchor, trusted_context

if TYPE_CHECKING:  # httpx2 and the transport load when a transport is built, not to describe one
    from .transport import StdlibTransport
    from .transport.connection import Origin
    from .transport.errors import CertificateRejected, ProxyFailure

PROXY = "proxy"  # keys of Profile.extra
CA_FILE = "ca_file"


@dataclass(frozen=True)
class Network:
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # NETWORK_VARIABLES only
    profile_proxy: str | None = None
    anchors: Anchors = field(default_factory=Anchors)
    password: str | None = field(default=None, repr=False)
    profile: str | None = None  # named in fixes

    @classmethod
    def of(cls, settings: _local.Settings, profile: Profile | None = None) -> Network:
        env = settings.network_env
        extra = profile.extra if profile is not None else {}
        return cls(
            env=env,
            profile_proxy=extra.get(PROXY) or None,
            anchors=Anchors(
                env.get("SSL_CERT_FILE") or None,
                env.get("SSL_CERT_DIR") or None,
                extra.get(CA_FILE) or None,
            ),
            password=settings.proxy_password,
            profile=profile.name if profile is not None else None,
        )

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to `url` goes through, or None; one line if it is unusable."""
        parts = urlsplit(url)
        try:
            return choose(
                parts.scheme,
                parts.hostname or "",
                configured=self.profile_proxy,
                env=self.env,
                password=self.password,
            )
        except ProxySettingError as exc:
            raise UsageError(str(exc), fix=self.proxy_fix()) from None

    def ssl_context(self) -> ssl.SSLContext:
        try:
            return trusted_context(self.anchors)
        except TrustSettingError as exc:
            fix = (
                f"wxtoken profile set {self.profile} --ca-file PEM_FILE (or --ca-file '' to drop "
                "it)"
                if self.anchors.ca_file and self.profile
                else "point it at a PEM file of CA certificates, or unset it"
            )
            raise UsageError(str(exc), fix=fix) from None

    def transport(
        self,
        *,
        connect_timeout: float | None = _local.HTTP_CONNECT_TIMEOUT,
        read_timeout: float | None = _local.HTTP_READ_TIMEOUT,
        deadline: float = _local.DEFAULT_HTTP_DEADLINE,
    ) -> StdlibTransport:
        """A transport with this proxy rule and trust. The TLS context is built on the first
        https connection (a loopback http emulator never pays for it); `check` does it now."""
        from .transport import StdlibTransport

        rules: dict[Origin, Proxy | None] = {}

        def rule(origin: Origin) -> Proxy | None:
            if origin not in rules:
                rules[origin] = self.proxy_for(str(origin))
            return rules[origin]

        return StdlibTransport(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            deadline=deadline,
            trust=self.ssl_context,
            proxy=rule,
        )

    def check(self, url: str) -> None:
        """Raise the one-line error of an unusable proxy or trust setting for `url` now, rather
        than in the middle of a refresh."""
        self.proxy_for(url)
        if url.startswith("https:"):
            self.ssl_context()

    def describe(self, url: str) -> tuple[str, str]:
        """(the proxy for `url` as it may be shown, the trust source) for status and doctor."""
        try:
            proxy = self.proxy_for(url)
        except UsageError as exc:
            shown_proxy = f"unusable: {exc.message}"
        else:
            shown_proxy = (
                f"{proxy.url} (from {proxy.source}"
                + (", with credentials)" if proxy.username else ")")
                if proxy
                else "none (loopback, never proxied)"
                if is_loopback_host(urlsplit(url).hostname)
                else "none (direct)"
            )
        return shown_proxy, self.anchors.describe()

    def proxy_fix(self) -> str:
        if self.profile_proxy and self.profile:
            return f"wxtoken profile set {self.profile} --proxy http://HOST:PORT"
        return (
            "set HTTPS_PROXY to http://HOST:PORT (the user in the URL, the password in "
            f"${_local.ENV_PROXY_PASSWORD})"
        )


def network_extra(
    extra: Mapping[str, str], proxy: str | None, ca_file: str | None
) -> dict[str, str]:
    """`extra` with a new --proxy and --ca-file (None keeps one, "" drops it), each checked."""
    out = dict(extra)
    if proxy is not None:
        if proxy.strip():
            out[PROXY] = validate_proxy(proxy)
        else:
            out.pop(PROXY, None)
    if ca_file is not None:
        if ca_file.strip():
            out[CA_FILE] = validate_ca_file(ca_file)
        else:
            out.pop(CA_FILE, None)
    return out


def validate_proxy(value: str) -> str:
    """A --proxy value as stored: http://[USER@]host:port, never with a password."""
    where = shown(value)
    try:
        parts = urlsplit(value.strip() if "://" in value else "http://" + value.strip())
        has_password = parts.password is not None
        proxy = parse_proxy(value, "--proxy")
    except (ProxySettingError, ValueError) as exc:
        raise UsageError(str(exc), fix="use --proxy http://HOST:PORT") from None
    if has_password:
        raise UsageError(
            f"--proxy {where} holds a password; it was not stored (a password in an argument "
            "is visible in the process list and shell history)",
            fix=f"use --proxy http://USER@{proxy.url.split('://', 1)[1]} and put the password "
            f"in ${_local.ENV_PROXY_PASSWORD}",
        )
    user = f"{quote(proxy.username, safe='')}@" if proxy.username else ""
    return proxy.url.replace("http://", "http://" + user, 1)


def validate_ca_file(path: str) -> str:
    full = os.path.abspath(os.path.expanduser(path.strip()))
    try:
        load_anchor(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), full, False, "--ca-file")
    except TrustSettingError as exc:
        raise UsageError(str(exc), fix="give a PEM file of CA certificates") from None
    return full


def network_key(profile: Profile) -> tuple[str | None, str | None]:
    """What of a profile decides its HTTP client besides the base URL: clients are shared only
    between profiles that agree on it."""
    return profile.extra.get(PROXY), profile.extra.get(CA_FILE)


def network_failure(exc: ProxyFailure | CertificateRejected, where: str) -> WebexUnavailable:
    """A proxy's refusal or a certificate that did not verify, named as what it is (exit 5):
    never confused with Webex's own answers. `where` is the URL that was asked for."""
    from .transport.errors import ProxyAuthRequired, ProxyFailure, ProxyForbidden

    parts = urlsplit(where)
    target = f"{parts.hostname}:{parts.port or 443}"
    if isinstance(exc, ProxyAuthRequired):
        fix = (
            "give the proxy's user in its URL (http://USER@host:port) and its password in "
            f"${_local.ENV_PROXY_PASSWORD}, or ask the network team for the right ones"
        )
    elif isinstance(exc, ProxyForbidden):
        fix = f"ask the network team to allow {target} through the proxy"
    elif isinstance(exc, ProxyFailure):
        fix = "check the proxy (HTTPS_PROXY, or the profile's --proxy) is right and up, then retry"
    else:
        fix = (
            "if a company proxy inspects TLS, install its CA in the OS trust store or run "
            f"`wxtoken profile set {PROFILE} --ca-file CA.pem`; otherwise something is "
            "intercepting the connection"
        )
    return WebexUnavailable(str(exc), fix=fix)
