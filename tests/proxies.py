"""Real HTTP proxies on loopback for the proxy tests: proxy.py (PyPI), started per test module.

A proxy resolves every *.test name to 127.0.0.1 (tests/helpers/proxy_plugins.py), so a profile
whose base URL is https://webex.test:PORT reaches the TLS emulator through it, while a loopback
base URL would never be proxied. Modes: a plain CONNECT proxy, one that requires Basic
authentication, and one that inspects TLS, re-signing with its own CA ("Contoso Inspection CA").

Where proxy.py cannot run the tests skip with one line, except on CI (CI=true), where a missing
proxy fails: CI installs it through the dev extra.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, stop_process

INSPECTION_CA = "Contoso Inspection CA"
PROXY_BIN = Path(sys.executable).parent / "proxy"


def require_proxy_py(inspecting: bool = False) -> None:
    """Skip (one line) where proxy.py, or for TLS inspection the openssl command it signs with,
    is missing; on CI that is a failure (.ci/run installs both)."""
    if not PROXY_BIN.exists():
        message = f"proxy.py is not installed ({PROXY_BIN}); `pip install -e .[dev]` installs it"
    elif inspecting and shutil.which("openssl") is None:
        message = "the openssl command (Debian: openssl) is missing; proxy.py signs with it"
    else:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    credentials: tuple[str, str] | None = None
    ca_file: Path | None = None  # the inspecting proxy's CA

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settled(self, quiet: float = 0.3, timeout: float = 5.0) -> str:
        """Its log once nothing was added for `quiet` seconds: proxy.py writes a tunnel's line
        when the tunnel closes, a moment after the client's end."""
        text, since, end = "", time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < end:
            now = self.log.read_text(errors="replace") if self.log.exists() else ""
            if now != text:
                text, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.05)
        return text

    def connects(self) -> list[str]:
        """The CONNECT targets it tunnelled (its access log, settled), in order."""
        lines = self.settled().splitlines()
        return [
            line.split(" - CONNECT ", 1)[1].split(" ", 1)[0]
            for line in lines
            if " - CONNECT " in line and "None:None" not in line
        ]

    def stop(self) -> None:
        stop_process(self.proc)


def start_proxy(
    directory: Path,
    *,
    credentials: tuple[str, str] | None = None,
    inspect_upstream_ca: Path | None = None,
) -> Proxy:
    """proxy.py on a free loopback port; with `inspect_upstream_ca`, it inspects TLS and
    trusts that CA for the servers behind it."""
    require_proxy_py(inspecting=inspect_upstream_ca is not None)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    port_file, log = directory / "port", directory / "proxy.log"
    cmd = [
        str(PROXY_BIN),
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--num-acceptors",
        "1",
        "--num-workers",
        "1",
        "--plugins",
        "tests.helpers.proxy_plugins.MapTestHosts",
        "--log-file",
        str(log),
        "--data-dir",
        str(directory / "data"),
    ]
    ca_file = None
    if credentials is not None:
        cmd += ["--basic-auth", ":".join(credentials)]
    if inspect_upstream_ca is not None:
        ca_file, ca_key, signing_key = inspection_ca(directory)
        (directory / "certs").mkdir(mode=0o700, exist_ok=True)
        cmd += [
            "--ca-cert-file",
            str(ca_file),
            "--ca-key-file",
            str(ca_key),
            "--ca-signing-key-file",
            str(signing_key),
            "--ca-cert-dir",
            str(directory / "certs"),
            "--ca-file",
            str(inspect_upstream_ca),
        ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(directory / "stderr", "wb")
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text.isdigit():
            return Proxy(proc, int(text), log, credentials, ca_file)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"proxy.py did not start: {(directory / 'stderr').read_text()[-2000:]}")


def inspection_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A company's TLS-inspection CA (RSA: proxy.py signs with the openssl command)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from wxtoken.emulator.tlscerts import self_signed_ca

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_ca(INSPECTION_CA, key)
    paths = (directory / "ca.pem", directory / "ca.key", directory / "signing.key")
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(pem_key(key))
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths[2].write_bytes(pem_key(signing))
    for p in paths[1:]:
        p.chmod(0o600)
    return paths
