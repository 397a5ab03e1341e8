"""
The API's limit per client address, on a real server over real sockets:
whatever door a call comes by (HTTP Basic, OAuth 1.0a, a bearer token,
none), it counts against the address it comes from, before any
credentials are checked; a user's own allowance is counted only once
their credentials are.  So a stranger hammering a user's name from one
address gets 429 there, and the user, from another address, goes on.

The server listens on 127.0.0.1; the test's clients bind their sockets to
other loopback addresses (127.0.0.2, 127.0.0.3...) to be different
addresses to it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
from typing import Any
from urllib.parse import urlencode

from oauthlib.oauth1 import Client
from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli

PASSWORD = "correct horse battery staple"
WRONG = "wrong password"

#: The calls per window from one address in these tests' servers.
READS, WRITES = 5, 3


def basic(handle: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{handle}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self) -> int | None:
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return errors[0]["code"] if errors else None

    def __repr__(self) -> str:
        return f"<{self.status} {self.body!r}>"


def call(
    server: ServerProcess,
    source: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Answer:
    """
    One request to ``server`` from the loopback address ``source``.
    """
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=30, source_address=(source, 0)
    )
    try:
        body = None if form is None else urlencode(form)
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = data.decode("utf-8", "replace")
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, decoded
        )
    finally:
        connection.close()


class LimitedServer(SynchronousTestCase):
    """
    A server allowing :data:`READS` reads and :data:`WRITES` writes per
    address in 15 minutes, with alice and an OAuth app.
    """

    #: The config file's [server] section.
    server_section = ""

    def setUp(self) -> None:
        data = os.path.abspath(self.mktemp())
        os.makedirs(data)
        config = os.path.join(data, "..", "limits.ini")
        with open(config, "w") as f:
            f.write(
                self.server_section
                + "[twitter]\n"
                f"rate_limit_address_reads = {READS}\n"
                f"rate_limit_address_writes = {WRITES}\n"
            )
        self.cli("adduser", "--create", "alice", "--data", data, stdin=PASSWORD + "\n")
        app = self.cli("app", "create", "Limited", "--owner", "alice", "--data", data)
        self.consumer = dict(line.split("=", 1) for line in app.split())
        token = self.cli("token", "create", "--consumer-key",
                         self.consumer["consumer_key"], "--user", "alice", "--data", data)
        self.token = dict(line.split("=", 1) for line in token.split())
        self.server = ServerProcess(data, "--config", config)
        self.addCleanup(self.server.stop)

    def cli(self, *args: str, stdin: str = "") -> str:
        done = run_cli(*args, stdin=stdin)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def oauth1(self, method: str, path: str) -> dict[str, str]:
        """
        The Authorization header of alice's access token, signed.
        """
        client = Client(
            self.consumer["consumer_key"], self.consumer["consumer_secret"],
            self.token["access_token"], self.token["access_token_secret"],
        )
        _, headers, _ = client.sign(self.server.url + path, method)
        return {"Authorization": headers["Authorization"]}

    def bearer(self, source: str) -> dict[str, str]:
        """
        An app-only bearer token of the app (asked for from ``source``).
        """
        credentials = f"{self.consumer['consumer_key']}:{self.consumer['consumer_secret']}"
        answer = call(
            self.server, source, "POST", "/oauth2/token",
            headers={"Authorization": "Basic "
                     + base64.b64encode(credentials.encode()).decode()},
            form={"grant_type": "client_credentials"},
        )
        self.assertEqual(answer.status, 200, answer)
        return {"Authorization": f"Bearer {answer.body['access_token']}"}

    def assertRateLimited(self, answer: Answer, limit: int) -> None:
        self.assertEqual((answer.status, answer.code), (429, 88), answer)
        self.assertEqual(answer.body["errors"][0]["message"], "Rate limit exceeded.")
        self.assertEqual(answer.headers["x-rate-limit-limit"], str(limit))
        self.assertEqual(answer.headers["x-rate-limit-remaining"], "0")
        reset = int(answer.headers["x-rate-limit-reset"])
        self.assertTrue(time.time() < reset <= time.time() + 900 + 5, reset)


class AddressLimitTests(LimitedServer):
    """
    Every door counts against the address, before credentials.
    """

    def test_stranger_cannot_use_up_the_owner(self) -> None:
        """
        A stranger at 127.0.0.2 sends alice's name with wrong passwords:
        401 while their address has calls left, then 429 code 88 with the
        x-rate-limit headers, even with the right password.  Alice at
        127.0.0.3 signs in as many times as her address allows, and at
        127.0.0.4 goes on when that is spent.
        """
        path = "/1.1/account/verify_credentials.json"
        remaining = []
        for _ in range(READS):
            answer = call(self.server, "127.0.0.2", "GET", path, basic("alice", WRONG))
            self.assertEqual((answer.status, answer.code), (401, 32), answer)
            remaining.append(int(answer.headers["x-rate-limit-remaining"]))
        self.assertEqual(remaining, list(range(READS - 1, -1, -1)))
        for password in (WRONG, PASSWORD):
            self.assertRateLimited(
                call(self.server, "127.0.0.2", "GET", path, basic("alice", password)), READS
            )
        for _ in range(READS):
            answer = call(self.server, "127.0.0.3", "GET", path, basic("alice", PASSWORD))
            self.assertEqual(answer.status, 200, answer)
            self.assertEqual(answer.body["screen_name"], "alice")
        self.assertRateLimited(
            call(self.server, "127.0.0.3", "GET", path, basic("alice", PASSWORD)), READS
        )
        answer = call(self.server, "127.0.0.4", "GET", path, basic("alice", PASSWORD))
        self.assertEqual(answer.status, 200, answer)

    def test_every_door(self) -> None:
        """
        Calls without credentials spend 127.0.0.5's reads; then HTTP Basic,
        OAuth 1.0a and a bearer token, all valid, get 429 there too, while
        each works from 127.0.0.6.  Writes have their own allowance.
        """
        bearer = self.bearer("127.0.0.7")
        path = "/1.1/help/test.json"
        for _ in range(READS):
            answer = call(self.server, "127.0.0.5", "GET", path)
            self.assertEqual(answer.status, 200, answer)
        self.assertRateLimited(call(self.server, "127.0.0.5", "GET", path), READS)
        verify = "/1.1/account/verify_credentials.json"
        timeline = "/1.1/statuses/user_timeline.json?screen_name=alice"
        doors = {
            "basic": lambda: (verify, basic("alice", PASSWORD)),
            "oauth": lambda: (verify, self.oauth1("GET", verify)),
            "bearer": lambda: (timeline, bearer),
        }
        for door, request in doors.items():
            where, headers = request()
            answer = call(self.server, "127.0.0.5", "GET", where, headers)
            self.assertRateLimited(answer, READS)
            where, headers = request()
            answer = call(self.server, "127.0.0.6", "GET", where, headers)
            self.assertEqual(answer.status, 200, (door, answer))
        for n in range(WRITES):
            answer = call(self.server, "127.0.0.5", "POST", "/1.1/statuses/update.json",
                          basic("alice", PASSWORD), form={"status": f"still here {n}"})
            self.assertEqual(answer.status, 200, answer)
        answer = call(self.server, "127.0.0.5", "POST", "/1.1/statuses/update.json",
                      basic("alice", PASSWORD), form={"status": "one too many"})
        self.assertRateLimited(answer, WRITES)


class TrustedProxyTests(LimitedServer):
    """
    Behind a front (nginx at 127.0.0.5, ``trusted_proxies``), the address
    that counts is the one the front names in X-Forwarded-For; the header
    from anyone else is ignored.
    """

    server_section = "[server]\ntrusted_proxies = 127.0.0.5/32, ::1\n"

    def through(self, forwarded: str, source: str = "127.0.0.5") -> Answer:
        return call(self.server, source, "GET", "/1.1/help/configuration.json",
                    headers={"X-Forwarded-For": forwarded})

    def test_forwarded_address_counts(self) -> None:
        """
        Reads forwarded for 10.1.1.1 use up 10.1.1.1's allowance, not the
        front's nor 10.1.1.2's; a client's forged first hop does not help
        it (the front appends the address it saw: the last one counts); a
        client at 127.0.0.6, not a front, is counted as itself whatever it
        sends.
        """
        for _ in range(READS):
            self.assertEqual(self.through("10.1.1.1").status, 200)
        self.assertRateLimited(self.through("10.1.1.1"), READS)
        self.assertRateLimited(self.through("10.9.9.9, 10.1.1.1"), READS)
        self.assertEqual(self.through("10.1.1.2").status, 200)
        for _ in range(READS):
            self.assertEqual(self.through("10.1.1.1", source="127.0.0.6").status, 200)
        self.assertRateLimited(self.through("10.1.1.2", source="127.0.0.6"), READS)

