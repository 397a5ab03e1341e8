"""
The read caches (distwit/core/cache.py, issue 16): bounded, and never
stale: every event that changes a home timeline or a status shows in the
next read, through a real server process (its real pool counting the
writes) on SQLite and on PostgreSQL (``DISTWIT_TEST_POSTGRES``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from distwit.api.area import Timeline
from distwit.api.render import Shape
from distwit.core.cache import LRUCache, ReadCache, RenderCache
from distwit.model import Account, Post
from tests.processes import ServerProcess, run_cli
from tests.support import POSTGRES_SKIP, postgres_url, wipe_postgres

PASSWORD = "correct horse battery"


class LRUCacheTests(SynchronousTestCase):
    def test_bounded(self) -> None:
        """
        At most ``size`` entries; the least recently used goes first.
        """
        cache: LRUCache[int, str] = LRUCache(3)
        for n in range(3):
            cache.put(n, str(n))
        self.assertEqual(cache.get(0), "0")
        cache.put(3, "3")
        self.assertEqual(len(cache), 3)
        self.assertIsNone(cache.get(1))
        self.assertEqual([cache.get(n) for n in (0, 2, 3)], ["0", "2", "3"])
        self.assertEqual((cache.hits, cache.misses), (4, 1))
        empty: LRUCache[int, str] = LRUCache(0)
        empty.put(1, "1")
        self.assertEqual(len(empty), 0)

    def test_render_cache_checks_its_source(self) -> None:
        """
        A rendering is answered only for a source equal to the one it was
        made from.
        """
        cache: RenderCache[int] = RenderCache(size=10)
        cache.put(1, ("post", 1), b"one")
        self.assertEqual(cache.get(1, ("post", 1)), b"one")
        self.assertIsNone(cache.get(1, ("post", 2)))
        self.assertIsNone(cache.get(2, ("post", 1)))


class PageCacheTests(SynchronousTestCase):
    def test_page_kept_with_its_posts(self) -> None:
        """
        A timeline page read again (the same posts) is the same bytes,
        rendered once; a post changed (a count), or another reader's
        marks, make it again, as it would be rendered anew.
        """
        author = Account(7, "alice", "", "Alice", 0, 2, 2, 0, 0)
        posts = [Post(n, author, n, f"post {n}", 0, "web", None, False) for n in (2, 1)]
        statuses: RenderCache[Any] = RenderCache(size=10)
        pages: RenderCache[Any] = RenderCache(size=10)

        def page(posts: list[Post], shape: Shape = Shape()) -> bytes:
            return Timeline(list(posts), shape, statuses, pages).as_json()

        def fresh(posts: list[Post], shape: Shape = Shape()) -> bytes:
            return Timeline(list(posts), shape, RenderCache(size=10)).as_json()

        first = page(posts)
        self.assertEqual(json.loads(first)[0]["text"], "post 2")
        self.assertIs(page(posts), first)
        changed = [replace(posts[0], favorite_count=3), posts[1]]
        self.assertEqual(page(changed), fresh(changed))
        self.assertEqual(json.loads(page(changed))[0]["favorite_count"], 3)
        marked = Shape(favorited=frozenset({1}))
        self.assertEqual(page(changed, marked), fresh(changed, marked))
        self.assertEqual([s["favorited"] for s in json.loads(page(changed, marked))],
                         [False, True])


class ReadCacheTests(SynchronousTestCase):
    def test_kept_until_a_write(self) -> None:
        """
        A read is answered again while the generation stays; a write
        beginning or ending makes the next read go to the store; a read
        during which the generation moved is not kept.
        """
        generation = [0]
        reads: list[Deferred[str]] = []

        def read() -> Deferred[str]:
            d: Deferred[str] = Deferred()
            reads.append(d)
            return d

        cache = ReadCache(lambda: generation[0])

        def ask() -> Deferred[str]:
            return Deferred.fromCoroutine(cache.read("key", read))

        first = ask()
        reads[-1].callback("a")
        self.assertEqual(self.successResultOf(first), "a")
        self.assertEqual(self.successResultOf(ask()), "a")
        self.assertEqual(len(reads), 1)
        generation[0] += 1
        during = ask()
        generation[0] += 1  # a write began while the store was read
        reads[-1].callback("b")
        self.assertEqual(self.successResultOf(during), "b")
        after = ask()
        self.assertEqual(len(reads), 3)
        reads[-1].callback("c")
        self.assertEqual(self.successResultOf(after), "c")
        self.assertEqual(self.successResultOf(ask()), "c")
        self.assertEqual(len(reads), 3)

    def test_nothing_kept_without_a_generation(self) -> None:
        cache = ReadCache(lambda: None)
        calls = []

        async def read() -> int:
            calls.append(1)
            return len(calls)

        for n in (1, 2):
            self.assertEqual(self.successResultOf(Deferred.fromCoroutine(cache.read("k", read))), n)


class EventsShowAtOnceMixin:
    """
    Each event that changes bob's home timeline (or a status in it) shows
    in the very next read, though the same read a moment before came from
    the caches.
    """

    def database_options(self) -> list[str]:
        return []

    def setUp(self) -> None:
        data = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        options = self.database_options()
        for handle in ("alice", "bob", "carol"):
            done = run_cli("adduser", "--create", handle, "--data", data, *options,
                           stdin=PASSWORD + "\n")
            assert done.returncode == 0, done.stderr
        self.server = ServerProcess(data, *options)
        self.addCleanup(self.server.stop)  # type: ignore[attr-defined]

    def call(self, user: str, method: str, path: str, **data: Any) -> Any:
        code, body = self.server.request(method, path, (user, PASSWORD), data or None)
        assert code == 200, (method, path, code, body)
        return body

    def home(self) -> list[dict[str, Any]]:
        """
        bob's home timeline, read twice (the second from the caches) and
        the same both times.
        """
        first = self.call("bob", "GET", "/1.1/statuses/home_timeline.json?count=50")
        second = self.call("bob", "GET", "/1.1/statuses/home_timeline.json?count=50")
        assert first == second, (first, second)
        return second  # type: ignore[no-any-return]

    def texts(self) -> list[str]:
        return [s["text"] for s in self.home()]

    def test_every_event_shows_at_once(self) -> None:
        eq = self.assertEqual  # type: ignore[attr-defined]
        self.call("bob", "POST", "/1.1/friendships/create.json", screen_name="alice")
        one = self.call("alice", "POST", "/1.1/statuses/update.json", status="one")
        eq(self.texts(), ["one"])
        # A post by someone followed, and one's own.
        two = self.call("alice", "POST", "/1.1/statuses/update.json", status="two @carol")
        eq(self.texts(), ["two @carol", "one"])
        self.call("bob", "POST", "/1.1/statuses/update.json", status="mine")
        eq(self.texts(), ["mine", "two @carol", "one"])
        # Favorited by the reader: its mark and its count.
        self.call("bob", "POST", f"/1.1/favorites/create/{one['id']}.json")
        shown = {s["id"]: s for s in self.home()}
        eq((shown[one["id"]]["favorited"], shown[one["id"]]["favorite_count"]), (True, 1))
        self.call("bob", "POST", f"/1.1/favorites/destroy/{one['id']}.json")
        shown = {s["id"]: s for s in self.home()}
        eq((shown[one["id"]]["favorited"], shown[one["id"]]["favorite_count"]), (False, 0))
        # Retweeted by someone else: the count; by the reader: the mark.
        self.call("carol", "POST", f"/1.1/statuses/retweet/{two['id']}.json")
        shown = {s["id"]: s for s in self.home()}
        eq(shown[two["id"]]["retweet_count"], 1)
        self.call("bob", "POST", f"/1.1/statuses/retweet/{one['id']}.json")
        home = self.home()
        eq(home[0]["retweeted_status"]["id"], one["id"])
        eq((home[0]["retweeted"], home[0]["retweeted_status"]["retweeted"]), (True, True))
        shown = {s["id"]: s for s in home}
        eq((shown[one["id"]]["retweeted"], shown[one["id"]]["retweet_count"]), (True, 1))
        eq(shown[two["id"]]["retweeted"], False)
        self.call("bob", "POST", f"/1.1/statuses/unretweet/{one['id']}.json")
        eq(self.texts(), ["mine", "two @carol", "one"])
        # The author's profile, shown in each status.
        self.call("alice", "POST", "/1.1/account/update_profile.json", name="Alice A.")
        eq({s["user"]["name"] for s in self.home() if s["user"]["screen_name"] == "alice"},
           {"Alice A."})
        # A delete.
        self.call("alice", "POST", f"/1.1/statuses/destroy/{one['id']}.json")
        eq(self.texts(), ["mine", "two @carol"])
        # A mute, a block, an unfollow, and their undoing.
        self.call("bob", "POST", "/1.1/mutes/users/create.json", screen_name="alice")
        eq(self.texts(), ["mine"])
        self.call("bob", "POST", "/1.1/mutes/users/destroy.json", screen_name="alice")
        eq(self.texts(), ["mine", "two @carol"])
        self.call("bob", "POST", "/1.1/blocks/create.json", screen_name="alice")
        eq(self.texts(), ["mine"])
        self.call("bob", "POST", "/1.1/blocks/destroy.json", screen_name="alice")
        self.call("bob", "POST", "/1.1/friendships/create.json", screen_name="alice")
        eq(self.texts(), ["mine", "two @carol"])
        self.call("bob", "POST", "/1.1/friendships/destroy.json", screen_name="alice")
        eq(self.texts(), ["mine"])
        self.call("bob", "POST", "/1.1/friendships/create.json", screen_name="alice")
        eq(self.texts(), ["mine", "two @carol"])
        # Paging and the other shapes are their own reads.
        trimmed = self.call("bob", "GET", "/1.1/statuses/home_timeline.json?trim_user=1")
        eq(trimmed[0]["user"], {"id": trimmed[0]["user"]["id"],
                                "id_str": trimmed[0]["user"]["id_str"]})
        since = self.call("bob", "GET",
                          f"/1.1/statuses/home_timeline.json?since_id={two['id']}")
        eq([s["text"] for s in since], ["mine"])


class SQLiteEventsTests(EventsShowAtOnceMixin, TestCase):
    pass


class PostgresEventsTests(EventsShowAtOnceMixin, TestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def database_options(self) -> list[str]:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return ["--database", url]


class ConditionalFeedsTests(TestCase):
    """
    Range feeds and person feeds say how long a cache may keep them, carry
    an ETag and Last-Modified, and answer 304 to a conditional request;
    a change (a delete) changes the ETag.
    """

    def setUp(self) -> None:
        data = os.path.abspath(self.mktemp())
        done = run_cli("adduser", "--create", "alice", "--data", data, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        self.server = ServerProcess(data)
        self.addCleanup(self.server.stop)

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.server.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def test_range_feeds(self) -> None:
        auth = ("alice", PASSWORD)
        code, one = self.server.request("POST", "/1.1/statuses/update.json", auth,
                                        {"status": "one"})
        self.assertEqual(code, 200)
        self.server.request("POST", "/1.1/statuses/update.json", auth, {"status": "two"})
        code, headers, body = self.get("/s2s/feed/alice.rss?from=1&to=1")
        self.assertEqual(code, 200)
        self.assertIn(b"one", body)
        self.assertEqual(headers["Cache-Control"], "public, max-age=1")
        etag, modified = headers["ETag"], headers["Last-Modified"]
        code, _, body = self.get("/s2s/feed/alice.rss?from=1&to=1", **{"If-None-Match": etag})
        self.assertEqual((code, body), (304, b""))
        code, _, body = self.get("/s2s/feed/alice.rss?from=1&to=1",
                                 **{"If-Modified-Since": modified})
        self.assertEqual((code, body), (304, b""))
        # Open ranges grow with the next post: revalidated each time.
        for path in ("/s2s/feed/alice.rss?from=1", "/s2s/feed/alice.rss?from=2&to=9"):
            code, headers, _ = self.get(path)
            self.assertEqual((code, headers["Cache-Control"]), (200, "public, no-cache"))
        # A delete changes the range: a new ETag, the whole answer.
        code, _ = self.server.request("POST", f"/1.1/statuses/destroy/{one['id']}.json", auth)
        self.assertEqual(code, 200)
        code, headers, body = self.get("/s2s/feed/alice.rss?from=1&to=1",
                                       **{"If-None-Match": etag})
        self.assertEqual(code, 200)
        self.assertNotEqual(headers["ETag"], etag)
        self.assertNotIn(b"<description>one", body)

    def test_person_feeds(self) -> None:
        auth = ("alice", PASSWORD)
        self.server.request("POST", "/1.1/statuses/update.json", auth, {"status": "hello"})
        for path in ("/alice.rss", "/alice.atom"):
            code, headers, body = self.get(path)
            self.assertEqual(code, 200)
            self.assertIn(b"hello", body)
            self.assertEqual(headers["Cache-Control"], "public, max-age=5")
            code, _, again = self.get(path, **{"If-None-Match": headers["ETag"]})
            self.assertEqual((code, again), (304, b""))
        etag = self.get("/alice.rss")[1]["ETag"]
        self.server.request("POST", "/1.1/statuses/update.json", auth, {"status": "more"})
        code, headers, body = self.get("/alice.rss", **{"If-None-Match": etag})
        self.assertEqual(code, 200)
        self.assertIn(b"more", body)

