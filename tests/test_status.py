"""
The federation health view (issue 17), with real processes on 127.0.0.1:
``distwit status`` and the operator page ``/admin/status`` name a peer
server that is down and a followed author whose copy is behind; the
operator page refuses users without the admin flag; ``distwit admin
grant`` / ``revoke`` give and take the flag.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from distwit.federation.health import MeasuredClient, PeerHealth, peer_state
from distwit.s2s.interfaces import IS2SClient, S2SResponseError
from distwit.store.interfaces import PeerRecord

from tests.processes import free_port, run_cli
from tests.test_federation import PASSWORD, Federation, follow, home, post, wait_for

INTERVAL = 1.0


class SwitchableProxy:
    """
    A TCP forwarder on 127.0.0.1 in front of one server: its address is
    the server's public URL, so that the server can be made unreachable to
    the others (:meth:`cut`) while it keeps running and reporting.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """
        Refuse every new connection and drop those open.
        """
        self.open = False
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


class PageVisitor:
    """
    A person with a browser (cookies kept) on one server's pages.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def sign_in(self, handle: str) -> None:
        code, page = self.get("/login")
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match is not None, page
        body = urllib.parse.urlencode(
            {"handle": handle, "password": PASSWORD, "csrf": match.group(1), "next": "/home"}
        ).encode()
        with self.opener.open(self.base + "/login", data=body, timeout=30) as response:
            assert response.status == 200, response.status


class StatusTests(SynchronousTestCase):
    def test_peer_down_and_author_behind(self) -> None:
        """
        alice on s1 follows carol on s3.  s3 becomes unreachable to s1 (its
        public address stops answering) and carol posts three more times:
        s1 learns her new number from the ping server but cannot copy.
        ``distwit status`` on s1's data folder then says s3 is DOWN and
        carol is BEHIND, held 1 of 4; the operator page says the same to
        alice (admin), and refuses bob (403) until he is granted the flag.
        """
        federation = Federation(self, pings=1)
        s3_port = free_port()
        proxy = SwitchableProxy(s3_port)
        self.addCleanup(proxy.close)
        s3_url = f"http://127.0.0.1:{proxy.port}"
        s1 = federation.twitter("s1", ["alice", "bob"], interval=INTERVAL)
        s3 = federation.twitter(
            "s3", ["carol"], interval=INTERVAL, port=s3_port, options=("--public-url", s3_url)
        )
        s1_data = s1.data
        carol = f"carol@127.0.0.1:{proxy.port}"
        post(s3, "carol", "carol's first")
        follow(s1, "alice", carol)
        wait_for(
            lambda: any(s["text"] == "carol's first" for s in home(s1, "alice")),
            20, "carol's post on s1",
        )
        done = run_cli("admin", "grant", "alice", "--data", s1_data)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("alice is now an operator", done.stdout)

        def status() -> str:
            done = run_cli("status", "--data", s1_data)
            self.assertEqual(done.returncode, 0, done.stderr)
            return done.stdout

        healthy = status()
        self.assertRegex(healthy, rf"ok +twitter +127\.0\.0\.1:{proxy.port} ")
        self.assertIn(f"complete  {carol}: held 1 of 1 (100.0%)", healthy)

        proxy.cut()
        for n in range(3):
            post(s3, "carol", f"carol while cut off {n}")

        def says_so() -> str | None:
            text = status()
            down = re.search(rf"DOWN +twitter +127\.0\.0\.1:{proxy.port} ", text)
            return text if down and f"BEHIND    {carol}: held 1 of 4" in text else None

        text, _ = wait_for(says_so, 60, "distwit status naming s3 down and carol behind", 0.5)
        self.assertIn("Followed authors: 1, 1 behind", text)
        self.assertIn("(25.0%)", text)
        self.assertRegex(text, r"Ping servers: 1\n  http://127\.0\.0\.1:\d+\n")

        alice = PageVisitor(s1.url)
        alice.sign_in("alice")
        code, page = alice.get("/admin/status")
        self.assertEqual(code, 200, page)
        self.assertRegex(page, rf'<tr class="peer down">\s*<td class="state">DOWN</td>\s*'
                               rf'<td class="authority">127\.0\.0\.1:{proxy.port}</td>')
        self.assertRegex(page, rf'<tr class="author behind">\s*<td class="acct">{re.escape(carol)}'
                               r'</td>\s*<td>1</td>\s*<td>4</td>\s*<td>25\.0%</td>')
        # The line on carol's page for everyone.
        code, profile = alice.get(f"/@{carol}")
        self.assertEqual(code, 200)
        self.assertIn("fetching 3 of 4", profile)

        bob = PageVisitor(s1.url)
        bob.sign_in("bob")
        code, page = bob.get("/admin/status")
        self.assertEqual(code, 403)
        self.assertIn("operators of this server", page)
        self.assertNotIn(carol, page)
        done = run_cli("admin", "grant", "bob", "--data", s1_data)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(bob.get("/admin/status")[0], 200)
        done = run_cli("admin", "revoke", "bob", "--data", s1_data)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(bob.get("/admin/status")[0], 403)
        self.assertEqual(run_cli("admin", "list", "--data", s1_data).stdout, "alice\n")

        # A visitor not signed in is sent to sign in.
        code, page = PageVisitor(s1.url).get("/admin/status")
        self.assertEqual(code, 200)
        self.assertIn('action="/login"', page)

        # s3 reachable again: s1 catches up, and says so.
        proxy.open = True

        def recovered() -> str | None:
            text = status()
            up = re.search(rf"ok +twitter +127\.0\.0\.1:{proxy.port} ", text)
            return text if up and f"complete  {carol}: held 4 of 4" in text else None

        wait_for(recovered, 60, "distwit status after s3 is back", 0.5)
        self.assertIn("all 4 posts held", alice.get(f"/@{carol}")[1])
        self.assertEqual(s1.request("GET", "/health")[0], 200)
        for server in (s1, s3):
            self.assertNotIn("Traceback", server.log_text())

    def test_certificate_problem(self) -> None:
        """
        A server that does not trust its registry's certificate: ``distwit
        status`` names the registry with a certificate problem, and why.
        """
        from tests.test_tls import TLSFederation

        federation = TLSFederation(self)
        registry = federation.start("registry", "--role", "registry")
        s3 = federation.start(
            "s3", "--role", "twitter", "--registry", registry.url, "--ping-interval", "1",
            users=("carol",), trust=False,
        )
        authority = registry.url.split("//", 1)[1]

        def says_so() -> str | None:
            done = run_cli("status", "--data", s3.data)
            self.assertEqual(done.returncode, 0, done.stderr)
            found = re.search(rf"CERTIFICATE +registry +{re.escape(authority)} ", done.stdout)
            return done.stdout if found else None

        text, _ = wait_for(says_so, 30, "the certificate problem in distwit status", 0.5)
        self.assertIn("certificate: GET https://", text)
        self.assertIn("certificate verify failed", text)

    def test_unknown_user_and_missing_database(self) -> None:
        """
        ``distwit admin grant`` of nobody, and ``distwit status`` of a data
        folder without a database: one line, exit status 1, nothing made.
        """
        base = self.mktemp()
        done = run_cli("status", "--data", base)
        self.assertEqual(done.returncode, 1)
        self.assertIn("no database at", done.stderr)
        self.assertEqual(done.stderr.count("\n"), 1)
        self.assertFalse(os.path.exists(base))
        made = run_cli("adduser", "--create", "alice", "--data", base, stdin=PASSWORD + "\n")
        self.assertEqual(made.returncode, 0, made.stderr)
        done = run_cli("admin", "grant", "zed", "--data", base)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stderr, "distwit: there is no user 'zed' here\n")


class _Peers:
    """
    Keeps what :class:`PeerHealth` saves.
    """

    def __init__(self) -> None:
        self.saved: list[list[PeerRecord]] = []

    def save_peers(self, records: list[PeerRecord]) -> Deferred[None]:
        self.saved.append(records)
        return succeed(None)


@implementer(IS2SClient)
class _Client:
    def __init__(self) -> None:
        self.pending: list[Deferred[Any]] = []

    def _next(self) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append(d)
        return d

    def get_json(self, url: str) -> Deferred[Any]:
        return self._next()

    def post_json(self, url: str, value: Any, timeout: float | None = None) -> Deferred[Any]:
        return self._next()

    def get_bytes(self, url: str, max_size: int | None = None) -> Deferred[bytes]:
        return self._next()


class PeerHealthTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = _Peers()
        self.health = PeerHealth(self.store, self.clock)  # type: ignore[arg-type]
        self.client = _Client()
        self.measured = MeasuredClient(self.client, self.health, self.clock)
        verifyObject(IS2SClient, self.measured)
        self.health.startService()
        self.addCleanup(self.health.stopService)

    def test_success_failure_certificate(self) -> None:
        """
        An answer records the latency; a refusal (an HTTP status) is an
        answer too; no answer counts a failure in a row, with its cause; a
        TLS failure is a certificate problem; a cancelled request says
        nothing of the peer; the ping server and the registry are told
        apart by path.
        """
        feed = "http://s2:80/s2s/feed/carol.rss?from=1&to=2"
        self.measured.get_bytes(feed).addErrback(lambda _: None)
        self.clock.advance(0.25)
        self.client.pending.pop().callback(b"feed")
        self.measured.post_json("http://s2:80/s2s/notice", {}).addErrback(lambda _: None)
        self.clock.advance(0.1)
        self.client.pending.pop().errback(S2SResponseError("HTTP 400", status=400))
        exchange = "http://p:80/ping/exchange?wait=50"
        self.measured.post_json(exchange, {}, timeout=80).addErrback(lambda _: None)
        self.clock.advance(50)
        self.client.pending.pop().callback({})
        self.measured.get_json("http://r:80/registry/pings").addErrback(lambda _: None)
        self.client.pending.pop().cancel()
        records = {r.authority: r for r in self.health.records()}
        self.assertEqual(sorted(records), ["p:80", "s2:80"])
        self.assertEqual((records["s2:80"].kind, records["s2:80"].latency_ms), ("twitter", 100))
        self.assertEqual((records["p:80"].kind, records["p:80"].latency_ms), ("ping", 0))
        self.assertEqual(records["s2:80"].failures, 0)

        for detail in ("ConnectionRefusedError: Connection was refused",
                       "Error: [('SSL routines', '', 'certificate verify failed')]"):
            self.measured.get_json("http://s2:80/s2s/last/carol").addErrback(lambda _: None)
            error = S2SResponseError("GET http://s2:80/s2s/last/carol: no answer")
            error.detail = detail
            self.client.pending.pop().errback(error)
        record = {r.authority: r for r in self.health.records()}["s2:80"]
        self.assertEqual(record.failures, 2)
        self.assertIn("certificate verify failed", record.certificate_error)
        self.assertIn("no answer (Error: [('SSL routines'", record.last_error)
        self.assertEqual(
            peer_state(record.__class__(**{**record.__dict__, "updated_at": 0})), "CERTIFICATE"
        )

    def test_written_when_state_changes(self) -> None:
        """
        A change of state (first seen, down, up) is written within two
        seconds; mere times of exchanges every 30 seconds; everything when
        the service stops.
        """
        def answer(url: str) -> None:
            self.measured.get_json(url).addErrback(lambda _: None)
            self.client.pending.pop().callback({})

        answer("http://s2:80/x")
        self.clock.advance(2)
        self.assertEqual([[r.authority for r in rs] for rs in self.store.saved], [["s2:80"]])
        for _ in range(10):
            answer("http://s2:80/x")
            self.clock.advance(2)
        self.assertEqual(len(self.store.saved), 1)
        self.measured.get_json("http://s2:80/x").addErrback(lambda _: None)
        self.client.pending.pop().errback(S2SResponseError("no answer"))
        self.clock.advance(2)
        self.assertEqual(len(self.store.saved), 2)
        self.assertEqual(self.store.saved[-1][0].failures, 1)
        self.clock.advance(40)
        self.assertEqual(len(self.store.saved), 2)
        answer("http://s2:80/x")
        self.health.stopService()
        self.assertEqual(self.store.saved[-1][0].failures, 0)


class HeldLineTests(SynchronousTestCase):
    def test_words(self) -> None:
        """
        The line on a remote author's page: nothing when no copy is kept,
        "fetching" while new messages are copied, "all N posts held" (the
        author's post count) when everything from their first message is
        held, and says so when older messages are left for paging.
        """
        from dataclasses import replace

        from distwit.model import Account
        from distwit.web.people import held_line

        base = Account(id=7, handle="carol", authority="s3:80", name="", created_at=0,
                       last_seq=1234, statuses_count=1200, followers_count=0,
                       friends_count=0, synced_seq=0)
        self.assertIsNone(held_line(base, False, 1))
        self.assertIsNone(held_line(replace(base, last_seq=0), True, 1))
        self.assertEqual(held_line(base, True, 1), "fetching 1,234 of 1,234")
        self.assertEqual(held_line(replace(base, synced_seq=1222), False, 1),
                         "fetching 12 of 1,234")
        self.assertEqual(held_line(replace(base, synced_seq=1234), False, 1),
                         "all 1,200 posts held")
        self.assertEqual(held_line(replace(base, synced_seq=1, last_seq=1, statuses_count=1),
                                   False, 1), "all 1 post held")
        self.assertEqual(
            held_line(replace(base, synced_seq=1234), True, 1215),
            "all new posts held; older ones come from their server as you page",
        )
