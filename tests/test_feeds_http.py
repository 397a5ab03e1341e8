"""
Feeds over HTTP as feed readers and the clients of 2008-2013 use them
(issue 15): ``ETag``/``Last-Modified`` and 304, authors on every item,
titles shown as typed, titles naming the timeline, and users named by a
numeric ``id``.  Parsed with feedparser, which many readers are built on.
"""

from __future__ import annotations

import html
from email.utils import format_datetime, parsedate_to_datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import feedparser
from treq.testing import StubTreq

from distwit.api.person_feeds import PersonFeeds
from tests.test_api import BASE, PASSWORDS, APITestCase

#: A post a reader might render as HTML.
MARKUP = '<b>bold</b> & <i>co</i> &amp; 1 < 2 "quoted"'


class FeedTestCase(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        # The root serves person feeds only with federation on: here, alone.
        self.person_feeds = StubTreq(PersonFeeds(self.service.microblog, BASE).resource())

    def fetch(self, path: str, user: str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS[user])
        stub = self.person_feeds if path.count("/") == 1 else self.stub
        d = stub.request("GET", BASE + path, **kwargs)
        stub.flush()
        response = self.successResultOf(d)
        body_d = response.content()
        stub.flush()
        return response.code, self.successResultOf(body_d), response

    def header(self, response: Any, name: str) -> str:
        values = response.headers.getRawHeaders(name)
        self.assertIsNotNone(values, name)
        return str(values[0])

    def assertShownAsTyped(self, detail: Any, value: str, expected: str) -> None:
        """
        A feedparser title shows ``expected``: plain text equal to it, or
        HTML (as feedparser guesses an RSS title is) with no tag, whose
        text is it.
        """
        if detail.type == "text/plain":
            self.assertEqual(value, expected)
        else:
            self.assertEqual(detail.type, "text/html")
            self.assertNotIn("<", value)
            self.assertEqual(html.unescape(value), expected)


class ConditionalTests(FeedTestCase):
    PATHS = (
        ("/alice.rss", None),
        ("/alice.atom", None),
        ("/1.1/statuses/home_timeline.rss", "alice"),
        ("/1.1/statuses/user_timeline.atom?screen_name=alice", None),
        ("/statuses/public_timeline.rss", None),
    )

    def test_etag(self) -> None:
        """
        Each feed has an ETag; asked again with it, 304 and no body; after
        a new post, the feed again with another ETag.
        """
        self.post("alice", "first")
        for path, user in self.PATHS:
            with self.subTest(path=path):
                code, body, response = self.fetch(path, user)
                self.assertEqual(code, 200, body)
                etag = self.header(response, "etag")
                code, body, response = self.fetch(path, user, {"If-None-Match": etag})
                self.assertEqual((code, body), (304, b""))
                self.assertEqual(self.header(response, "etag"), etag)
                code, _, _ = self.fetch(path, user, {"If-None-Match": f'"other", {etag}'})
                self.assertEqual(code, 304)
                code, _, _ = self.fetch(path, user, {"If-None-Match": '"other"'})
                self.assertEqual(code, 200)
        etags = {path: self.header(self.fetch(path, user)[2], "etag") for path, user in self.PATHS}
        self.clock.advance(5)
        self.post("alice", "second")
        for path, user in self.PATHS:
            with self.subTest(path=path, after="new post"):
                code, body, response = self.fetch(path, user, {"If-None-Match": etags[path]})
                self.assertEqual(code, 200)
                self.assertIn(b"second", body)
                self.assertNotEqual(self.header(response, "etag"), etags[path])

    def test_last_modified(self) -> None:
        """
        Last-Modified is the newest post's time; If-Modified-Since at or
        after it is 304, before it 200; a date that is none is ignored;
        If-None-Match, when sent, decides alone.
        """
        self.post("alice", "first")
        self.clock.advance(60)
        self.post("alice", "second")
        for path, user in self.PATHS:
            with self.subTest(path=path):
                code, _, response = self.fetch(path, user)
                modified = self.header(response, "last-modified")
                when = parsedate_to_datetime(modified)
                self.assertEqual(int(when.timestamp()), int(self.clock.seconds()))
                for since, expected in (
                    (modified, 304),
                    (format_datetime(when + timedelta(days=1), usegmt=True), 304),
                    (format_datetime(when - timedelta(seconds=1), usegmt=True), 200),
                    ("not a date", 200),
                ):
                    code, _, _ = self.fetch(path, user, {"If-Modified-Since": since})
                    self.assertEqual(code, expected, since)
                code, _, _ = self.fetch(
                    path, user, {"If-Modified-Since": modified, "If-None-Match": '"old"'}
                )
                self.assertEqual(code, 200)

    def test_empty_person_feed(self) -> None:
        """
        A person with no posts: the feed is dated when they joined, and
        still answers 304.
        """
        code, _, response = self.fetch("/bob.rss")
        self.assertEqual(code, 200)
        modified = self.header(response, "last-modified")
        self.assertEqual(self.fetch("/bob.rss", headers={"If-Modified-Since": modified})[0], 304)


class EntryTests(FeedTestCase):
    def test_rss_items_have_authors(self) -> None:
        """
        Every RSS item names its author (``dc:creator``, which feedparser
        reads as the author), in a person feed and a timeline of several
        authors; Atom entries too.
        """
        self.call("POST", "/1.1/friendships/create.json", "alice", data={"screen_name": "bob"})
        self.post("bob", "from bob")
        self.clock.advance(1)
        self.post("alice", "from alice")
        for path in ("/alice.rss", "/alice.atom"):
            parsed = feedparser.parse(self.fetch(path)[1])
            self.assertFalse(parsed.bozo, parsed.get("bozo_exception"))
            self.assertEqual([e.author for e in parsed.entries], ["alice (@alice)"]
                             if path.endswith(".rss") else ["alice"])
        for path in ("/1.1/statuses/home_timeline.rss", "/1.1/statuses/home_timeline.atom"):
            parsed = feedparser.parse(self.fetch(path, "alice")[1])
            self.assertFalse(parsed.bozo, parsed.get("bozo_exception"))
            authors = [e.author for e in parsed.entries]
            if path.endswith(".rss"):
                self.assertEqual(authors, ["alice (@alice)", "bob (@bob)"])
            else:
                self.assertEqual(authors, ["alice", "bob"])
                self.assertEqual(parsed.entries[1].author_detail.href, BASE + "/bob")

    def test_titles_shown_as_typed(self) -> None:
        """
        A post with markup and entities: feedparser's title shows it as
        typed in both formats and every feed (never a ``<b>`` a reader
        renders bold); plain text stays plain.
        """
        self.post("alice", MARKUP)
        self.clock.advance(1)
        self.post("alice", "I <3 feeds & rabbits")
        for path in ("/alice.rss", "/alice.atom", "/1.1/statuses/user_timeline.rss?id=alice",
                     "/1.1/statuses/user_timeline.atom?id=alice"):
            parsed = feedparser.parse(self.fetch(path)[1])
            self.assertFalse(parsed.bozo, parsed.get("bozo_exception"))
            with self.subTest(path=path):
                plain, markup = parsed.entries
                self.assertEqual(plain.title_detail.type, "text/plain")
                self.assertEqual(plain.title, "alice: I <3 feeds & rabbits")
                self.assertShownAsTyped(markup.title_detail, markup.title, "alice: " + MARKUP)

    def test_feed_title_with_markup(self) -> None:
        """
        A display name with markup titles the person feed as typed.
        """
        self.call("POST", "/1.1/account/update_profile.json", "alice",
                  data={"name": "<b>Al</b> &amp;"})
        for path in ("/alice.rss", "/alice.atom"):
            parsed = feedparser.parse(self.fetch(path)[1])
            self.assertShownAsTyped(parsed.feed.title_detail, parsed.feed.title,
                                    "<b>Al</b> &amp; (@alice)")


class TimelineTitleTests(FeedTestCase):
    def test_titles(self) -> None:
        """
        Each timeline feed is titled for what it is and whose.
        """
        self.post("bob", "hello")
        bob = self.successResultOf(self.service.microblog.user("bob"))
        for path, user, title in (
            ("/1.1/statuses/home_timeline.rss", "alice", "alice's home timeline"),
            ("/1.1/statuses/mentions_timeline.atom", "alice", "Mentions of alice"),
            ("/1.1/statuses/user_timeline.rss?screen_name=bob", "alice", "bob's posts"),
            (f"/statuses/user_timeline/{bob.id}.rss", None, "bob's posts"),
            ("/1.1/statuses/user_timeline.rss", "carol", "carol's posts"),
            ("/statuses/public_timeline.atom", None, "Public timeline of localhost:8080"),
        ):
            with self.subTest(path=path):
                code, body, _ = self.fetch(path, user)
                self.assertEqual(code, 200, body)
                self.assertEqual(feedparser.parse(body).feed.title, title)


class NumericIdTests(FeedTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.post("bob", "bob's post")
        self.bob = self.successResultOf(self.service.microblog.user("bob"))

    def test_user_timeline_by_id(self) -> None:
        """
        ``statuses/user_timeline/ID.rss`` and ``?id=ID``, as Twitter took
        them: the user of that id.
        """
        for path in (f"/statuses/user_timeline/{self.bob.id}.rss",
                     f"/1.1/statuses/user_timeline.rss?id={self.bob.id}"):
            code, body, _ = self.fetch(path)
            self.assertEqual(code, 200, body)
            self.assertEqual([e.title for e in feedparser.parse(body).entries],
                             ["bob: bob's post"])
        code, body, _ = self.call("GET", f"/1.1/statuses/user_timeline/{self.bob.id}.json")
        self.assertEqual((code, [s["text"] for s in body]), (200, ["bob's post"]))

    def test_users_show_by_id(self) -> None:
        for path in (f"/1.1/users/show.json?id={self.bob.id}",
                     f"/1.1/users/show/{self.bob.id}.json", "/1.1/users/show/bob.json"):
            code, body, _ = self.call("GET", path)
            self.assertEqual((code, body.get("screen_name")), (200, "bob"), path)

    def test_screen_name_first(self) -> None:
        """
        A handle may be all digits: ``id`` names the user of that handle
        when there is one, the user of that id only when there is none;
        ``user_id`` always names by id.
        """
        handle = str(self.bob.id)
        self.successResultOf(self.service.microblog.create_user(handle, "digits-password"))
        code, body, _ = self.call("GET", "/1.1/users/show.json", params={"id": handle})
        self.assertEqual((code, body["screen_name"]), (200, handle))
        code, body, _ = self.call("GET", "/1.1/users/show.json", params={"user_id": handle})
        self.assertEqual((code, body["screen_name"]), (200, "bob"))

    def test_unknown_ids(self) -> None:
        """
        An id nobody has, or one out of range: not found, never a 500.
        """
        for value in ("999999", "99999999999999999999999999", "0"):
            code, body, _ = self.call("GET", "/1.1/users/show.json", params={"id": value})
            self.assertEqual((code, body["errors"][0]["code"]), (404, 50), value)
            code, body, _ = self.call("GET", "/1.1/statuses/user_timeline.json?"
                                      + urlencode({"id": value}))
            self.assertEqual(code, 404, value)
