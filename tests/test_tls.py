"""
TLS: servers listen on ``ssl:`` endpoints and talk https to each other,
checking certificates and host names against the system's authorities or
those of ``--ca-file``.  The end-to-end test uses a throwaway CA (trustme).
"""

from __future__ import annotations

import os
import time

import trustme
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from distwit.tap import Options, makeService

from tests.processes import ServerProcess, run_cli
from tests.test_federation import PASSWORD, arrived, call, wait_for


class CAFileOptionTests(SynchronousTestCase):
    def make(self, ca_file: str) -> None:
        options = Options()
        options.parseOptions(
            ["--data", self.mktemp(), "--listen", "tcp:0", "--role", "ping",
             "--ca-file", ca_file]
        )
        makeService(options, MemoryReactorClock())

    def test_missing_or_broken_file(self) -> None:
        """
        A CA file that is missing, or holds no certificate, stops the start
        with a message naming it.
        """
        missing = os.path.abspath(self.mktemp())
        error = self.assertRaises(SystemExit, self.make, missing)
        self.assertIn(missing, str(error))
        broken = os.path.abspath(self.mktemp())
        with open(broken, "w") as f:
            f.write("not a certificate\n")
        error = self.assertRaises(SystemExit, self.make, broken)
        self.assertIn(broken, str(error))
        self.assertIn("no PEM certificate", str(error))

    def test_good_file(self) -> None:
        """
        A PEM file of several authorities is taken.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(trustme.CA().cert_pem.bytes() + trustme.CA().cert_pem.bytes())
        self.make(path)


class TLSFederation:
    """
    Servers of one test on https, with certificates from a throwaway CA.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.case = case
        self.base = os.path.abspath(case.mktemp())
        os.makedirs(self.base)
        ca = trustme.CA()
        self.ca_file = os.path.join(self.base, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.key_file = os.path.join(self.base, "key.pem")
        self.cert_file = os.path.join(self.base, "cert.pem")
        cert.private_key_pem.write_to_path(self.key_file)
        cert.cert_chain_pems[0].write_to_path(self.cert_file)
        self.tls = (self.key_file, self.cert_file, self.ca_file)

    def start(self, name: str, *options: str, users: tuple[str, ...] = (),
              trust: bool = True) -> ServerProcess:
        data = os.path.join(self.base, name)
        for handle in users:
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.case.assertEqual(done.returncode, 0, done.stderr)
        extra = ("--ca-file", self.ca_file) if trust else ()
        server = ServerProcess(data, *options, *extra, tls=self.tls)
        self.case.addCleanup(server.stop)
        return server

    def two_twitter_servers(
        self, s1_users: tuple[str, ...], s2_users: tuple[str, ...]
    ) -> tuple[ServerProcess, ServerProcess]:
        """
        A registry, a ping server (waited for until listed) and twitter
        servers ``s1`` and ``s2`` with those users, all on https.
        """
        registry = self.start("registry", "--role", "registry")
        self.start("ping", "--role", "ping", "--registry", registry.url)
        wait_for(lambda: registry.request("GET", "/registry/pings")[1]["pings"], 15,
                 "the ping server registered")
        twitter = ("--role", "twitter", "--registry", registry.url, "--ping-interval", "1")
        return (self.start("s1", *twitter, users=s1_users),
                self.start("s2", *twitter, users=s2_users))


class TLSFederationTests(SynchronousTestCase):
    def setUp(self) -> None:
        federation = TLSFederation(self)
        self.start = federation.start

    def test_federation_over_https(self) -> None:
        """
        A registry, a ping server and two twitter servers on https: a
        cross-server follow and a post travel; a server that does not trust
        the CA cannot reach them, says why, and stores nothing.
        """
        registry = self.start("registry", "--role", "registry")
        ping = self.start("ping", "--role", "ping", "--registry", registry.url)

        def listed() -> bool:
            return len(registry.request("GET", "/registry/pings")[1]["pings"]) == 1

        wait_for(listed, 15, "the ping server registered over https")
        twitter = ("--role", "twitter", "--registry", registry.url, "--ping-interval", "1")
        s1 = self.start("s1", *twitter, users=("alice",))
        s2 = self.start("s2", *twitter, users=("bob",))
        self.assertEqual(ping.url.split(":")[0], "https")
        bob = "bob@" + s2.url.split("//", 1)[1]
        call(s1, "POST", "/1.1/friendships/create.json", "alice", screen_name=bob)
        call(s2, "POST", "/1.1/statuses/update.json", "bob", status="over TLS")
        wait_for(arrived(s1, "alice", "over TLS"), 10, "the post over https")
        me = call(s2, "GET", "/1.1/account/verify_credentials.json", "bob")
        self.assertEqual(me["followers_count"], 1)

        s3 = self.start("s3", *twitter, users=("carol",), trust=False)
        code, body = s3.request(
            "POST", "/1.1/friendships/create.json", auth=("carol", PASSWORD),
            data={"screen_name": bob},
        )
        self.assertEqual(code, 502, body)
        self.assertIn("No distwit server answers", body["errors"][0]["message"])
        deadline = time.monotonic() + 10
        while "certificate verify failed" not in s3.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("certificate verify failed", s3.log_text())
        me = call(s3, "GET", "/1.1/account/verify_credentials.json", "carol")
        self.assertEqual(me["friends_count"], 0)
