"""The proxy choice (curl's precedence, NO_PROXY names and CIDRs, loopback never proxied), the
stored --proxy and --ca-file settings, and the trust anchors that only add."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.conftest import self_signed_cert
from wxtoken._local import Settings
from wxtoken.errors import UsageError
from wxtoken.network import Network, network_extra, validate_ca_file, validate_proxy
from wxtoken.profile import make_profile
from wxtoken.transport.proxy import Proxy, ProxySettingError, bypassed, choose, parse_proxy, shown
from wxtoken.transport.trust import (
    OS_STORE,
    Anchors,
    TrustSettingError,
    base_source,
    trusted_context,
)


def pick(env: dict[str, str], host: str = "webexapis.com", configured: str | None = None) -> str:
    proxy = choose("https", host, configured=configured, env=env)
    return "direct" if proxy is None else f"{proxy.url} {proxy.source}"


def test_curls_precedence_lower_case_first_then_all_proxy() -> None:
    env = {
        "ALL_PROXY": "http://all-upper:1",
        "all_proxy": "http://all-lower:2",
        "HTTPS_PROXY": "http://https-upper:3",
        "https_proxy": "http://https-lower:4",
    }
    assert pick(env) == "http://https-lower:4 https_proxy"
    del env["https_proxy"]
    assert pick(env) == "http://https-upper:3 HTTPS_PROXY"
    del env["HTTPS_PROXY"]
    assert pick(env) == "http://all-lower:2 all_proxy"
    del env["all_proxy"]
    assert pick(env) == "http://all-upper:1 ALL_PROXY"
    assert pick(env, configured="proxy.corp:3128") == "http://proxy.corp:3128 the profile's --proxy"
    assert pick({}) == "direct"
    assert pick({"HTTP_PROXY": "http://x:1", "https_proxy": "  "}) == "direct"


@pytest.mark.parametrize(
    ("rules", "host", "bypass"),
    [
        ("webexapis.com", "webexapis.com", True),
        ("webexapis.com", "api.webexapis.com", True),
        (".webexapis.com", "webexapis.com", True),
        ("webexapis.com", "notwebexapis.com", False),
        ("example.com, .test", "webex.test", True),
        ("*", "anything.example", True),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.1.2.3", False),
        ("192.168.1.5", "192.168.1.5", True),
        ("fd00::/8", "[fd12::1]", True),
        ("10.0.0.0/8", "ten.example", False),
        ("", "webexapis.com", False),
    ],
)
def test_no_proxy_names_and_cidrs(rules: str, host: str, bypass: bool) -> None:
    assert bypassed(host, rules) is bypass
    env = {"HTTPS_PROXY": "http://p:1", "NO_PROXY": rules}
    assert (pick(env, host) == "direct") is bypass


def test_lower_case_no_proxy_wins_and_applies_to_a_profiles_proxy() -> None:
    env = {"no_proxy": "webexapis.com", "NO_PROXY": ""}
    assert pick(env, configured="http://p:1") == "direct"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "[::1]", "localhost"])
def test_loopback_is_never_proxied(host: str) -> None:
    assert pick({"HTTPS_PROXY": "http://p:1"}, host, configured="http://p:2") == "direct"


def test_credentials_come_from_the_url_or_the_password_setting_and_never_print() -> None:
    proxy = parse_proxy("http://u%40corp:s3cr%3At@proxy:8080", "HTTPS_PROXY")
    assert (proxy.username, proxy.password, proxy.port) == ("u@corp", "s3cr:t", 8080)
    assert "s3cr" not in repr(proxy) + str(proxy) and str(proxy) == "http://proxy:8080"
    assert proxy.authorization() == b"Basic dUBjb3JwOnMzY3I6dA=="
    separate = parse_proxy("http://u@proxy", "--proxy", password="pw")
    assert (separate.password, separate.port) == ("pw", 1080)
    assert Proxy("proxy", 1, "x").authorization() is None
    anonymous = parse_proxy("http://proxy:1", "HTTPS_PROXY", password="pw")
    assert anonymous.authorization() is None and anonymous.password is None
    with pytest.raises(ProxySettingError, match="socks5:// proxy") as caught:
        parse_proxy("socks5://u:topsecret@proxy:1", "ALL_PROXY")
    assert "topsecret" not in str(caught.value)
    assert shown("http://u:topsecret@proxy:3128/") == "http://proxy:3128"
    assert shown("u:topsecret@proxy:3128") == "proxy:3128"


def test_stored_proxy_never_holds_a_password() -> None:
    assert validate_proxy("proxy.corp:3128") == "http://proxy.corp:3128"
    assert (
        validate_proxy("http://svc%40corp@proxy.corp:3128") == "http://svc%40corp@proxy.corp:3128"
    )
    with pytest.raises(UsageError) as caught:
        validate_proxy("http://svc:hunter2hunter2@proxy.corp:3128")
    assert "hunter2" not in str(caught.value) and "WXTOKEN_PROXY_PASSWORD" in str(caught.value)
    with pytest.raises(UsageError, match="HTTP proxies"):
        validate_proxy("https://proxy.corp:3128")


def test_ca_file_is_checked_when_given_and_empty_removes(tmp_path: Path) -> None:
    cert, _ = self_signed_cert(tmp_path)
    extra = network_extra({"minter": "m"}, "http://p:1", str(cert))
    assert extra == {"minter": "m", "proxy": "http://p:1", "ca_file": str(cert)}
    assert network_extra(extra, "", "") == {"minter": "m"}
    assert network_extra(extra, None, None) == extra
    with pytest.raises(UsageError, match="does not exist"):
        validate_ca_file(str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(UsageError, match="no PEM certificate"):
        validate_ca_file(str(tmp_path / "junk.pem"))


def test_anchors_only_add_and_verification_stays_on(tmp_path: Path) -> None:
    cert, _ = self_signed_cert(tmp_path)
    base = trusted_context(Anchors())
    added = trusted_context(Anchors(cert_file=str(cert), ca_file=str(cert)))
    assert added is trusted_context(Anchors(cert_file=str(cert), ca_file=str(cert)))  # cached
    for ctx in (base, added):
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # The OS store is still there with the extra anchor: as many CAs as before, and one more.
    # (truststore keeps the OpenSSL context it verifies with on Linux as `_ctx`.)
    stats = tuple(getattr(c, "_ctx", c).cert_store_stats()["x509_ca"] for c in (base, added))
    assert stats[1] == stats[0] + 1 and stats[0] > 0
    assert base_source().startswith(OS_STORE)  # this machine has a CA bundle
    assert Anchors(cert_file="/a.pem", ca_file="/b.pem").describe() == (
        f"{base_source()} + SSL_CERT_FILE /a.pem + --ca-file /b.pem"
    )
    with pytest.raises(TrustSettingError, match="SSL_CERT_DIR names"):
        trusted_context(Anchors(cert_dir=str(tmp_path / "nope")))


def test_network_of_a_profile_and_its_description(tmp_path: Path) -> None:
    profile = make_profile(
        "rec",
        client_id="C123",
        redirect_uri="http://127.0.0.1:8765/callback",
        scopes="spark:kms",
        extra={"proxy": "http://svc@proxy.corp:3128"},
    )
    settings = Settings({"WXTOKEN_PROXY_PASSWORD": "pw-secret", "HTTPS_PROXY": "http://env:1"})
    net = Network.of(settings, profile)
    assert "pw-secret" not in repr(net)
    proxy = net.proxy_for(profile.base_url)
    assert proxy is not None and proxy.password == "pw-secret" and proxy.host == "proxy.corp"
    described = net.describe(profile.base_url)
    assert described[0] == "http://proxy.corp:3128 (from the profile's --proxy, with credentials)"
    env_only = Network.of(Settings({"HTTPS_PROXY": "socks5://x:1"}))
    assert env_only.describe("https://webexapis.com")[0].startswith("unusable: the proxy in HTTPS")
    with pytest.raises(UsageError, match="HTTP proxies"):
        env_only.proxy_for("https://webexapis.com")
