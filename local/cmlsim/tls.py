"""A self-signed certificate for the simulator's HTTPS mode, as CML ships one: made at start with
the `cryptography` package (EC P-256, valid for `localhost`, `127.0.0.1` and `::1`, one day).

The certificate is its own CA, so a client trusts it by taking the certificate file as its CA
bundle (the product's `CML_TLS_VERIFY=/path/to/cert.pem`), or not at all (`false`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class CertificatePair:
    """Where the PEM files are: `certfile` doubles as the CA bundle clients should trust."""

    certfile: Path
    keyfile: Path


def self_signed(directory: Path, hostname: str = "localhost") -> CertificatePair:
    """Write a fresh self-signed certificate and its key into `directory` (key readable by the
    owner only) and return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostname), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cmlsim")]
    )
    now = datetime.now(UTC)
    alt_names = [
        x509.DNSName(hostname),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A CA certificate, so a client may use this very file as its trust anchor.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / "cmlsim-cert.pem", directory / "cmlsim-key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return CertificatePair(certfile, keyfile)


__all__ = ["CertificatePair", "self_signed"]
