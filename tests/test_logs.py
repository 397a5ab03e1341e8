"""
Quiet logs (issue 17): an idle federation writes nothing at the default
level (its routine exchanges are at debug level); a peer that stops
answering is one line, not one per round, and one more when it answers
again; ``--log-format json`` writes one JSON object a line; the access
log is in the combined log format.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess
from tests.test_federation import Federation, acct, follow, home, post, wait_for

#: How long the federation stays idle under watch.
IDLE = 30.0


def new_lines(server: ServerProcess, since: int) -> list[str]:
    return server.log_text()[since:].splitlines()


class IdleFederationTests(SynchronousTestCase):
    def test_idle_then_peer_down_then_back(self) -> None:
        federation = Federation(self, pings=1)
        # A second ping server logging at debug level: the exchanges do go on.
        chatty = federation.start(
            "ping-debug", "--role", "ping", "--registry", federation.registry.url,
            "--log-level", "debug",
        )
        federation.wait_for_registry(2)
        s1 = federation.twitter("s1", ["alice"], interval=1.0)
        s2 = federation.twitter("s2", ["bob"], interval=1.0)
        follow(s1, "alice", acct("bob", s2))
        post(s2, "bob", "one post")
        wait_for(lambda: [s for s in home(s1, "alice") if s["text"] == "one post"], 30,
                 "bob's post on s1")
        quiet = [federation.registry, federation.pings[0], s1, s2]
        # What starting and the post wrote is behind us.
        marks = {server: len(server.log_text()) for server in quiet}
        exchanges = chatty.log_text().count("POST /ping/exchange")

        deadline = time.monotonic() + IDLE
        while time.monotonic() < deadline:
            for server in quiet:
                self.assertEqual(new_lines(server, marks[server]), [], server.url)
            time.sleep(0.5)
        # 30 s at interval 1: each twitter server exchanged about 30 times.
        self.assertGreater(chatty.log_text().count("POST /ping/exchange") - exchanges, 30)

        # A ping server stops: one line on each twitter server, whatever the rounds.
        ping = federation.pings[0]
        ping_port = ping.port
        ping.stop()
        failing = re.compile(rf"ping server {re.escape(ping.url)} fails \(exchange\): .+")
        for server in (s1, s2):
            wait_for(lambda server=server: failing.search(server.log_text()), 30,
                     f"the failure logged on {server.url}")
        rounds_seen = time.monotonic() + 8
        while time.monotonic() < rounds_seen:
            time.sleep(0.5)
        for server in (s1, s2):
            lines = new_lines(server, marks[server])
            self.assertEqual(len([line for line in lines if failing.search(line)]), 1, lines)
            # One line: no traceback under it.
            self.assertNotIn("Traceback", server.log_text())
            self.assertFalse([line for line in lines
                              if "/ping/exchange" in line and not failing.search(line)], lines)
            self.assertIn("Connection refused", failing.search("\n".join(lines)).group(0))

        # It answers again: one more line.
        back = federation.start(
            "ping0", "--role", "ping", "--registry", federation.registry.url, port=ping_port
        )
        self.assertEqual(back.url, ping.url)
        again = f"ping server {ping.url} answers again"
        for server in (s1, s2):
            wait_for(lambda server=server: again in server.log_text(), 60,
                     f"the recovery logged on {server.url}")
        for server in (s1, s2):
            text = server.log_text()[marks[server]:]
            self.assertEqual(text.count(again), 1, text)
            self.assertEqual(len(failing.findall(text)), 1, text)


class LogFormatTests(SynchronousTestCase):
    def test_json_and_access_log(self) -> None:
        """
        ``--log-format json``: every line of the log is a JSON object; a
        request is one, with the combined log format line and its fields.
        ``--access-log FILE`` writes every request there instead.
        """
        data = os.path.abspath(self.mktemp())
        server = ServerProcess(data, "--log-format", "json")
        self.addCleanup(server.stop)
        self.assertEqual(server.request("GET", "/nothing-here")[0], 404)

        def access_events() -> list[dict[str, object]]:
            events = [json.loads(line) for line in server.log_text().splitlines()]
            return [e for e in events if e.get("log_namespace") == "distwit.access"
                    and e.get("path") == "/nothing-here"]

        events, _ = wait_for(access_events, 30, "the request in the JSON log")
        event = events[0]
        self.assertEqual((event["method"], event["status"]), ("GET", 404))
        self.assertRegex(
            str(event["access_line"]),
            r'^"127\.0\.0\.1" - - \[[^\]]+\] "GET /nothing-here HTTP/1\.1" 404 \d+ "-" ".*"$',
        )
        server.stop()

        access = os.path.join(os.path.abspath(self.mktemp()) + "-access.log")
        server = ServerProcess(data, "--access-log", access)
        self.addCleanup(server.stop)
        self.assertEqual(server.request("GET", "/nothing-either")[0], 404)
        wait_for(lambda: os.path.exists(access)
                 and "GET /nothing-either HTTP/1.1\" 404" in open(access).read(), 30,
                 "the request in the access log file")
        self.assertNotIn("/nothing-either", server.log_text())
        # /health is a routine request: in the file, not in the server's log.
        with open(access) as f:
            self.assertIn("GET /health", f.read())


class PeerLogTests(SynchronousTestCase):
    """
    :class:`distwit.http.PeerLog` and :func:`distwit.http.one_line` alone.
    """

    def test_once_per_change(self) -> None:
        """
        fails, fails, fails (another cause), answers, answers, fails: a
        warning, two debug lines, an info line, nothing, a warning.
        """
        from twisted.logger import Logger

        from distwit.http import PeerLog

        events: list[dict[str, Any]] = []
        peers = PeerLog(Logger(observer=events.append), "server")
        refused = ConnectionRefusedError("Connection refused")
        peers.failed("s2.test", refused, "fetching bob@s2.test")
        peers.failed("s2.test", refused)
        peers.failed("s2.test", "HTTP 502 Bad Gateway")
        self.assertTrue(peers.is_failing("s2.test"))
        peers.answered("s2.test")
        peers.answered("s2.test")
        peers.answered("s3.test")
        peers.failed("s2.test", refused)
        self.assertEqual([e["log_level"].name for e in events],
                         ["warn", "debug", "debug", "info", "warn"])
        first = formatEvent(events[0])
        self.assertEqual(
            first, "server s2.test fails (fetching bob@s2.test): Connection refused"
        )
        self.assertEqual(formatEvent(events[3]), "server s2.test answers again")

    def test_one_line_of_wrapped_tls_error(self) -> None:
        """
        A certificate refused inside Twisted's wrappers, and the signed
        client's "no answer" with its cause: one line each, the reason in
        words.
        """
        from OpenSSL import SSL
        from twisted.python.failure import Failure
        from twisted.web._newclient import ResponseNeverReceived

        from distwit.http import one_line
        from distwit.s2s.interfaces import S2SResponseError

        tls = SSL.Error([("SSL routines", "", "certificate verify failed")])
        wrapped = ResponseNeverReceived([Failure(tls)])
        self.assertEqual(one_line(Failure(wrapped)), "TLS error: certificate verify failed")
        error = S2SResponseError(
            "GET https://s3.test/s2s/feed/carol.rss: no answer",
            detail=f"ResponseNeverReceived: {[Failure(tls)]!r}\nmore\nlines",
        )
        line = one_line(error)
        self.assertNotIn("\n", line)
        self.assertTrue(line.startswith("GET https://s3.test/s2s/feed/carol.rss: no answer: "))
        self.assertIn("certificate verify failed", line)


class UntrustedPeerTests(SynchronousTestCase):
    def test_self_signed_registry_is_one_line(self) -> None:
        """
        A twitter server that does not trust the certificate of its
        registry (the issue's self-signed peer, which gave a 22-line
        traceback every round) says so in one line, once, while the rounds
        go on every second.
        """
        from tests.test_tls import TLSFederation

        federation = TLSFederation(self)
        registry = federation.start("registry", "--role", "registry")
        s3 = federation.start(
            "s3", "--role", "twitter", "--registry", registry.url, "--ping-interval", "1",
            users=("carol",), trust=False,
        )
        wait_for(lambda: "certificate verify failed" in s3.log_text(), 30,
                 "the certificate refused and logged")
        watched = time.monotonic() + 8
        while time.monotonic() < watched:
            time.sleep(0.5)
        lines = [line for line in s3.log_text().splitlines()
                 if "certificate verify failed" in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"registry {registry.url}", lines[0])
        self.assertIn("TLS error: certificate verify failed", lines[0])
        self.assertNotIn("Traceback", s3.log_text())


class AccessLineTests(SynchronousTestCase):
    def test_same_line_as_twisted(self) -> None:
        """
        The access line, its pieces escaped once and kept, is the line of
        Twisted's combined log format for every kind of request: quotes and
        bytes outside ASCII in the agent, a referrer, no address, an
        answer not sent yet, the same request again.
        """
        from twisted.internet.address import IPv4Address, UNIXAddress
        from twisted.web.http import combinedLogFormatter, datetimeToLogString
        from twisted.web.test.requesthelper import DummyRequest

        from distwit.http import _Escapes

        escapes = _Escapes()
        escapes.SIZE = 3  # start again often
        stamp = "[" + datetimeToLogString(1_700_000_000) + "]"
        for agent, referrer, address, length in [
            (b'curl "7" \xc3\xa9\\', None, IPv4Address("TCP", "10.0.0.1", 5), 20113),
            (None, b"https://example.com/a?b=\"c\"", IPv4Address("TCP", "::1", 5), 0),
            (b"x", b"y", UNIXAddress(b"/tmp/s"), 7),
            (b'curl "7" \xc3\xa9\\', None, IPv4Address("TCP", "10.0.0.1", 5), 20113),
        ]:
            request = DummyRequest([b"statuses", b"home_timeline.json"])
            request.uri = b'/1.1/statuses/home_timeline.json?q="\xff"'
            request.method = b"GET"
            request.clientproto = b"HTTP/1.1"
            request.code = 200
            request.sentLength = length
            request.client = address
            if agent is not None:
                request.requestHeaders.setRawHeaders(b"user-agent", [b"first", agent])
            if referrer is not None:
                request.requestHeaders.setRawHeaders(b"referer", [referrer])
            self.assertEqual(escapes.combined(stamp, request),
                             combinedLogFormatter(stamp, request))

    def test_same_text_as_twisted(self) -> None:
        """
        The text log's lines are Twisted's (``textFileLogObserver``) for
        the access events (one field, the time of each second formatted
        once) and for every other kind of event.
        """
        from twisted.logger import LogLevel, formatEventAsClassicLogText, formatTime

        from distwit.roles.logs import ClassicText

        text = ClassicText()
        now = 1_700_000_000.25
        events: list[dict[str, Any]] = [
            {"log_format": "{access_line}", "access_line": '"1.2.3.4" - - "GET / {x}"',
             "log_namespace": "distwit.access", "log_level": LogLevel.info, "log_time": now},
            {"log_format": "{access_line}", "access_line": "two\nlines",
             "log_namespace": "distwit.access", "log_level": LogLevel.debug,
             "log_time": now + 0.5},
            {"log_format": "{access_line}", "access_line": "a second later",
             "log_time": now + 1},
            {"log_format": "{access_line}", "access_line": "", "log_time": now},
            {"log_format": "{missing}", "log_time": now, "log_level": LogLevel.warn},
            {"log_format": "{what} {peer} fails", "what": "server", "peer": "s1",
             "log_namespace": "x", "log_level": LogLevel.warn, "log_time": now},
            {"log_format": "legacy", "log_system": "HTTPChannel,0", "log_time": now},
            {"log_format": "{n}", "n": 7},
        ]
        for event in events:
            self.assertEqual(
                text(event),
                formatEventAsClassicLogText(event, formatTime=formatTime),
                event,
            )
