"""TLS settings for zipper and clients, read from the ``YOMO_TLS_*`` variables.

The environment contract is docs/protocol.md section 1:
``YOMO_TLS_CERT_FILE`` + ``YOMO_TLS_KEY_FILE`` (served by the zipper, presented
by clients), ``YOMO_TLS_CACERT_FILE`` (what to verify against) and
``YOMO_TLS_VERIFY_PEER=true`` (clients verify the zipper; the zipper requires
client certificates). With no certificate the zipper makes a self-signed one.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from yomo.errors import ConfigError

__all__ = [
    "ENV_CACERT_FILE",
    "ENV_CERT_FILE",
    "ENV_KEY_FILE",
    "ENV_VERIFY_PEER",
    "CertificatePair",
    "TlsConfig",
    "generate_ca",
    "generate_self_signed",
    "issue_certificate",
]

ENV_CERT_FILE = "YOMO_TLS_CERT_FILE"
ENV_KEY_FILE = "YOMO_TLS_KEY_FILE"
ENV_CACERT_FILE = "YOMO_TLS_CACERT_FILE"
ENV_VERIFY_PEER = "YOMO_TLS_VERIFY_PEER"


@dataclass(frozen=True, kw_only=True)
class TlsConfig:
    """Where the certificates are and whether peers are verified."""

    cert_file: str | None = None
    """PEM certificate: served by the zipper, presented by a client (mutual TLS)."""
    key_file: str | None = None
    """PEM private key of ``cert_file``."""
    ca_file: str | None = None
    """PEM CA bundle: clients verify the zipper with it, the zipper verifies clients."""
    verify_peer: bool = False
    """Clients verify the zipper; the zipper requires and verifies client certificates."""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(
                f"TLS: {ENV_CERT_FILE} and {ENV_KEY_FILE} must be given together "
                f"(got cert={self.cert_file!r}, key={self.key_file!r})"
            )
        for label, path in (
            ("certificate", self.cert_file),
            ("key", self.key_file),
            ("CA", self.ca_file),
        ):
            if path and not os.path.isfile(path):
                raise ConfigError(f"TLS: {label} file not found: {path}")
        if self.verify_peer and not self.ca_file:
            raise ConfigError(f"TLS: {ENV_VERIFY_PEER}=true needs {ENV_CACERT_FILE}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TlsConfig:
        """Build the settings from ``YOMO_TLS_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        verify = env.get(ENV_VERIFY_PEER, "").strip().lower()
        return cls(
            cert_file=env.get(ENV_CERT_FILE) or None,
            key_file=env.get(ENV_KEY_FILE) or None,
            ca_file=env.get(ENV_CACERT_FILE) or None,
            verify_peer=verify in ("1", "true", "yes", "on"),
        )

    @property
    def mode(self) -> str:
        """A short description for logs: ``mutual``, ``verify-server``, ``self-signed``..."""
        if self.verify_peer:
            return "mutual TLS"
        if self.cert_file:
            return "TLS (certificate from file)"
        return "TLS (self-signed, peers not verified)"


@dataclass(frozen=True)
class CertificatePair:
    """Paths of a PEM certificate and its key."""

    cert_file: str
    key_file: str


def _write_pair(directory: Path, stem: str, cert: object, key: object) -> CertificatePair:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(cert, x509.Certificate)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return CertificatePair(str(cert_path), str(key_path))


def _san(hosts: Sequence[str]) -> list[object]:
    from cryptography import x509

    names: list[object] = []
    seen: set[str] = set()
    for host in hosts:
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _build(
    common_name: str,
    hosts: Sequence[str],
    *,
    issuer: tuple[object, object] | None,
    is_ca: bool,
    client: bool,
    days: int,
) -> tuple[object, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    if issuer is None:
        issuer_name, signing_key = name, key
    else:
        issuer_cert, issuer_key = issuer
        assert isinstance(issuer_cert, x509.Certificate)
        assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
        issuer_name, signing_key = issuer_cert.subject, issuer_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        sans = _san(hosts)
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(sans),  # type: ignore[arg-type]
                critical=False,
            )
    else:
        builder = builder.add_extension(
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
    cert = builder.sign(signing_key, hashes.SHA256())
    return cert, key


def generate_self_signed(
    host: str = "127.0.0.1", directory: str | os.PathLike[str] | None = None
) -> CertificatePair:
    """A self-signed ECDSA P-256 certificate for ``localhost`` and ``host``, valid a year.

    This is what the zipper serves when no certificate is configured (as Go does).
    """
    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="yomo-tls-"))
    cert, key = _build(
        "yomo-zipper",
        ["localhost", host],
        issuer=None,
        is_ca=False,
        client=True,
        days=365,
    )
    return _write_pair(directory, "zipper", cert, key)


def generate_ca(directory: str | os.PathLike[str], name: str = "yomo-test-ca") -> CertificatePair:
    """A CA certificate and key, for tests, examples and private deployments."""
    cert, key = _build(name, [], issuer=None, is_ca=True, client=False, days=365)
    return _write_pair(Path(directory), "ca", cert, key)


def issue_certificate(
    ca: CertificatePair,
    directory: str | os.PathLike[str],
    stem: str,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 365,
) -> CertificatePair:
    """A leaf certificate signed by ``ca``, usable as a server and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca_cert = x509.load_pem_x509_certificate(Path(ca.cert_file).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(ca.key_file).read_bytes(), password=None)
    cert, key = _build(
        stem,
        list(hosts),
        issuer=(ca_cert, ca_key),
        is_ca=False,
        client=True,
        days=days,
    )
    return _write_pair(Path(directory), stem, cert, key)
