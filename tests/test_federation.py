"""
Federation end to end: a registry, ping servers and twitter servers as
real ``twistd`` processes on 127.0.0.1, and a hostile peer beside them.

These tests wait for deliveries by polling the followers' APIs until a
deadline; the deadlines are the delivery promises of the design (two ping
intervals in polling mode, under a second with long-poll).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli

PASSWORD = "correct horse battery"


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, step: float = 0.02
) -> tuple[Any, float]:
    """
    Call ``condition`` until it returns something true; return that and the
    seconds it took.

    :raise AssertionError: not within ``timeout`` seconds.
    """
    start = time.monotonic()
    while True:
        value = condition()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(step)


class Federation:
    """
    A registry, ping servers and twitter servers, each its own process.
    """

    def __init__(self, case: SynchronousTestCase, pings: int = 2) -> None:
        self.case = case
        self.base = os.path.abspath(case.mktemp())
        os.makedirs(self.base)
        self.registry = self.start("registry", "--role", "registry")
        self.pings = [self.ping(i) for i in range(pings)]
        self.wait_for_registry(len(self.pings))
        self.twitters: dict[str, ServerProcess] = {}

    def start(self, name: str, *options: str, port: int | None = None,
              host: str = "127.0.0.1") -> ServerProcess:
        server = ServerProcess(os.path.join(self.base, name), *options, port=port, host=host)
        self.case.addCleanup(server.stop)
        return server

    def ping(self, i: int, port: int | None = None) -> ServerProcess:
        return self.start(
            f"ping{i}", "--role", "ping", "--registry", self.registry.url, port=port
        )

    def wait_for_registry(self, count: int) -> None:
        def listed() -> bool:
            code, body = self.registry.request("GET", "/registry/pings")
            return code == 200 and len(body["pings"]) >= count

        wait_for(listed, 15, "ping servers registered")

    def twitter(
        self,
        name: str,
        users: list[str],
        interval: float = 1.0,
        long_poll: float = 0.0,
        port: int | None = None,
        host: str = "127.0.0.1",
        options: tuple[str, ...] = (),
    ) -> ServerProcess:
        data = os.path.join(self.base, name)
        for handle in users:
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.case.assertEqual(done.returncode, 0, done.stderr)
        server = self.start(
            name,
            "--role", "twitter",
            "--registry", self.registry.url,
            "--ping-interval", str(interval),
            "--long-poll", str(long_poll),
            *options,
            port=port,
            host=host,
        )
        self.twitters[name] = server
        return server

    def restart(self, name: str, server: ServerProcess, *, kill: bool = False) -> ServerProcess:
        """
        Start ``server`` again on its port, with its data and options.
        """
        if kill:
            server.kill()
        else:
            server.stop()
        again = self.start(name, *server.options, port=server.port)
        if name in self.twitters:
            self.twitters[name] = again
        return again


def acct(handle: str, server: ServerProcess) -> str:
    return f"{handle}@{server.url.split('//', 1)[1]}"


def call(server: ServerProcess, method: str, path: str, user: str, **data: Any) -> Any:
    code, body = server.request(method, path, auth=(user, PASSWORD), data=data or None)
    if code != 200:
        raise AssertionError(f"{method} {server.url}{path} as {user}: {code} {body}")
    return body


def home(server: ServerProcess, user: str, count: int = 200) -> list[dict[str, Any]]:
    return call(  # type: ignore[no-any-return]
        server, "GET", f"/1.1/statuses/home_timeline.json?count={count}", user
    )


def follow(server: ServerProcess, user: str, target: str) -> None:
    call(server, "POST", "/1.1/friendships/create.json", user, screen_name=target)


def post(server: ServerProcess, user: str, text: str) -> dict[str, Any]:
    return call(server, "POST", "/1.1/statuses/update.json", user, status=text)  # type: ignore[no-any-return]


def arrived(server: ServerProcess, user: str, text: str) -> Callable[[], bool]:
    return lambda: any(status["text"] == text for status in home(server, user))


class DesignExampleTests(SynchronousTestCase):
    """
    The example of docs/design/subscription.md: Scoble, Dave, Joshua,
    Public Timeline and a fifth user on three twitter servers.

    The table as printed cannot be drawn for five users: Public Timeline
    has no followers, so nobody can follow four others, yet Scoble and
    Joshua are to follow four.  This is the closest graph that exists:
    every follower count and Dave's and Public Timeline's following counts
    as in the table, Scoble following 2 (table: 4) and Joshua 3 (table: 4).
    """

    INTERVAL = 2.0

    GRAPH = {
        # follower: followees
        "scoble": ["dave", "user5"],
        "dave": ["scoble"],
        "joshua": ["scoble", "dave", "user5"],
        "public": ["scoble", "dave", "joshua", "user5"],
        "user5": ["scoble", "dave"],
    }
    HOMES = {"scoble": "s1", "dave": "s1", "joshua": "s2", "user5": "s2", "public": "s3"}
    COUNTS = {  # following, followers
        "scoble": (2, 4),
        "dave": (1, 4),
        "joshua": (3, 1),
        "public": (4, 0),
        "user5": (2, 3),
    }

    def test_design_example(self) -> None:
        """
        Every post reaches the home timeline of every follower, on every
        server, within two ping intervals, exactly once; the counts are
        the table's.
        """
        federation = Federation(self)
        servers = {
            name: federation.twitter(
                name,
                [user for user, home_name in self.HOMES.items() if home_name == name],
                interval=self.INTERVAL,
            )
            for name in ("s1", "s2", "s3")
        }

        def server_of(user: str) -> ServerProcess:
            return servers[self.HOMES[user]]

        def name_for(follower: str, followee: str) -> str:
            if self.HOMES[follower] == self.HOMES[followee]:
                return followee
            return acct(followee, server_of(followee))

        for follower, followees in self.GRAPH.items():
            for followee in followees:
                follow(server_of(follower), follower, name_for(follower, followee))

        def counts() -> dict[str, tuple[int, int]]:
            found = {}
            for user in self.HOMES:
                me = call(server_of(user), "GET", "/1.1/account/verify_credentials.json", user)
                found[user] = (me["friends_count"], me["followers_count"])
            return found

        # Follow notices travel asynchronously: wait for the last of them.
        wait_for(lambda: counts() == self.COUNTS, 15, "follower counts as in the table")

        for round_ in range(2):
            for author in self.HOMES:
                text = f"{author} says hello, round {round_}"
                post(server_of(author), author, text)
                for follower, followees in self.GRAPH.items():
                    if author in followees:
                        _, took = wait_for(
                            arrived(server_of(follower), follower, text),
                            2 * self.INTERVAL,
                            f"{text!r} in {follower}'s home timeline",
                        )
        # Exactly once, and nothing from people one does not follow.
        for follower, followees in self.GRAPH.items():
            texts = [status["text"] for status in home(server_of(follower), follower)]
            expected = sorted(
                f"{author} says hello, round {round_}"
                for author in [follower, *followees]
                for round_ in range(2)
            )
            self.assertEqual(sorted(texts), expected, follower)
        # Remote authors are named handle@authority.
        statuses = home(servers["s3"], "public")
        names = {status["user"]["screen_name"] for status in statuses}
        self.assertEqual(
            names,
            {"public"} | {acct(user, server_of(user)) for user in self.GRAPH["public"]},
        )


class LongPollTests(SynchronousTestCase):
    def test_long_poll_delivery(self) -> None:
        """
        With long-poll, a post reaches another server's API in well under a
        second, though the ping interval is 30 seconds.
        """
        federation = Federation(self)
        s1 = federation.twitter("s1", ["alice"], interval=30, long_poll=20)
        s2 = federation.twitter("s2", ["bob"], interval=30, long_poll=20)
        follow(s1, "alice", acct("bob", s2))
        timings = []
        for i in range(5):
            text = f"bob's post {i}"
            post(s2, "bob", text)
            _, took = wait_for(arrived(s1, "alice", text), 1.0, f"{text!r} on s1")
            timings.append(took)
        self.assertEqual(len(home(s1, "alice")), 5)


class CatchUpTests(SynchronousTestCase):
    def test_restart_after_gap(self) -> None:
        """
        A server that was down while 100 posts were made (and 5 deleted) by
        a user it follows gets them all when it comes back: no gaps, no
        duplicates, the deleted ones gone.
        """
        federation = Federation(self)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["bob"])
        follow(s1, "alice", acct("bob", s2))
        post(s2, "bob", "before")
        wait_for(arrived(s1, "alice", "before"), 5, "first post on s1")

        s1.stop()
        ids = [post(s2, "bob", f"post {i}")["id"] for i in range(100)]
        deleted = {3, 17, 50, 51, 99}
        for i in sorted(deleted):
            call(s2, "POST", f"/1.1/statuses/destroy/{ids[i]}.json", "bob")
        s1 = federation.restart("s1", s1)

        expected = {"before"} | {f"post {i}" for i in range(100) if i not in deleted}

        def complete() -> bool:
            texts = [status["text"] for status in home(s1, "alice")]
            return sorted(texts) == sorted(expected)

        wait_for(complete, 20, "the 95 remaining posts on s1")
        texts = [status["text"] for status in home(s1, "alice")]
        self.assertEqual(len(texts), len(set(texts)))
        # In s1's copy bob's numbers run 1..106 with none missing: 101 posts
        # and 5 deletion records, each stored once.
        db = sqlite3.connect(os.path.join(s1.data, "distwit.sqlite3"))
        try:
            seqs = [
                row[0]
                for row in db.execute(
                    "SELECT seq FROM posts JOIN accounts ON accounts.id = author_id"
                    " WHERE handle_key = 'bob' ORDER BY seq"
                )
            ]
            tombstones = db.execute(
                "SELECT count(*) FROM posts JOIN accounts ON accounts.id = author_id"
                " WHERE handle_key = 'bob' AND deleted_at IS NOT NULL"
            ).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(seqs, list(range(1, 107)))
        self.assertEqual(tombstones, 10)  # 5 deleted posts, 5 deletion records
        self.assertNotIn("Traceback", s1.log_text())


class PingRestartTests(SynchronousTestCase):
    def test_ping_killed_and_restarted(self) -> None:
        """
        With two ping servers, killing one stops nothing; when it comes
        back with a new epoch the twitter servers rebuild its table, so
        that killing the other one then stops nothing either.
        """
        federation = Federation(self, pings=2)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["bob"])
        follow(s1, "alice", acct("bob", s2))
        post(s2, "bob", "one")
        wait_for(arrived(s1, "alice", "one"), 5, "first post")

        first, second = federation.pings
        first.kill()
        post(s2, "bob", "two")
        wait_for(arrived(s1, "alice", "two"), 5, "a post with one ping server down")

        first = federation.restart("ping0", first, kill=True)
        epoch_line = "has a new epoch"
        wait_for(
            lambda: epoch_line in s1.log_text() and epoch_line in s2.log_text(),
            5,
            "both twitter servers noticing the new epoch",
        )
        # One more interval and the restarted server knows everything again.
        bob = acct("bob", s2)

        def rebuilt() -> bool:
            code, body = first.request("GET", f"/ping/lookup?acct={bob}")
            return code == 200 and body["last"] >= 2

        wait_for(rebuilt, 3, "the restarted ping server's table")
        second.kill()
        post(s2, "bob", "three")
        wait_for(arrived(s1, "alice", "three"), 5, "a post through the restarted server")
        texts = [status["text"] for status in home(s1, "alice")]
        self.assertEqual(sorted(texts), ["one", "three", "two"])


class HostilePeer:
    """
    A server of someone else's on 127.0.0.1: it publishes a key, signs
    what it sends, and serves whatever feed it likes.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        from distwit.s2s.keys import ServerKey
        from distwit.s2s.metadata import metadata_document

        self.key = ServerKey.generate()
        self.feeds: dict[str, bytes] = {}
        self.received: list[tuple[str, bytes]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, code: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/.well-known/distwit":
                    self.answer(200, json.dumps(peer.metadata).encode())
                elif path == "/.well-known/webfinger":
                    self.answer(200, b'{"subject":"acct:x"}')
                elif path.startswith("/s2s/feed/") and path[len("/s2s/feed/"):] in peer.feeds:
                    self.answer(200, peer.feeds[path[len("/s2s/feed/"):]], "application/rss+xml")
                else:
                    self.answer(404, b'{"error":"no"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                peer.received.append((self.path, self.rfile.read(length)))
                self.answer(200, b'{"ok":true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.authority = self.url.split("//", 1)[1]
        self.metadata = metadata_document(self.url, "twitter", ["twitter"], self.key, {}, "0")
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        case.addCleanup(self.server.server_close)
        case.addCleanup(self.server.shutdown)

    def signed(
        self, url: str, value: Any = None, raw: bytes | None = None, sign: bool = True
    ) -> tuple[dict[str, str], bytes]:
        from distwit.s2s.signatures import sign_request

        body = raw if raw is not None else json.dumps(value).encode()
        headers = {"Content-Type": "application/json"}
        if sign:
            headers.update(
                sign_request(
                    self.key, self.url, "POST", url, body, time.time(), secrets.token_hex(8)
                )
            )
        return headers, body

    @staticmethod
    def send(url: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(self, url: str, value: Any = None, **options: Any) -> tuple[int, Any]:
        return self.send(url, *self.signed(url, value, **options))


class HostilePeerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.federation = Federation(self, pings=1)
        self.s1 = self.federation.twitter("s1", ["alice"])
        self.s2 = self.federation.twitter("s2", ["bob"])
        self.ping = self.federation.pings[0]
        self.peer = HostilePeer(self)

    def exchange(self, reports: dict[str, int], **options: Any) -> tuple[int, Any]:
        return self.peer.post(
            self.ping.url + "/ping/exchange",
            {"server": self.peer.url, "reports": reports, "subscribe": []},
            **options,
        )

    def test_forged_report(self) -> None:
        """
        A server reporting another authority's user is refused with 403 and
        logged; the ping server's table is unchanged.  Its own users'
        reports are taken.
        """
        bob = acct("bob", self.s2)
        code, body = self.exchange({bob: 999})
        self.assertEqual(code, 403, body)
        self.assertIn("another authority", body["error"])
        self.assertIn("refused an exchange", self.ping.log_text())
        code, body = self.ping.request("GET", f"/ping/lookup?acct={bob}")
        self.assertTrue(code == 404 or body["last"] < 999, body)
        code, body = self.exchange({f"eve@{self.peer.authority}": 3})
        self.assertEqual(code, 200, body)

    def test_unsigned_replayed_malformed_exchange(self) -> None:
        """
        Unsigned and replayed exchanges get 401, malformed ones 400 and
        oversized ones 413, each with a message.
        """
        url = self.ping.url + "/ping/exchange"
        value = {"server": self.peer.url, "reports": {f"eve@{self.peer.authority}": 1}}
        code, body = self.peer.post(url, value, sign=False)
        self.assertEqual(code, 401, body)
        headers, raw = self.peer.signed(url, value)
        self.assertEqual(self.peer.send(url, headers, raw)[0], 200)
        code, body = self.peer.send(url, headers, raw)
        self.assertEqual(code, 401, body)
        self.assertIn("replayed", body["error"])
        code, body = self.peer.post(url, raw=b"{not json")
        self.assertEqual(code, 400, body)
        self.assertTrue(body["error"])
        code, body = self.peer.post(url, raw=b" " * (2 * 1024 * 1024))
        self.assertEqual(code, 413, body)
        self.assertTrue(body["error"])

    def test_forged_follow_notice(self) -> None:
        """
        A notice claiming that a user of another server follows alice is
        refused with 403 and logged; alice's follower count stays 0.  A
        notice for the signer's own user is taken; sent twice, the copy is
        refused as a replay.
        """
        alice = acct("alice", self.s1)
        url = self.s1.url + "/s2s/follow"
        forged = {"action": "follow", "follower": acct("bob", self.s2), "followee": alice}
        code, body = self.peer.post(url, forged)
        self.assertEqual(code, 403, body)
        self.assertIn("refused follow notice", self.s1.log_text())
        me = call(self.s1, "GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual(me["followers_count"], 0)

        honest = {"action": "follow", "follower": f"eve@{self.peer.authority}", "followee": alice}
        headers, raw = self.peer.signed(url, honest)
        self.assertEqual(self.peer.send(url, headers, raw), (200, {"ok": True}))
        code, body = self.peer.send(url, headers, raw)
        self.assertEqual(code, 401, body)
        me = call(self.s1, "GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual(me["followers_count"], 1)

    def test_feed_for_wrong_author(self) -> None:
        """
        alice follows eve on the hostile server, which then serves a feed
        of bob's messages as eve's, and for mallory a feed that is not XML:
        both are refused and logged, nothing of them is stored, and honest
        deliveries go on.
        """
        from distwit.federation.range_feed import FeedItem, render_range_feed
        from distwit.model import Account

        for handle in ("eve", "mallory"):
            follow(self.s1, "alice", f"{handle}@{self.peer.authority}")
        follow(self.s1, "alice", acct("bob", self.s2))
        now = int(time.time() * 1000)
        bob = Account(
            id=1, handle="bob", authority="", name="bob", created_at=now, last_seq=2,
            statuses_count=2, followers_count=0, friends_count=0,
        )
        items = [
            FeedItem(seq=n, text=f"not eve's {n}", created_at=now, deleted=False)
            for n in (1, 2)
        ]
        self.peer.feeds["eve.rss"] = render_range_feed(
            bob, self.s2.url.split("//")[1], self.s2.url, items, 1, 2, False
        )
        self.peer.feeds["mallory.rss"] = b"\x00 this is no feed " * 100
        # The hostile server reports its users' new messages, as it may.
        code, body = self.exchange(
            {f"eve@{self.peer.authority}": 2, f"mallory@{self.peer.authority}": 2}
        )
        self.assertEqual(code, 200, body)
        wait_for(
            lambda: f"server {self.peer.authority} fails (fetching" in self.s1.log_text(),
            10,
            "the fetches refused and logged (once for the server)",
        )
        post(self.s2, "bob", "honest")
        wait_for(arrived(self.s1, "alice", "honest"), 5, "bob's post")
        texts = [status["text"] for status in home(self.s1, "alice")]
        self.assertEqual(texts, ["honest"])
        self.assertNotIn("Traceback", self.s1.log_text())
