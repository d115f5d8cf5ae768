"""`wxtoken doctor`'s network findings: the proxy and the trust in effect, shown without secrets.

The proxy is shown as scheme://host:port and where it came from (a variable or the profile's
--proxy); a URL's user and password are never printed. The trust source says whether the OS
trust store (or certifi's bundle) is the base and which files add anchors to it.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import _local
from .doctor import OK, PROBLEM, Finding
from .errors import EXIT_USAGE, clean_server_text
from .network import Network
from .profile import DEFAULT_BASE_URL, Profile
from .transport.proxy import NO_PROXY_VARIABLES, VARIABLES, shown


def check_environment(settings: _local.Settings) -> Iterator[Finding]:
    """The proxy variables set (without credentials) and the trust source for any profile."""
    env = settings.network_env
    set_vars = [
        f"{name}={clean_server_text(env[name], 200)}"
        if name in NO_PROXY_VARIABLES
        else f"{name}={shown(env[name])}" + (" (with credentials)" if "@" in env[name] else "")
        for name in VARIABLES
        if env.get(name)
    ]
    if settings.proxy_password:
        set_vars.append(f"{_local.ENV_PROXY_PASSWORD} set")
    yield Finding("proxy", OK, "; ".join(set_vars) if set_vars else "no proxy variables set")
    yield Finding(
        "trust", OK, f"certificates checked against {Network.of(settings).anchors.describe()}"
    )


def check_profile_network(settings: _local.Settings, profile: Profile) -> Iterator[Finding]:
    """How this profile reaches its Webex: the proxy (or direct) and the trust in effect."""
    net = Network.of(settings, profile)
    proxy, trust = net.describe(profile.base_url or DEFAULT_BASE_URL)
    if proxy.startswith("unusable"):
        yield Finding("network", PROBLEM, proxy, net.proxy_fix(), profile.name, EXIT_USAGE)
        return
    yield Finding("network", OK, f"proxy {proxy}; trust {trust}", profile=profile.name)
