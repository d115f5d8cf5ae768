"""A throwaway CA and a server certificate signed by it, for `wxtoken emulator --tls`.

The CA's certificate is what a client is told to trust (`SSL_CERT_FILE`, or a profile's
`--ca-file`), so the emulator exercises wxtoken's real TLS path: chain and host name verified,
nothing turned off. Keys are written 0600 in a directory only its owner can enter; they are
generated per run and never reused.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CA_NAME = "wxtoken emulator throwaway CA"
VALID = datetime.timedelta(days=30)  # renewed at a start within a day of the end


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the CA certificate to trust
    cert_file: Path  # the server's certificate chain
    key_file: Path  # the server's private key


def make_tls_files(
    directory: Path, names: tuple[str, ...] = (), *, reuse: bool = False
) -> TlsFiles:
    """A CA and a certificate for the loopback names and `names`, written into `directory`;
    with `reuse`, the ones already there (so a client's --ca-file survives a restart)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    if reuse and all(p.is_file() for p in (files.ca_file, files.cert_file, files.key_file)):
        kept = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        if kept.not_valid_after_utc > now + datetime.timedelta(days=1):
            return files
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = self_signed_ca(CA_NAME, ca_key)
    ca_subject = ca.subject
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys((*LOOPBACK_NAMES, *names)):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wxtoken emulator")]))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(files.ca_file, ca.public_bytes(pem))
    _write(files.cert_file, cert.public_bytes(pem) + ca.public_bytes(pem))
    _write(
        files.key_file,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return files


def self_signed_ca(common_name: str, key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    """A CA certificate for `key` that signs server certificates directly (path length 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
