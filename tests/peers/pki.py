"""A test PKI made at test time with ``cryptography``: a trusted CA, a second (untrusted) CA, and
certificates they sign, written as PEM files for pacsbridge, DCMTK and Orthanc.

Every certificate is RSA 2048 (DCMTK's BCP 195 profiles negotiate ECDHE-RSA suites), valid for
``localhost`` and ``127.0.0.1``, and usable for both ends (serverAuth and clientAuth), as
Orthanc and DCMTK use one certificate for their SCP and SCU. ``pki`` is session-scoped: RSA
keys take a moment to make.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """One node's files: its certificate, its key, and the trusted CA bundle it should use."""

    name: str
    certificate: Path
    private_key: Path
    ca_certificates: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pacsbridge tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class _Authority:
    def __init__(self, common_name: str) -> None:
        self.key = _key()
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 30 * DAY)
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, common_name: str, dns: str = "localhost", expired: bool = False
    ) -> tuple[bytes, bytes]:
        key = _key()
        now = dt.datetime.now(dt.UTC)
        start, end = (now - 30 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM), _pem_key(key)


class Pki:
    """``issue(name, untrusted=False, expired=False, dns="localhost")`` → :class:`Issued`.

    ``ca_certificates`` of every issued node is the trusted CA only: a certificate from the
    untrusted CA (``untrusted=True``) chains to nothing any node trusts.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._trusted = _Authority("pacsbridge test CA")
        self._untrusted = _Authority("some other CA")
        self.ca_certificates = folder / "trusted-ca.pem"
        self.ca_certificates.write_bytes(self._trusted.pem())
        self._issued: dict[tuple[str, bool, bool, str], Issued] = {}

    def issue(
        self, name: str, untrusted: bool = False, expired: bool = False, dns: str = "localhost"
    ) -> Issued:
        wanted = (name, untrusted, expired, dns)
        if wanted not in self._issued:
            authority = self._untrusted if untrusted else self._trusted
            certificate, key = authority.issue(name, dns=dns, expired=expired)
            stem = f"{name}{'-untrusted' if untrusted else ''}{'-expired' if expired else ''}"
            cert_path = self.folder / f"{stem}-{dns}.crt"
            key_path = self.folder / f"{stem}-{dns}.key"
            cert_path.write_bytes(certificate)
            key_path.write_bytes(key)
            key_path.chmod(0o600)
            self._issued[wanted] = Issued(name, cert_path, key_path, self.ca_certificates)
        return self._issued[wanted]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    yield Pki(tmp_path_factory.mktemp("pki"))
