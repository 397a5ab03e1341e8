"""
A real Prosody (Debian's ``prosody``) for the XMPP tests: started by the
test on a free loopback port with a configuration of its own in a temporary
folder (its own data, no server-to-server, no HTTP), a certificate for
``localhost`` issued by a test authority, accounts made with ``prosodyctl``;
and a small XMPP client, independent of distwit's channel, that plays the
user.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as global_reactor
from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import deferLater
from twisted.words.protocols.jabber import client, xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from tests.processes import free_port

#: The domain of the test server's accounts.
DOMAIN = "localhost"
#: How long Prosody may take to start listening.
START_TIMEOUT = 30.0


def prosody_missing() -> str | None:
    """
    Why the tests cannot run Prosody here, or ``None`` when they can.
    """
    for program in ("prosody", "prosodyctl"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/bin/{program}"):
            return f"{program} is not installed (Debian package prosody; .ci/run installs it)"
    return None


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


def _certificates(folder: str) -> tuple[str, str, str]:
    """
    A test authority and, issued by it, a certificate for ``localhost``:
    the paths of (the authority's certificate, the server's key, the
    server's certificate), PEM.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "distwit test XMPP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tuple(os.path.join(folder, name) for name in ("ca.pem", "server.key", "server.pem"))
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    os.chmod(paths[1], 0o600)
    with open(paths[2], "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    return paths[0], paths[1], paths[2]


class ProsodyServer:
    """
    One Prosody process on ``127.0.0.1:port`` serving :data:`DOMAIN`.

    :param folder: an empty folder of its own.
    :param tls: offer STARTTLS (else plain text, and PLAIN sign-in over it:
        a server distwit must refuse to give its password to).
    """

    def __init__(self, folder: str, tls: bool = True) -> None:
        self.folder = os.path.abspath(folder)
        os.makedirs(os.path.join(self.folder, "data"), exist_ok=True)
        self.ca, key, certificate = _certificates(self.folder)
        self.port = free_port()
        self.log = os.path.join(self.folder, "prosody.log")
        self.config = os.path.join(self.folder, "prosody.cfg.lua")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(f"""
-- Written by tests/prosody.py for one test.
run_as_root = true
daemonize = false
pidfile = "{self.folder}/prosody.pid"
data_path = "{self.folder}/data"
log = {{ debug = "{self.log}" }}
plugin_paths = {{}}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
component_ports = {{}}
http_ports = {{}}
https_ports = {{}}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline"; "carbons" }}
modules_disabled = {{ "s2s"{'' if tls else '; "tls"'} }}
authentication = "internal_hashed"
storage = "internal"
s2s_require_encryption = true
allow_registration = false
""")
            if tls:
                f.write(f"""
c2s_require_encryption = true
ssl = {{ key = "{key}"; certificate = "{certificate}" }}
""")
            else:
                f.write("""
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
""")
            f.write(f'VirtualHost "{DOMAIN}"\n')
        self.process: subprocess.Popen[bytes] | None = None

    def register(self, user: str, password: str) -> str:
        """
        Make an account; its bare Jabber ID.
        """
        done = subprocess.run(
            [_program("prosodyctl"), "--config", self.config, "register", user, DOMAIN, password],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prosodyctl register failed: {done.stdout} {done.stderr}")
        return f"{user}@{DOMAIN}"

    def start(self) -> None:
        """
        Start it and wait until it listens.
        """
        assert self.process is None
        self.process = subprocess.Popen(
            [_program("prosody"), "--config", self.config, "-F"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prosody exited at start:\n{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"prosody did not listen in {START_TIMEOUT}s:\n{self.tail()}")

    def stop(self) -> None:
        """
        Stop it (and wait until it has).
        """
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def tail(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return "(no log)"


async def eventually(
    condition: Callable[[], Any], what: str, timeout: float = 30.0, reactor: Any = None
) -> Any:
    """
    Wait, without blocking the reactor, until ``condition()`` is true;
    return its value.

    :raise AssertionError: not within ``timeout`` seconds.
    """
    reactor = reactor or global_reactor
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        await deferLater(reactor, 0.05, lambda: None)


class UserClient:
    """
    A person's XMPP client, written with plain Twisted Words (not with
    distwit's channel): it signs in, sends presence, keeps what it
    receives, and writes what the test tells it to.
    """

    def __init__(self, jid: str, password: str, port: int, reactor: Any = None) -> None:
        self.reactor = reactor or global_reactor
        self.jid = JID(jid + "/phone")
        self.port = port
        #: ``(from, type, body)`` of each message received.
        self.messages: list[tuple[str, str, str]] = []
        #: Every presence stanza received (``(from, type)``).
        self.presences: list[tuple[str, str]] = []
        self.stream: xmlstream.XmlStream | None = None
        self.ready: Deferred[None] = Deferred()
        self._factory = client.XMPPClientFactory(
            self.jid, password, ssl.CertificateOptions(verify=False)
        )
        self._factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self._authenticated)
        self._factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, self._failed)
        self._connector: Any = None

    async def connect(self) -> None:
        endpoint = HostnameEndpoint(self.reactor, "127.0.0.1", self.port)
        self._protocol = await endpoint.connect(self._factory)
        await self.ready

    def _authenticated(self, stream: xmlstream.XmlStream) -> None:
        self.stream = stream
        stream.addObserver("/message", self._message)
        stream.addObserver("/presence", self._presence)
        # As every client does: ask for the roster (so that the server
        # tells this client of subscriptions), then say it is available.
        roster = xmlstream.IQ(stream, "get")
        roster.addElement(("jabber:iq:roster", "query"))
        roster.send()
        stream.send(domish.Element((None, "presence")))
        self.ready.callback(None)

    def _failed(self, reason: Any) -> None:
        if not self.ready.called:
            self.ready.errback(reason)

    def _message(self, element: domish.Element) -> None:
        body = None
        for child in element.elements():
            if child.name == "body":
                body = str(child)
        if body is not None:
            self.messages.append(
                (element.getAttribute("from", ""), element.getAttribute("type", "normal"), body)
            )

    def _presence(self, element: domish.Element) -> None:
        self.presences.append(
            (element.getAttribute("from", ""), element.getAttribute("type", "available"))
        )

    def say(self, to: str, body: str, kind: str = "chat") -> None:
        message = domish.Element((None, "message"))
        message["to"] = to
        message["type"] = kind
        message.addElement("body", content=body)
        self.raw(message)

    def raw(self, stanza: domish.Element | str) -> None:
        assert self.stream is not None, "not connected"
        self.stream.send(stanza)

    def bodies_from(self, sender: str) -> list[str]:
        return [body for frm, _, body in self.messages if frm.split("/")[0] == sender]

    def disconnect(self) -> Deferred[None]:
        if self.stream is None or not self.stream.transport.connected:
            return Deferred.fromCoroutine(_nothing())
        gone: Deferred[None] = Deferred()
        self.stream.addOnetimeObserver(xmlstream.STREAM_END_EVENT, lambda _: gone.callback(None))
        self.stream.transport.loseConnection()
        return gone


async def _nothing() -> None:
    return None
