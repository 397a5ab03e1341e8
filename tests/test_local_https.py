"""
``--local-https``: a CA and a server certificate made once in the data
folder, kept across starts, renewed when expired; https on 127.0.0.1
beside plain http; one line at start telling how to trust it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
import urllib.error
import urllib.request
from typing import Any

from cryptography import x509
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import DataFolder
from distwit.roles.local_https import (
    LocalHTTPSError,
    ensure_certificates,
    trust_line,
)
from distwit.tap import Options, makeService

from tests.processes import ServerProcess, free_port, run_cli
from tests.test_federation import PASSWORD

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def certificate(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(read(path))


class CertificateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = DataFolder(os.path.abspath(self.mktemp()))
        self.folder.prepare()

    def files(self) -> dict[str, bytes]:
        return {path: read(path) for path in (
            self.folder.local_ca, self.folder.local_ca_key,
            self.folder.local_https_certificate, self.folder.local_https_key)}

    def test_first_start(self) -> None:
        """
        The first start makes a CA and a server certificate for localhost,
        127.0.0.1 and ::1 issued by it; the private keys are readable by
        their owner only; the CA may vouch for those names only.
        """
        made = ensure_certificates(self.folder, NOW)
        self.assertEqual((made.made_ca, made.made_server), (True, True))
        for key in (self.folder.local_ca_key, self.folder.local_https_key):
            self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600, key)
        ca = certificate(self.folder.local_ca)
        server = certificate(self.folder.local_https_certificate)
        server.verify_directly_issued_by(ca)
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(names.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual(names.get_values_for_type(x509.IPAddress),
                         [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")])
        self.assertTrue(ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        self.assertFalse(
            server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        )
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        self.assertEqual(len(constraints.permitted_subtrees or []), 3)
        self.assertGreater(server.not_valid_after_utc, NOW + datetime.timedelta(days=300))

    def test_kept(self) -> None:
        """
        Later starts keep every file as it is: a client told once to trust
        the CA goes on trusting it.
        """
        ensure_certificates(self.folder, NOW)
        before = self.files()
        made = ensure_certificates(self.folder, NOW + datetime.timedelta(days=200))
        self.assertEqual((made.made_ca, made.made_server), (False, False))
        self.assertEqual(self.files(), before)

    def test_server_certificate_renewed_when_expired(self) -> None:
        """
        An expired server certificate is made again, by the same CA.
        """
        ensure_certificates(self.folder, NOW)
        before = self.files()
        later = NOW + datetime.timedelta(days=400)
        made = ensure_certificates(self.folder, later)
        self.assertEqual((made.made_ca, made.made_server), (False, True))
        after = self.files()
        self.assertEqual(after[self.folder.local_ca], before[self.folder.local_ca])
        self.assertNotEqual(after[self.folder.local_https_key],
                            before[self.folder.local_https_key])
        server = certificate(self.folder.local_https_certificate)
        server.verify_directly_issued_by(certificate(self.folder.local_ca))
        self.assertGreater(server.not_valid_after_utc, later)

    def test_ca_renewed_when_expired(self) -> None:
        """
        An expired CA is made again, and the server certificate with it.
        """
        ensure_certificates(self.folder, NOW)
        before = self.files()
        made = ensure_certificates(self.folder, NOW + datetime.timedelta(days=3700))
        self.assertEqual((made.made_ca, made.made_server), (True, True))
        self.assertNotEqual(self.files()[self.folder.local_ca], before[self.folder.local_ca])

    def test_lost_ca_key(self) -> None:
        """
        A CA whose key is gone cannot issue: a new CA and a new server
        certificate are made (and the start says to trust it anew).
        """
        ensure_certificates(self.folder, NOW)
        os.unlink(self.folder.local_ca_key)
        made = ensure_certificates(self.folder, NOW)
        self.assertEqual((made.made_ca, made.made_server), (True, True))
        certificate(self.folder.local_https_certificate).verify_directly_issued_by(
            certificate(self.folder.local_ca))

    def test_foreign_server_certificate(self) -> None:
        """
        A server certificate the present CA did not issue (say, copied from
        another folder) is made again.
        """
        other = DataFolder(os.path.abspath(self.mktemp()))
        other.prepare()
        ensure_certificates(other, NOW)
        ensure_certificates(self.folder, NOW)
        for name in ("local_https_certificate", "local_https_key"):
            with open(getattr(self.folder, name), "wb") as f:
                f.write(read(getattr(other, name)))
        made = ensure_certificates(self.folder, NOW)
        self.assertEqual((made.made_ca, made.made_server), (False, True))
        certificate(self.folder.local_https_certificate).verify_directly_issued_by(
            certificate(self.folder.local_ca))

    def test_unwritable_folder(self) -> None:
        """
        A folder where the files cannot be written gives an error naming
        the file, not a traceback.
        """
        os.chmod(self.folder.path, 0o500)
        self.addCleanup(os.chmod, self.folder.path, 0o700)
        if os.access(self.folder.path, os.W_OK):
            # root writes anywhere: a file in the way instead.
            os.chmod(self.folder.path, 0o700)
            os.makedirs(self.folder.local_ca_key + ".new")
            with open(os.path.join(self.folder.local_ca_key + ".new", "x"), "w"):
                pass
        error = self.assertRaises(LocalHTTPSError, ensure_certificates, self.folder, NOW)
        self.assertIn(self.folder.local_ca_key, str(error))

    def test_trust_line(self) -> None:
        """
        The line names the CA for requests, Python's ssl and Node, quoted
        for the shell.
        """
        folder = DataFolder("/tmp/my data")
        self.assertEqual(
            trust_line(folder),
            "export REQUESTS_CA_BUNDLE='/tmp/my data/local-ca.pem'"
            " SSL_CERT_FILE='/tmp/my data/local-ca.pem'"
            " NODE_EXTRA_CA_CERTS='/tmp/my data/local-ca.pem'",
        )


class OptionTests(SynchronousTestCase):
    def parse(self, *args: str) -> Any:
        options = Options()
        options.parseOptions(["--data", self.mktemp(), *args])
        return options

    def test_off_by_default(self) -> None:
        """
        ``twistd -n distwit`` as the README has it serves plain http only:
        no certificate is made, nothing else listens.
        """
        options = self.parse("--listen", f"tcp:{free_port()}")
        self.assertFalse(options.settings.local_https)
        self.assertEqual(options.settings.local_https_url, "")
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(reactor.sslServers, [])
        self.assertFalse(os.path.exists(options.settings.data_folder.local_ca))

    def test_option_and_setting(self) -> None:
        """
        ``--local-https`` (or ``local_https = true`` in ``[server]``) listens
        with TLS on 127.0.0.1:8443 (``--local-https-port``,
        ``local_https_port``), beside the main port, and says at start
        where and how to trust it.
        """
        # The main port is probed before the start (a free one: the test
        # must not depend on 8080 being free); the memory reactor listens.
        main_port = free_port()
        options = self.parse("--listen", f"tcp:{main_port}", "--local-https")
        self.assertEqual(options.settings.local_https_url, "https://localhost:8443")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[server]\nlocal_https = true\nlocal_https_port = 9443\n")
        from_file = self.parse("--config", path)
        self.assertEqual(from_file.settings.local_https_url, "https://localhost:9443")
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([(port, interface) for port, _, _, _, interface in reactor.sslServers],
                         [(8443, "127.0.0.1")])
        self.assertEqual([port for port, *_ in reactor.tcpServers], [main_port])
        lines = [e for e in events if "https for local clients" in e.get("log_format", "")]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["line"], trust_line(options.settings.data_folder))

    def test_renewed_while_running(self) -> None:
        """
        A server that runs past its certificate's end renews it (checked
        daily) and serves the new one from the next connection on, with
        the same CA.
        """
        options = self.parse("--listen", f"tcp:{free_port()}", "--local-https")
        folder = options.settings.data_folder
        reactor = MemoryReactorClock()
        reactor.advance(NOW.timestamp())
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        context_factory = reactor.sslServers[0][2]
        first = context_factory.getContext()
        ca, server = read(folder.local_ca), read(folder.local_https_certificate)
        reactor.advance(24 * 3600)
        self.assertIs(context_factory.getContext(), first)
        self.assertEqual(read(folder.local_https_certificate), server)
        for _ in range(365):
            reactor.advance(24 * 3600)
        self.assertNotEqual(read(folder.local_https_certificate), server)
        self.assertEqual(read(folder.local_ca), ca)
        self.assertIsNot(context_factory.getContext(), first)
        renewed = certificate(folder.local_https_certificate)
        self.assertGreater(renewed.not_valid_after_utc,
                           NOW + datetime.timedelta(days=366 + 300))

    def test_bad_port(self) -> None:
        """
        A port that is not one is refused with a message naming the setting.
        """
        for bad in ("0", "70000", "https"):
            error = self.assertRaises(usage.UsageError, self.parse, "--local-https-port", bad)
            self.assertIn("local_https_port", str(error))


class ProcessTests(SynchronousTestCase):
    def test_server(self) -> None:
        """
        A real ``twistd distwit --local-https``: plain http at its public
        URL as before, https at 127.0.0.1 and localhost for a client that
        trusts the CA (and only for one that does), the same CA after a
        restart, and the trust line in its output.
        """
        data = os.path.abspath(self.mktemp())
        done = run_cli("adduser", "--create", "alice", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        port = free_port()
        options = ("--local-https", "--local-https-port", str(port))
        server = ServerProcess(data, *options)
        self.addCleanup(server.stop)
        ca_file = os.path.join(data, "local-ca.pem")
        self.assertEqual(server.request("GET", "/1.1/help/test.json"), (200, "ok"))
        trusting = ssl.create_default_context(cafile=ca_file)
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(f"https://{host}:{port}/1.1/help/test.json",
                                        context=trusting, timeout=30) as answer:
                self.assertEqual(answer.read(), b'"ok"')
        with self.assertRaises(urllib.error.URLError) as raised:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/health",
                                   context=ssl.create_default_context(), timeout=30)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(raised.exception))
        self.assertIn(f"https for local clients at https://localhost:{port}", server.log_text())
        self.assertIn(f"NODE_EXTRA_CA_CERTS={ca_file}", server.log_text())
        self.oauth_signatures(server, data, port, ca_file)
        ca = read(ca_file)
        server.stop()
        again = ServerProcess(data, *options)
        self.addCleanup(again.stop)
        self.assertEqual(read(ca_file), ca)
        self.assertNotIn("made just now", again.log_text())
        self.assertIn("made just now", server.log_text())

    def oauth_signatures(self, server: ServerProcess, data: str, port: int, ca_file: str
                         ) -> None:
        """
        OAuth 1.0a requests are checked as signed for the URL they came
        to: HMAC-SHA1 at either address; PLAINTEXT (the secrets in the
        clear) only on https.
        """
        import requests
        from requests_oauthlib import OAuth1

        from tests.test_clients import create_app

        key, secret = create_app(server, "alice")
        done = run_cli("token", "create", "--consumer-key", key, "--user", "alice",
                       "--data", data)
        self.assertEqual(done.returncode, 0, done.stderr)
        token = dict(line.split("=", 1) for line in done.stdout.splitlines())
        path = "/1.1/account/verify_credentials.json"
        for base, method, expected in (
            (server.url, "HMAC-SHA1", 200),
            (f"https://localhost:{port}", "HMAC-SHA1", 200),
            (f"https://localhost:{port}", "PLAINTEXT", 200),
            (server.url, "PLAINTEXT", 401),
        ):
            auth = OAuth1(key, secret, token["access_token"], token["access_token_secret"],
                          signature_method=method)
            answer = requests.get(base + path, auth=auth, verify=ca_file, timeout=30)
            self.assertEqual((base, method, answer.status_code), (base, method, expected),
                             answer.text)
