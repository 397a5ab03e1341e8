"""
``--local-https``: https on this machine for the clients that speak
nothing else (tweepy 4, twitter-api-v2), beside the plain http of
``twistd -n distwit``.

The first start makes a certificate authority of its own in the data
folder (``local-ca.pem``, its key ``local-ca-key.pem``) and a server
certificate for ``localhost``, ``127.0.0.1`` and ``::1`` issued by it
(``local-https-cert.pem``, ``local-https-key.pem``); the keys are mode
0600.  Later starts keep them, so a client told once to trust the CA goes
on trusting it; a certificate is made again (at start, and checked daily
while the server runs) only when it is missing, unreadable, expired or
about to be (the server certificate also when it was not issued by the
present CA).  The CA may only vouch for the loopback
names (X.509 name constraints), so trusting it trusts nothing else, even
if its key leaked.

The port listens on 127.0.0.1 only, serving the same site as the main
listener; the start prints one line saying where and how to trust it.
See docs/local-https.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shlex
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from distwit.config import DataFolder, Settings

#: How long the CA and the server certificate are made for.
CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=365)
#: A certificate with less than this left is made again at start.
RENEW_BEFORE = datetime.timedelta(days=7)
#: The names the server certificate covers, and all the CA may vouch for.
DNS_NAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")
#: Where the port listens: loopback only (the certificate names nothing else).
INTERFACE = "127.0.0.1"
#: Seconds between checks, while the server runs, that the certificates
#: are still good (a server may run longer than a certificate lasts).
CHECK_INTERVAL = 24 * 3600.0


class LocalHTTPSError(Exception):
    """
    The certificates cannot be read or written; the message says which file.
    """


@dataclass(frozen=True)
class LocalCertificates:
    """
    What :func:`ensure_certificates` did.

    :ivar made_ca: a new CA was made (clients must trust it anew).
    :ivar made_server: a new server certificate was made.
    """

    made_ca: bool
    made_server: bool


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: str, data: bytes, mode: int) -> None:
    """
    Write a file whole (a crash leaves the old one or the new one), with
    ``mode`` from its creation on.
    """
    temporary = path + ".new"
    try:
        if os.path.exists(temporary):
            os.unlink(temporary)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        raise LocalHTTPSError(f"cannot write {path}: {e.strerror}") from None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(certificate_path: str, key_path: str
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """
    A certificate and its key from their files, or ``None`` when either
    is missing, unreadable, or they do not belong together.
    """
    try:
        with open(certificate_path, "rb") as f:
            certificate = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError):
        return None
    public = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        public, ec.EllipticCurvePublicKey
    ):
        return None
    if key.public_key().public_numbers() != public.public_numbers():
        return None
    return certificate, key


def _fresh(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    return (certificate.not_valid_before_utc <= now
            and now + RENEW_BEFORE < certificate.not_valid_after_utc)


def _loopback_names() -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES]
    return names


def _make_ca(folder: DataFolder, now: datetime.datetime
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "distwit"),
        x509.NameAttribute(
            NameOID.COMMON_NAME, f"distwit local CA {now:%Y-%m-%d %H:%M:%S}"
        ),
    ])
    permitted: list[x509.GeneralName] = [x509.DNSName(name) for name in DNS_NAMES]
    permitted += [
        x509.IPAddress(ipaddress.ip_network(address)) for address in ADDRESSES
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    # The key first: a CA certificate on disk without its key would be
    # made again at the next start anyway.
    _write(folder.local_ca_key, _key_pem(key), 0o600)
    _write(folder.local_ca, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return certificate, key


def _make_server(folder: DataFolder, ca: x509.Certificate,
                 ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DNS_NAMES[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(min(now + SERVER_LIFETIME, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_loopback_names()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder.local_https_key, _key_pem(key), 0o600)
    _write(folder.local_https_certificate,
           certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_certificates(folder: DataFolder, now: datetime.datetime | None = None
                        ) -> LocalCertificates:
    """
    Make the local CA and the server certificate where they are missing,
    unreadable, expired or about to expire; keep them otherwise.

    :param now: the time to judge expiry by (the clock, when not given).
    :raise LocalHTTPSError: a file cannot be written.
    """
    now = now or _now()
    made_ca = made_server = False
    ca = _load(folder.local_ca, folder.local_ca_key)
    if ca is None or not _fresh(ca[0], now):
        ca = _make_ca(folder, now)
        made_ca = True
    server = _load(folder.local_https_certificate, folder.local_https_key)
    if (
        made_ca
        or server is None
        or not _fresh(server[0], now)
        or server[0].issuer != ca[0].subject
        or not _issued_by(server[0], ca[0])
    ):
        _make_server(folder, ca[0], ca[1], now)
        made_server = True
    return LocalCertificates(made_ca, made_server)


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def trust_line(folder: DataFolder) -> str:
    """
    The shell line that makes Python (requests, urllib) and Node clients
    trust the local CA.
    """
    ca = shlex.quote(folder.local_ca)
    return f"export REQUESTS_CA_BUNDLE={ca} SSL_CERT_FILE={ca} NODE_EXTRA_CA_CERTS={ca}"


def _clock_now(reactor: Any) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(reactor.seconds(), datetime.timezone.utc)


class CurrentCertificate:
    """
    The TLS context of the port, made from the files, and made again when
    they change (each new connection asks for it).
    """

    def __init__(self, folder: DataFolder) -> None:
        self._folder = folder
        self._context = self._load()

    def _load(self) -> Any:
        try:
            with open(self._folder.local_https_certificate, "rb") as f:
                pem = f.read()
            with open(self._folder.local_https_key, "rb") as f:
                pem += f.read()
        except OSError as e:
            raise LocalHTTPSError(f"cannot read {e.filename}: {e.strerror}") from None
        return ssl.PrivateCertificate.loadPEM(pem).options().getContext()

    def reload(self) -> None:
        self._context = self._load()

    def getContext(self) -> Any:
        return self._context


class _Keeper(Service):
    """
    Says, once the port listens, where it is and how to trust it; then
    checks every day that the certificates are still good, renews them
    when they are not (a server may run longer than they last) and serves
    the new one from the next connection on.
    """

    log = Logger()

    def __init__(self, settings: Settings, current: CurrentCertificate, reactor: Any,
                 made: LocalCertificates) -> None:
        self._settings = settings
        self._current = current
        self._reactor = reactor
        self._made = made
        self._loop = LoopingCall(self._check)
        self._loop.clock = reactor

    def _announce(self, made: LocalCertificates) -> None:
        fresh = " (its CA made just now)" if made.made_ca else ""
        self.log.info(
            "https for local clients at {url}{fresh}; to trust it: {line}",
            url=self._settings.local_https_url, fresh=fresh,
            line=trust_line(self._settings.data_folder),
        )

    def _check(self) -> None:
        try:
            made = ensure_certificates(self._settings.data_folder, _clock_now(self._reactor))
            if made.made_server:
                self._current.reload()
                self._announce(made)
        except Exception:
            self.log.failure("local https: renewing the certificates failed")

    def startService(self) -> None:
        super().startService()
        self._announce(self._made)
        self._loop.start(CHECK_INTERVAL, now=False)

    def stopService(self) -> Any:
        if self._loop.running:
            self._loop.stop()
        return super().stopService()


def local_https_service(settings: Settings, site: Any, reactor: Any) -> MultiService:
    """
    The local https port serving ``site``, with its certificates made or
    renewed first.

    :raise SystemExit: the certificates cannot be written (the message
        names the file).
    """
    try:
        made = ensure_certificates(settings.data_folder, _clock_now(reactor))
        current = CurrentCertificate(settings.data_folder)
    except LocalHTTPSError as e:
        raise SystemExit(f"distwit: local https: {e}") from None
    service = MultiService()
    service.setName("local-https")
    endpoint = SSL4ServerEndpoint(reactor, settings.local_https_port, current,
                                  interface=INTERFACE)
    StreamServerEndpointService(endpoint, site).setServiceParent(service)
    _Keeper(settings, current, reactor, made).setServiceParent(service)
    return service
