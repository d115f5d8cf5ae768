"""Which certificates are trusted: the operating system's store, plus anchors that only add.

    ctx = trusted_context(Anchors(cert_file=None, cert_dir=None, ca_file="/etc/corp-ca.pem"))

The base is the OS trust store, as pip uses it through `truststore`: a company's TLS-inspecting
proxy re-signs with a CA its administrators install there, and Python's own bundle would not
know it. On macOS and Windows that is `truststore` (the platform's verifier). On Linux the store
is the distribution's bundle (where update-ca-certificates / update-ca-trust put a company CA),
loaded here once into an ordinary context: truststore's Linux backend reads the same files, but
again on every handshake (measured: 22 ms of CPU per connection instead of 0.9 ms). Where the
platform has no usable store (a Linux container without ca-certificates), certifi's bundle is
the base instead. On top, `SSL_CERT_FILE` / `SSL_CERT_DIR` and a profile's
`--ca-file` add anchors; none of them removes one, and nothing turns verification off.

A context costs about 15 ms to build, so one is built per set of anchors per process.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .budget import Budget

OS_STORE = "the OS trust store"
CERTIFI = "certifi's CA bundle (no usable OS trust store)"
OPENSSL = "OpenSSL's default CA paths (truststore and certifi unavailable)"

# Where Linux distributions keep their bundle when OpenSSL's compiled-in path is elsewhere (the
# list truststore and Go use).
_LINUX_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


class TrustSettingError(ValueError):
    """An anchor file or directory that cannot be loaded; the message names it and its source."""


@dataclass(frozen=True)
class Anchors:
    """Trust anchors added to the base store: `SSL_CERT_FILE`, `SSL_CERT_DIR`, `--ca-file`."""

    cert_file: str | None = None
    cert_dir: str | None = None
    ca_file: str | None = None

    def describe(self) -> str:
        added = [
            f"{what} {path}"
            for what, path in (
                ("SSL_CERT_FILE", self.cert_file),
                ("SSL_CERT_DIR", self.cert_dir),
                ("--ca-file", self.ca_file),
            )
            if path
        ]
        return base_source() + "".join(f" + {a}" for a in added)


_lock = threading.Lock()
_contexts: dict[Anchors, ssl.SSLContext] = {}


def trusted_context(anchors: Anchors = Anchors()) -> ssl.SSLContext:
    """The verifying context for these anchors, built once per process."""
    ctx = _contexts.get(anchors)
    if ctx is None:
        with _lock:
            ctx = _contexts.get(anchors)
            if ctx is None:
                ctx = _build(anchors)
                _contexts[anchors] = ctx
    return ctx


def base_source() -> str:
    """Which store the base anchors come from on this machine."""
    if sys.platform.startswith("linux"):
        bundle = _linux_bundle()
        if bundle is not None:
            return f"{OS_STORE} ({bundle})"
    elif _truststore_usable():
        return f"{OS_STORE} (truststore)"
    try:
        import certifi  # noqa: F401
    except ImportError:
        return OPENSSL
    return CERTIFI


def _truststore_usable() -> bool:
    try:
        import truststore  # noqa: F401
    except ImportError:
        return False
    return True


def _linux_bundle() -> str | None:
    """The distribution's CA bundle (OpenSSL's compiled-in file, not SSL_CERT_FILE's), or its
    hashed directory when that holds certificates; None where there is neither."""
    paths = ssl.get_default_verify_paths()
    for bundle in (paths.openssl_cafile, *_LINUX_BUNDLES):
        if os.path.isfile(bundle):
            return bundle
    capath = paths.openssl_capath
    if capath and os.path.isdir(capath) and os.listdir(capath):
        return capath
    return None


def _build(anchors: Anchors) -> ssl.SSLContext:
    source = base_source()
    ctx: ssl.SSLContext
    if source.startswith(OS_STORE) and sys.platform.startswith("linux"):
        # Loaded explicitly rather than through OpenSSL's default paths, which SSL_CERT_FILE /
        # SSL_CERT_DIR would replace: so those variables only add.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bundle = _linux_bundle()
        assert bundle is not None
        ctx.load_verify_locations(**{"capath" if os.path.isdir(bundle) else "cafile": bundle})
    elif source.startswith(OS_STORE):
        import truststore

        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    elif source == CERTIFI:
        import certifi

        ctx = ssl.create_default_context(cafile=certifi.where())
    else:
        ctx = ssl.create_default_context()
    for what, path, is_dir in (
        ("SSL_CERT_FILE", anchors.cert_file, False),
        ("SSL_CERT_DIR", anchors.cert_dir, True),
        ("--ca-file", anchors.ca_file, False),
    ):
        if path:
            load_anchor(ctx, path, is_dir, what)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def load_anchor(ctx: ssl.SSLContext, path: str, is_dir: bool, what: str) -> None:
    """Add `path` (PEM file, or an OpenSSL hashed directory) or say in one line why not."""
    try:
        if is_dir:
            if not os.path.isdir(path):
                raise FileNotFoundError(path)
            ctx.load_verify_locations(capath=path)
        else:
            ctx.load_verify_locations(cafile=path)
    except FileNotFoundError:
        raise TrustSettingError(f"{what} names {path}, which does not exist") from None
    except PermissionError:
        raise TrustSettingError(f"{what} names {path}, which cannot be read") from None
    except (ssl.SSLError, OSError, ValueError):
        raise TrustSettingError(
            f"{what} names {path}, which holds no PEM certificate wxtoken can load"
        ) from None


def issuer_seen(sock: socket.socket, host: str, budget: Budget) -> str | None:
    """Who the certificate `host` presents says issued it, read WITHOUT trusting it.

    Only for the message of a certificate failure: this connection does one handshake and is
    closed, carrying no request. Any failure gives None (the message then says so).
    """
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock.settimeout(budget.allow(budget.connect_timeout))
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
        if not der:
            return None
        issuer = x509.load_der_x509_certificate(der).issuer
        names = issuer.get_attributes_for_oid(NameOID.COMMON_NAME) or issuer.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME
        )
        text = str(names[0].value) if names else issuer.rfc4514_string()
        # The server chose this text: printable characters only, and not too long.
        return "".join(c for c in text if c.isprintable())[:120] or None
    except Exception:
        return None
    finally:
        sock.close()
