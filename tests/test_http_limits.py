"""
The site's limits on strangers: an idle connection or a request trickled in
slowly is closed, a body over ``max_body_bytes`` gets 413 before it is
buffered, connections past ``max_connections`` are refused.
"""

from __future__ import annotations

import os
import socket

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from distwit.http import LINGER, LimitedSite
from tests.processes import ServerProcess

LIMIT = 1000
TIMEOUT = 60.0


class Echo(Resource):
    """
    Answers with the length of the body it was given.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[int] = []

    def render_POST(self, request: IRequest) -> bytes:
        size = len(request.content.read())
        self.bodies.append(size)
        return b"got %d" % size

    def render_GET(self, request: IRequest) -> bytes:
        return b"hello"


class Connection:
    """
    One connection to a site, in memory.
    """

    def __init__(self, site: LimitedSite) -> None:
        self.protocol = site.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1234))
        assert self.protocol is not None
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def answer(self) -> bytes:
        return self.transport.value()

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.protocol.connectionLost(Failure(ConnectionDone()))


class LimitsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.echo = Echo()
        self.site = LimitedSite(
            self.echo,
            idle_timeout=TIMEOUT,
            max_body_bytes=LIMIT,
            max_connections=3,
            reactor=self.clock,
        )

    def connect(self) -> Connection:
        return Connection(self.site)

    def content_sizes(self, connection: Connection) -> list[int]:
        """
        How many bytes of a body each open request of ``connection`` holds.
        """
        channel = getattr(connection.protocol, "_channel")
        sizes = []
        for request in channel.requests:
            content = request.content
            sizes.append(0 if content is None else content.seek(0, os.SEEK_END))
        return sizes

    def test_body_within_limit(self) -> None:
        """
        A body of exactly ``max_body_bytes`` is served.
        """
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % LIMIT + b"a" * LIMIT)
        self.assertIn(b"200 OK", c.answer())
        self.assertTrue(c.answer().endswith(b"got %d" % LIMIT))

    def test_length_over_limit(self) -> None:
        """
        A Content-Length over the limit is answered 413 right after the
        headers, before any of the body arrives, without "100 Continue";
        the body that follows is thrown away, never buffered, and the
        connection closes after the linger.
        """
        c = self.connect()
        c.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMIT * 200)
        )
        answer = c.answer()
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        self.assertIn(b"Connection: close", answer)
        self.assertNotIn(b"100 Continue", answer)
        self.assertIn(b"the body is over 1000 bytes", answer)
        for _ in range(200):
            c.send(b"a" * LIMIT)
        self.assertEqual(self.content_sizes(c), [0])
        self.assertEqual(self.echo.bodies, [])
        self.assertEqual(c.answer(), answer)  # nothing more said
        self.assertFalse(c.closed)
        self.clock.advance(LINGER)
        self.assertTrue(c.closed)

    def test_length_over_limit_with_body(self) -> None:
        """
        Headers and an oversized body in one read: still 413, and the
        resource never sees the request.
        """
        c = self.connect()
        c.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
            + b"a" * (LIMIT + 1)
        )
        self.assertTrue(c.answer().startswith(b"HTTP/1.1 413 "))
        self.assertEqual(self.echo.bodies, [])

    def test_chunked_over_limit(self) -> None:
        """
        A chunked body is cut off with 413 as soon as it passes the limit:
        no more than the limit is ever kept, and the request is not served.
        """
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (400, b"a" * 400)
        c.send(chunk * 2)
        self.assertEqual(c.answer(), b"")
        self.assertEqual(self.content_sizes(c), [800])
        c.send(chunk)
        self.assertTrue(c.answer().startswith(b"HTTP/1.1 413 "))
        self.assertEqual(self.content_sizes(c), [800])
        c.send(chunk * 10 + b"0\r\n\r\n")
        self.assertEqual(self.content_sizes(c), [800])
        self.assertEqual(self.echo.bodies, [])
        self.clock.advance(LINGER)
        self.assertTrue(c.closed)

    def test_chunked_within_limit(self) -> None:
        """
        A chunked body within the limit is served.
        """
        c = self.connect()
        c.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (LIMIT, b"a" * LIMIT)
        )
        self.assertTrue(c.answer().endswith(b"got %d" % LIMIT))

    def test_idle_closed(self) -> None:
        """
        A connection that sends nothing is closed after the idle timeout,
        and one that was answered is closed after the idle timeout too.
        """
        silent = self.connect()
        self.clock.advance(TIMEOUT - 1)
        self.assertFalse(silent.closed)
        self.clock.advance(1)
        self.assertTrue(silent.closed)

        answered = self.connect()
        answered.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(answered.answer().endswith(b"hello"))
        self.clock.advance(TIMEOUT)
        self.assertTrue(answered.closed)

    def test_slow_headers_closed(self) -> None:
        """
        A client sending one header line every little while (never idle
        for the timeout) is closed once its request has taken the timeout
        to arrive.
        """
        c = self.connect()
        c.send(b"GET / HTTP/1.1\r\n")
        for n in range(5):
            self.clock.advance(TIMEOUT / 6)
            c.send(b"X-Slow-%d: yes\r\n" % n)
        self.assertFalse(c.closed)
        self.clock.advance(TIMEOUT / 6)
        self.assertTrue(c.closed)
        self.assertEqual(c.answer(), b"")

    def test_slow_second_request_closed(self) -> None:
        """
        The deadline starts again after each answer on a kept-alive
        connection, and a prompt second request is served.
        """
        c = self.connect()
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(TIMEOUT - 1)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.answer().count(b"hello"), 2)
        self.clock.advance(TIMEOUT / 2)
        c.send(b"GET / HTTP/1.1\r\n")
        self.clock.advance(TIMEOUT / 2 - 1)
        c.send(b"X-Slow: yes\r\n")
        self.assertFalse(c.closed)
        self.clock.advance(1)
        self.assertTrue(c.closed)

    def test_connection_cap(self) -> None:
        """
        Past ``max_connections`` a connection is refused; the log says so
        once when the cap is reached, and once when well back under it.
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def lines() -> list[str]:
            return [
                str(e.get("log_format", "")) for e in events
                if "connections" in str(e.get("log_format", ""))
            ]

        open_ = [self.connect() for _ in range(3)]
        self.assertEqual(self.site.open_connections, 3)
        address = IPv4Address("TCP", "10.0.0.2", 1)
        for _ in range(5):
            self.assertIsNone(self.site.buildProtocol(address))
        self.assertEqual(len(lines()), 1)
        self.assertIn("refusing new connections", lines()[0])
        open_[0].lose()
        self.assertEqual(self.site.open_connections, 2)
        self.assertEqual(len(lines()), 2)
        self.assertIn("accepting connections again", lines()[1])
        self.assertIsNotNone(self.site.buildProtocol(address))


class ProcessTests(SynchronousTestCase):
    def test_big_post_refused(self) -> None:
        """
        A real server answers a 2 MB POST with 413 (the client gets to read
        it) and still answers /health afterwards.
        """
        server = ServerProcess(self.mktemp())
        self.addCleanup(server.stop)
        body = os.urandom(1024 * 1024).hex().encode()  # 2 MB
        host, port = "127.0.0.1", server.port
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(
                b"POST /signup HTTP/1.1\r\nHost: %s:%d\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % (host.encode(), port, len(body))
            )
            s.sendall(body)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:200])
        code, health = server.request("GET", "/health")
        self.assertEqual(code, 200)
        self.assertEqual(health["status"], "ok")
