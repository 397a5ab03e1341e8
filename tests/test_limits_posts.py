"""
Every field of a post is bounded, so that no post can silence its author
(issue 12): the source is set by the server and cut to its limit, a
tombstone keeps nothing but its number, and a page of an author's maximal
posts always fits the fetch limit.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from distwit.federation.range_feed import (
    MAX_FEED_BYTES,
    MAX_ITEMS_PER_FEED,
    parse_range_feed,
    render_range_feed,
)
from distwit.federation.resource import feed_item
from distwit.model import MAX_SOURCE_LENGTH, Account, Post

from tests.test_api import BASE, PASSWORDS, APITestCase

AUTHORITY = "s1.test:8080"


class SourceTests(APITestCase):
    def account(self, handle: str) -> Account:
        return self.successResultOf(self.service.microblog.user(handle))  # type: ignore[no-any-return]

    def stored(self, body: Any) -> Post:
        return self.successResultOf(self.service.microblog.status(body["id"]))  # type: ignore[no-any-return]

    def test_client_source_ignored(self) -> None:
        """
        A client's ``source`` parameter is ignored, like Twitter's: a post
        made with HTTP Basic is from "web", even with a 10 MB source sent.
        """
        body = self.post("alice", "hello", source="s" * 10_000_000)
        self.assertEqual(body["source"], "web")
        self.assertEqual(self.stored(body).source, "web")

    def test_source_capped_in_core(self) -> None:
        """
        Whatever a door passes as source, the post stores at most
        MAX_SOURCE_LENGTH characters of it, on one line; the API shows it
        escaped (a source is HTML to clients).
        """
        alice = self.account("alice")
        post = self.successResultOf(
            self.service.microblog.post(alice, "hi", source="<b>\x00\n" + "s" * 10_000_000)
        )
        self.assertEqual(post.source, ("<b>" + "s" * 10_000_000)[:MAX_SOURCE_LENGTH])
        code, body, _ = self.call("GET", f"/1.1/statuses/show/{post.id}.json")
        self.assertEqual(code, 200)
        self.assertTrue(body["source"].startswith("&lt;b&gt;sss"))

    def test_tombstone_keeps_only_its_number(self) -> None:
        """
        A deleted post keeps no text, no source and no reply, and travels
        in the range feed as its number alone.
        """
        alice = self.account("alice")
        first = self.post("bob", "question?")
        post = self.successResultOf(
            self.service.microblog.post(alice, "secret", source="S" * 200,
                                        in_reply_to_status_id=first["id"])
        )
        self.successResultOf(self.service.microblog.delete(alice, post.id))
        alice = self.account("alice")
        messages = self.successResultOf(self.service.microblog.messages(alice, 1, alice.last_seq))
        tombstone, record = messages
        for message in messages:
            self.assertTrue(message.deleted)
            self.assertEqual((message.text, message.source, message.in_reply_to_status_id),
                             ("", "", None))
        self.assertEqual(record.deletes_seq, tombstone.seq)
        data = render_range_feed(
            alice, AUTHORITY, "http://s1.test:8080",
            [feed_item(message, AUTHORITY) for message in messages], 1, alice.last_seq, False,
        )
        self.assertNotIn(b"SSS", data)
        self.assertNotIn(b"secret", data)
        self.assertNotIn(b"inReplyTo", data)

    def test_maximal_posts_still_delivered(self) -> None:
        """
        An author whose every post is maximal (140 four-byte characters, a
        maximal source) is still delivered: a full page of her range feed
        fits under MAX_FEED_BYTES and reads back.
        """
        alice = self.account("alice")
        source = "\U0001f600" * 10_000
        for i in range(MAX_ITEMS_PER_FEED):
            text = chr(0x1F000 + i) + "\U0001f600" * 139
            self.successResultOf(self.service.microblog.post(alice, text, source=source))
        alice = self.account("alice")
        messages = self.successResultOf(
            self.service.microblog.messages(alice, 1, MAX_ITEMS_PER_FEED)
        )
        data = render_range_feed(
            alice, AUTHORITY, "http://s1.test:8080",
            [feed_item(message, AUTHORITY) for message in messages],
            1, MAX_ITEMS_PER_FEED, False,
        )
        self.assertLess(len(data), MAX_FEED_BYTES)
        page = parse_range_feed(data, "alice@" + AUTHORITY, 1, MAX_ITEMS_PER_FEED)
        self.assertEqual(len(page.items), MAX_ITEMS_PER_FEED)
        self.assertEqual(page.items[0].source, "\U0001f600" * MAX_SOURCE_LENGTH)


class XMLSafeTextTests(APITestCase):
    """
    Text XML cannot carry never makes a feed or an XML answer fail or
    come out malformed.
    """

    def get(self, path: str, user: str | None = None) -> tuple[int, bytes]:
        from treq.testing import StubTreq

        from distwit.api.person_feeds import PersonFeeds

        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS[user])
        stub = self.stub
        if not path.startswith("/1.1/"):
            stub = StubTreq(PersonFeeds(self.service.microblog, BASE).resource())
        d = stub.get(BASE + path, **kwargs)
        stub.flush()
        response = self.successResultOf(d)
        body_d = response.content()
        stub.flush()
        return response.code, self.successResultOf(body_d)

    def test_profile_fields_cleaned(self) -> None:
        """
        Control characters in a display name or another profile field are
        removed when it is set (and a name on sign-up too).
        """
        alice = self.successResultOf(self.service.microblog.user("alice"))
        alice = self.successResultOf(self.service.microblog.update_profile(
            alice, name="Al\x07i\x00ce\n", description="a\x0bb", location="\x1bx", url="u\x7f",
        ))
        self.assertEqual((alice.name, alice.description, alice.location, alice.url),
                         ("Alice", "ab", "x", "http://u"))
        dave = self.successResultOf(
            self.service.microblog.create_user("dave", "dave-password", "D\x00ave\x08")
        )
        self.assertEqual(dave.name, "Dave")

    def test_feeds_with_a_control_character_in_a_name(self) -> None:
        """
        A name holding a control character (stored before names were
        cleaned) no longer makes /NAME.rss, /NAME.atom, the public Atom
        timeline or a follower's Atom home timeline answer 500: each is
        well-formed XML.
        """
        alice = self.successResultOf(self.service.microblog.user("alice"))
        self.successResultOf(self.store.update_profile(alice.id, "Al\x07ice\x00", "", "", ""))
        bob = self.successResultOf(self.service.microblog.user("bob"))
        self.successResultOf(self.service.microblog.follow(bob, alice))
        self.post("alice", "hello")
        for path, user in (
            ("/alice.rss", None), ("/alice.atom", None),
            ("/1.1/statuses/public_timeline.atom", None),
            ("/1.1/statuses/public_timeline.rss", None),
            ("/1.1/statuses/home_timeline.atom", "bob"),
        ):
            code, body = self.get(path, user)
            self.assertEqual(code, 200, (path, body[:300]))
            ElementTree.fromstring(body)
            if not path.endswith("timeline.rss"):  # RSS items name no author
                self.assertIn("Al\ufffdice".encode(), body, path)

    def test_lookup_map_xml(self) -> None:
        """
        statuses/lookup.xml?map=true is well-formed XML: each id asked for
        is an element naming it, with the status or empty.
        """
        body = self.post("alice", "hello")
        code, data = self.get(f"/1.1/statuses/lookup.xml?map=true&id={body['id']},5")
        self.assertEqual(code, 200, data)
        root = ElementTree.fromstring(data)
        items = {item.get("key"): item for item in root.iter("item")}
        self.assertEqual(items[str(body["id"])].findtext("status/text")
                         or items[str(body["id"])].findtext("text"), "hello")
        self.assertEqual(len(items["5"]), 0)

    def test_rate_limit_status_xml(self) -> None:
        """
        rate_limit_status.xml is well-formed XML naming each endpoint.
        """
        code, data = self.get("/1.1/application/rate_limit_status.xml", "alice")
        self.assertEqual(code, 200, data)
        root = ElementTree.fromstring(data)
        keys = {item.get("key") for item in root.iter("item")}
        self.assertIn("/statuses/home_timeline", keys)
