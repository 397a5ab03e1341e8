"""
Range feeds (server to server) and person feeds (for feed readers):
what is rendered, what is read back, and what is refused.
"""

from __future__ import annotations

import calendar
import html
import os
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from typing import Any
from xml.sax.saxutils import quoteattr

import feedparser
from twisted.trial.unittest import SynchronousTestCase

from distwit.api.feeds import render_person_atom, render_person_rss
from distwit.federation.range_feed import (
    DW_NS,
    MAX_FEED_BYTES,
    MAX_ITEMS_PER_FEED,
    FeedError,
    FeedItem,
    RangePage,
    parse_range_feed,
    render_range_feed,
)
from distwit.model import POST, PROFILE, RETWEET, Account, Post
from distwit.s2s.client import DEFAULT_MAX_SIZE

AUTHORITY = "s1.test:8080"
PUBLIC_URL = "http://s1.test:8080"
ACCT = "alice@s1.test:8080"
#: 2023-11-14 22:13:20 UTC, in milliseconds.
T0 = 1_700_000_000_000

ALICE = Account(
    id=1,
    handle="Alice",
    authority="",
    name="Alice Liddell",
    created_at=T0 - 86_400_000,
    last_seq=70,
    statuses_count=70,
    followers_count=0,
    friends_count=0,
)


def item(seq: int, text: str | None = None, **changes: Any) -> FeedItem:
    """
    Message ``seq`` of alice, posted ``seq`` seconds after T0, with
    ``changes``.
    """
    base = FeedItem(
        seq=seq,
        text=f"message {seq}" if text is None else text,
        created_at=T0 + seq * 1000,
        deleted=False,
        in_reply_to=None,
        source="web",
        deletes=None,
    )
    return replace(base, **changes)


def round_trip(
    items: list[FeedItem], first: int = 61, last: int = 63, more: bool = False
) -> RangePage:
    data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, first, last, more)
    return parse_range_feed(data, ACCT, first, last)


# Hand-made feeds, for what a well-behaved server never sends.


def hand_item(
    seq: str = "1",
    acct: str = ACCT,
    text: str | None = "hello",
    deleted: str = "false",
    pub_date: str | None = "Tue, 14 Nov 2023 22:13:21 +0000",
    extra: str = "",
) -> str:
    parts = ["<item>", f"<title>#{html.escape(seq)}</title>"]
    if pub_date is not None:
        parts.append(f"<pubDate>{pub_date}</pubDate>")
    parts.append(f"<dw:acct>{html.escape(acct)}</dw:acct>")
    parts.append(f"<dw:seq>{html.escape(seq)}</dw:seq>")
    parts.append(f"<dw:deleted>{html.escape(deleted)}</dw:deleted>")
    if text is not None:
        parts.append(f"<dw:text value={quoteattr(text)}/>")
    parts.append(extra)
    parts.append("</item>")
    return "".join(parts)


def hand_feed(
    items: list[str],
    acct: str = ACCT,
    first: str = "1",
    last: str = "3",
    more: str = "false",
    namespaces: str = f'xmlns:dw="{DW_NS}"',
    channel_extra: str = "",
) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<rss version="2.0" {namespaces}><channel>'
        "<title>Alice</title><link>http://s1.test:8080/alice</link>"
        "<description>range</description>"
        f"<dw:acct>{html.escape(acct)}</dw:acct>"
        f"<dw:first>{first}</dw:first><dw:last>{last}</dw:last><dw:more>{more}</dw:more>"
        f"{channel_extra}{''.join(items)}</channel></rss>"
    ).encode("utf-8")


class RangeFeedRoundTripTests(SynchronousTestCase):
    def test_normal_items(self) -> None:
        """
        Three messages rendered by one server are read by another as the
        same messages, with the range and author the feed was asked for.
        """
        items = [item(61), item(62, source="tweetbot"), item(63)]
        page = round_trip(items)
        self.assertEqual(page, RangePage(ACCT, 61, 63, False, items))

    def test_reply(self) -> None:
        """
        A reply names the message it answers as (acct, number), to a user
        of another server or of the same one.
        """
        items = [
            item(61, "@bob yes", in_reply_to=("bob@s2.test:8080", 12)),
            item(62, "and me", in_reply_to=(ACCT, 61)),
        ]
        self.assertEqual(round_trip(items, 61, 62).items, items)

    def test_tombstone(self) -> None:
        """
        A deleted message travels as a tombstone with its number alone: no
        text, no source, no reply; a deletion record names the message it
        deleted.  Neither shows what the message held in the feed.
        """
        items = [
            item(61, "secret", deleted=True, source="x" * 5000,
                 in_reply_to=("bob@s2.test", 3)),
            item(62),
            item(63, deleted=True, deletes=61),
        ]
        data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 63, False)
        self.assertNotIn(b"secret", data)
        self.assertNotIn(b"xxx", data)
        self.assertNotIn(b"bob@s2.test", data)
        page = parse_range_feed(data, ACCT, 61, 63)
        self.assertEqual(
            page.items,
            [item(61, "", deleted=True, source=""), item(62),
             item(63, "", deleted=True, deletes=61, source="")],
        )

    def test_unicode(self) -> None:
        """
        Emoji (with skin tones and joiners), CJK, right-to-left text and
        combining marks come back exactly, code point for code point (a
        decomposed é stays decomposed: the feed does not normalise).
        """
        texts = [
            "hello 😀👩🏽‍💻🇯🇵",
            "漢字かな交じり文 한국어",
            "שלום עולם مرحبا",
            "cafe\u0301 \u1e9b\u0323 Z\u0351\u0362",
            "\u00e9t\u00e9 \U0001f600" * 10,
        ]
        items = [item(61 + i, text) for i, text in enumerate(texts)]
        page = round_trip(items, 61, 65)
        self.assertEqual([i.text for i in page.items], texts)

    def test_html_like_text(self) -> None:
        """
        Text that looks like HTML or XML comes back exactly as plain text:
        no tag is sanitised away, no entity decoded or added.  The
        description carries it escaped, as text, never as markup.
        """
        texts = [
            "<b>x</b> & y",
            "<script>alert(1)</script>hi",
            "<img src=x onerror=alert(1)>",
            "&amp; &lt;p&gt; &#x41; &nbsp;",
            "a < b > c \"q\" 'a'",
            "]]> <![CDATA[ x ]]>",
            "<a href='/relative'>link</a> http://x.test/?a=1&b=2",
        ]
        items = [item(61 + i, text) for i, text in enumerate(texts)]
        data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 67, False)
        self.assertIn(b"<description>&lt;b&gt;x&lt;/b&gt; &amp; y</description>", data)
        page = parse_range_feed(data, ACCT, 61, 67)
        self.assertEqual([i.text for i in page.items], texts)

    def test_text_feedparser_would_change(self) -> None:
        """
        Text that feedparser alters in element text (mojibake it "repairs",
        C1 controls it maps to Windows-1252, whitespace it strips, line
        ends) still comes back exactly, because it is read from dw:text.
        """
        texts = ["Ã©tÃ©", "a\x85b\x80c\x9f", "line 1\n\nline 2\r\nline 3\rend\tx", "  spaced  "]
        items = [item(61 + i, text) for i, text in enumerate(texts)]
        page = round_trip(items, 61, 64)
        self.assertEqual([i.text for i in page.items], texts)

    def test_characters_xml_cannot_carry(self) -> None:
        """
        A stored text with a control character XML cannot carry does not
        make the author's range unservable: that character arrives as
        U+FFFD, the rest intact.
        """
        page = round_trip([item(61, "bell\x07 and \x1b[0m")], 61, 61)
        self.assertEqual(page.items[0].text, "bell\ufffd and \ufffd[0m")

    def test_names_xml_cannot_carry(self) -> None:
        """
        A display name with a character XML cannot carry (or one that
        looks like markup) does not make the author's range unservable.
        """
        from dataclasses import replace

        odd = replace(ALICE, name="Alice\x07 </title><b>&")
        data = render_range_feed(odd, AUTHORITY, PUBLIC_URL, [item(61)], 61, 61, False)
        page = parse_range_feed(data, ACCT, 61, 61)
        self.assertEqual([i.seq for i in page.items], [61])
        self.assertIn(b"<title>Alice\xef\xbf\xbd &lt;/title&gt;&lt;b&gt;&amp; (@", data)

    def test_source(self) -> None:
        """
        The client a message came from (Twitter-style, often an HTML link)
        comes back exactly.
        """
        source = '<a href="http://client.test/" rel="nofollow">Client & Co</a>'
        self.assertEqual(round_trip([item(61, source=source)], 61, 61).items[0].source, source)

    def test_created_at_to_the_second(self) -> None:
        """
        The time travels as the RSS pubDate, so to the second.
        """
        page = round_trip([item(61, created_at=T0 + 1999)], 61, 61)
        self.assertEqual(page.items[0].created_at, T0 + 1000)

    def test_more(self) -> None:
        """
        dw:more says whether the range asked for was cut at the cap and the
        rest must be asked for again.
        """
        self.assertTrue(round_trip([item(61)], 61, 61, more=True).more)
        self.assertFalse(round_trip([item(61)], 61, 61, more=False).more)

    def test_full_page(self) -> None:
        """
        A page of exactly MAX_ITEMS_PER_FEED messages is read whole.
        """
        items = [item(seq) for seq in range(1, MAX_ITEMS_PER_FEED + 1)]
        page = round_trip(items, 1, MAX_ITEMS_PER_FEED, more=True)
        self.assertEqual(page.items, items)
        self.assertTrue(page.more)

    def test_empty_range(self) -> None:
        """
        When the author has nothing from the first number asked on, the
        range served is empty (last = first - 1) and so is the page.
        """
        data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, [], 71, 70, False)
        self.assertEqual(parse_range_feed(data, ACCT, 71, 80), RangePage(ACCT, 71, 70, False, []))

    def test_gap(self) -> None:
        """
        A number in the range that the author's server does not hold is
        simply absent; the page still says which range it covered.
        """
        page = round_trip([item(61), item(63)], 61, 63)
        self.assertEqual([i.seq for i in page.items], [61, 63])
        self.assertEqual((page.first, page.last), (61, 63))

    def test_shape(self) -> None:
        """
        The document is RSS 2.0 with the dw namespace: the channel names
        the author and the range; each item has a permalink guid and link,
        a pubDate, the text as description and its number, author and
        deleted flag in dw elements; the reply target as attributes.
        """
        items = [item(61, "hi", in_reply_to=("bob@s2.test:8080", 12))]
        data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 63, True)
        root = ElementTree.fromstring(data)
        self.assertEqual((root.tag, root.get("version")), ("rss", "2.0"))
        channel = root.find("channel")
        assert channel is not None
        dw = f"{{{DW_NS}}}"
        self.assertEqual(channel.findtext(dw + "acct"), ACCT)
        self.assertEqual(channel.findtext(dw + "first"), "61")
        self.assertEqual(channel.findtext(dw + "last"), "63")
        self.assertEqual(channel.findtext(dw + "more"), "true")
        self.assertEqual(channel.findtext("link"), "http://s1.test:8080/Alice")
        (element,) = channel.findall("item")
        guid = element.find("guid")
        assert guid is not None
        self.assertEqual(guid.text, "http://s1.test:8080/Alice/status/61")
        self.assertEqual(guid.get("isPermaLink"), "true")
        self.assertEqual(element.findtext("link"), "http://s1.test:8080/Alice/status/61")
        self.assertEqual(element.findtext("pubDate"), "Tue, 14 Nov 2023 22:14:21 +0000")
        self.assertEqual(element.findtext("description"), "hi")
        self.assertEqual(element.findtext(dw + "acct"), ACCT)
        self.assertEqual(element.findtext(dw + "seq"), "61")
        self.assertEqual(element.findtext(dw + "deleted"), "false")
        reply = element.find(dw + "inReplyTo")
        assert reply is not None
        self.assertEqual(reply.attrib, {"acct": "bob@s2.test:8080", "seq": "12"})

    def test_maximal_page_fits(self) -> None:
        """
        A full page of maximal items (140 characters at their largest once
        escaped, a maximal source, a reply to the longest acct, the longest
        handle and authority, 18-digit numbers), with the author's one full
        profile item at every field's limit and maximal retweets among them,
        fits under MAX_FEED_BYTES, which fits under the s2s client's cap on
        an answer: no post, retweet or profile can make its author's pages
        too large to fetch.  It reads back.
        """
        from distwit.federation.range_feed import Counts, Profile
        from distwit.model import MAX_IMAGE_URL_LENGTH, MAX_SOURCE_LENGTH, PROFILE_LIMITS

        self.assertLessEqual(MAX_FEED_BYTES, DEFAULT_MAX_SIZE)
        authority = "a" * 250 + ".example:65535"
        author = replace(ALICE, handle="A" * 15, name="\U0001f600" * 50,
                         last_seq=10**18 - 1)
        first = 10**18 - MAX_ITEMS_PER_FEED
        reply = ("b" * 15 + "@" + "c" * 262, 10**18 - 1)
        for text, source, worst in (
            ("\U0001f600" * 140, "\U0001f600" * MAX_SOURCE_LENGTH, "\U0001f600"),
            ("&" * 140, '"' * MAX_SOURCE_LENGTH, '"'),
            ("\r" * 140, "&" * MAX_SOURCE_LENGTH, "&"),
        ):
            profile = Profile(
                **{field: worst * limit for field, limit in PROFILE_LIMITS.items()},
                image="https://" + worst * (MAX_IMAGE_URL_LENGTH - 8),
            )
            items = []
            for i in range(MAX_ITEMS_PER_FEED):
                base = FeedItem(seq=first + i, text=text, created_at=253402300799000,
                                deleted=False, in_reply_to=reply, source=source)
                if i == 0:
                    base = replace(base, text="", in_reply_to=None, kind=PROFILE,
                                   profile=profile)
                elif i % 2:
                    base = replace(base, text="", in_reply_to=None, kind=RETWEET,
                                   retweet_of=reply)
                items.append(base)
            counts = Counts(10**18 - 1, 10**18 - 1, 10**18 - 1)
            latest = (10**18 - 1, profile)
            data = render_range_feed(
                author, authority, "https://" + authority, items,
                first, first + MAX_ITEMS_PER_FEED - 1, True, counts, latest,
            )
            self.assertLess(len(data), MAX_FEED_BYTES)
            # And all posts, as before.
            posts = [replace(item, text=text, in_reply_to=reply, kind=POST, profile=None,
                             retweet_of=None) for item in items]
            self.assertLess(len(render_range_feed(
                author, authority, "https://" + authority, posts,
                first, first + MAX_ITEMS_PER_FEED - 1, True, counts, latest,
            )), MAX_FEED_BYTES)
            acct = "a" * 15 + "@" + authority
            page = parse_range_feed(data, acct, first, first + MAX_ITEMS_PER_FEED - 1)
            self.assertEqual(len(page.items), MAX_ITEMS_PER_FEED)
            self.assertEqual(page.items[0].profile, profile.bounded())
            self.assertEqual(page.items[1].retweet_of, reply)
            self.assertEqual(page.counts, counts)
            self.assertEqual(page.latest_profile, (10**18 - 1, profile.bounded()))

    def test_source_is_bounded(self) -> None:
        """
        A source longer than MAX_SOURCE_LENGTH is cut when sent, and cut
        again when read from another server (never refused: a refused page
        would stop the author's feed for good); never more is stored.
        """
        from distwit.model import MAX_SOURCE_LENGTH

        data = render_range_feed(
            ALICE, AUTHORITY, PUBLIC_URL, [item(61, source="s" * 1_200_000)], 61, 61, False
        )
        self.assertLess(len(data), 5000)
        (read,) = parse_range_feed(data, ACCT, 61, 61).items
        self.assertEqual(read.source, "s" * MAX_SOURCE_LENGTH)
        huge = hand_feed(
            [hand_item("1", extra=f'<dw:source value="{"s" * 500_000}"/>')], last="1"
        )
        (read,) = parse_range_feed(huge, ACCT, 1, 1).items
        self.assertEqual(read.source, "s" * MAX_SOURCE_LENGTH)

    def test_same_range_same_bytes(self) -> None:
        """
        Rendering the same range twice gives the same bytes (no clock in
        the document), so it can be cached and compared.
        """
        items = [item(61), item(62)]
        self.assertEqual(
            render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 62, False),
            render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, list(reversed(items)), 61, 62, False),
        )

    def test_render_refuses_items_outside_the_range(self) -> None:
        """
        The renderer will not make a feed every reader would refuse: items
        outside the range, repeated numbers or too many are a ValueError.
        """
        for items, first, last in [
            ([item(60)], 61, 63),
            ([item(61), item(61)], 61, 63),
            ([item(seq) for seq in range(1, MAX_ITEMS_PER_FEED + 2)], 1, MAX_ITEMS_PER_FEED + 1),
        ]:
            self.assertRaises(
                ValueError,
                render_range_feed, ALICE, AUTHORITY, PUBLIC_URL, items, first, last, False,
            )

    def test_hand_made_feed(self) -> None:
        """
        The hand-made feeds the refusal tests spoil are themselves
        accepted, so each refusal is for the one thing spoilt; the handle
        compares case-insensitively and items come back by number.
        """
        data = hand_feed(
            [hand_item("3"), hand_item("1"), hand_item("2")], acct="ALICE@s1.test:8080"
        )
        page = parse_range_feed(data, ACCT, 1, 3)
        self.assertEqual([i.seq for i in page.items], [1, 2, 3])
        self.assertEqual(page.items[0].text, "hello")
        published = calendar.timegm((2023, 11, 14, 22, 13, 21))
        self.assertEqual(page.items[0].created_at, published * 1000)


class LogItemFeedTests(SynchronousTestCase):
    """
    Retweets, profile items and the author's counts in range feeds
    (docs/design/log-items.md).
    """

    def test_retweet_and_profile_round_trip(self) -> None:
        """
        A retweet travels as its reference (no text); the latest profile
        item as the whole profile; a superseded one as its number alone;
        the channel's counts come back.
        """
        from distwit.federation.range_feed import Counts, Profile

        profile = Profile("Alice L.", "Down the hole", "Oxford", "http://a.example",
                          "http://s1.test:8080/profile_images/" + "ab" * 16 + "_normal.png")
        items = [
            item(61, "", kind=RETWEET, retweet_of=("bob@s2.test", 7)),
            item(62, "", kind=PROFILE, profile=None, source=""),
            item(63, "", kind=PROFILE, profile=profile, source=""),
        ]
        data = render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 63, False,
                                 Counts(26, 3, 4))
        self.assertIn(b'<dw:retweetOf acct="bob@s2.test" seq="7"/>', data)
        self.assertIn(b"<dw:profile/>", data)
        page = parse_range_feed(data, ACCT, 61, 63)
        retweet, superseded, latest = page.items
        self.assertEqual((retweet.kind, retweet.retweet_of, retweet.text),
                         (RETWEET, ("bob@s2.test", 7), ""))
        self.assertEqual((superseded.kind, superseded.profile), (PROFILE, None))
        self.assertEqual((latest.kind, latest.profile), (PROFILE, profile))
        self.assertEqual(page.counts, Counts(26, 3, 4))

    def test_old_feed_still_parses(self) -> None:
        """
        A feed of an older server, without counts or the new elements,
        reads as before: every item a post, no counts.
        """
        page = parse_range_feed(hand_feed([hand_item("1")], last="1"), ACCT, 1, 1)
        (read,) = page.items
        self.assertEqual((read.kind, read.text, page.counts), (POST, "hello", None))

    def test_profile_fields_bounded(self) -> None:
        """
        Another server's profile fields are cut to their limits and made
        one line, and an image that is not an http(s) URL is dropped:
        never refused (that would stop the author's feed for good).
        """
        extra = ('<dw:profile name="{}" description="a&#10;b" location="l" url="u"'
                 ' image="javascript:alert(1)"/>').format("n" * 500)
        page = parse_range_feed(
            hand_feed([hand_item("1", text=None, extra=extra)], last="1"), ACCT, 1, 1
        )
        (read,) = page.items
        assert read.profile is not None
        self.assertEqual(read.profile.name, "n" * 50)
        self.assertEqual(read.profile.description, "ab")
        self.assertEqual(read.profile.image, "")

    def test_bad_new_items_refused(self) -> None:
        """
        A retweet with text, one with a malformed reference, an item that is
        both a retweet and a profile, and malformed counts refuse the page.
        """
        retweet = '<dw:retweetOf acct="bob@s2.test" seq="7"/>'
        for items, channel, reason in (
            ([hand_item("1", extra=retweet)], "", "is a retweet item but still has text"),
            ([hand_item("1", text=None, extra='<dw:retweetOf acct="x" seq="7"/>')], "",
             "dw:retweetOf acct"),
            ([hand_item("1", text=None, extra=retweet + "<dw:profile/>")], "",
             "both a retweet and a profile"),
            ([hand_item("1")],
             "<dw:statuses>-1</dw:statuses><dw:followers>1</dw:followers>"
             "<dw:friends>1</dw:friends>", "dw:statuses"),
        ):
            with self.assertRaises(FeedError) as caught:
                parse_range_feed(hand_feed(items, last="1", channel_extra=channel), ACCT, 1, 1)
            self.assertIn(reason, str(caught.exception))


class RangeFeedRefusalTests(SynchronousTestCase):
    def assertRefused(self, data: bytes, reason: str, first: int = 1, last: int = 3) -> None:
        error = self.assertRaises(FeedError, parse_range_feed, data, ACCT, first, last)
        self.assertIn(reason, str(error))

    def test_error_is_value_error(self) -> None:
        """
        FeedError is a ValueError, so callers that handle bad input catch it.
        """
        self.assertTrue(issubclass(FeedError, ValueError))

    def test_wrong_author_channel(self) -> None:
        """
        A feed whose channel is another author's is refused.
        """
        data = hand_feed([hand_item("1")], acct="mallory@s1.test:8080")
        self.assertRefused(data, "the channel is by")

    def test_wrong_author_item(self) -> None:
        """
        One item by another author among good ones refuses the whole page:
        it is never stored, and never silently dropped.
        """
        data = hand_feed(
            [hand_item("1"), hand_item("2", acct="mallory@evil.test"), hand_item("3")]
        )
        self.assertRefused(data, "item 2 is by 'mallory@evil.test'")

    def test_wrong_authority(self) -> None:
        """
        The same handle on another server is another author; the authority
        compares exactly.
        """
        self.assertRefused(hand_feed([hand_item("1", acct="alice@s1.test:9090")]), "item 1 is by")
        self.assertRefused(hand_feed([hand_item("1", acct="alice@S1.TEST:8080")]), "item 1 is by")

    def test_missing_author(self) -> None:
        """
        An item or channel that does not say whose it is is refused.
        """
        no_acct = hand_item("1").replace(f"<dw:acct>{ACCT}</dw:acct>", "")
        self.assertRefused(hand_feed([no_acct]), "item 1 has no dw:acct")
        channel = hand_feed([hand_item("1")]).replace(
            f"<dw:acct>{ACCT}</dw:acct><dw:first>".encode(), b"<dw:first>"
        )
        self.assertRefused(channel, "the channel has no dw:acct")

    def test_bad_seq(self) -> None:
        """
        A missing number, or one that is not plain decimal digits, is refused.
        """
        no_seq = hand_item("1").replace("<dw:seq>1</dw:seq>", "")
        self.assertRefused(hand_feed([no_seq]), "has no dw:seq")
        for seq in ["one", "-1", "+2", "1.0", "2e0", "1_0", "\u0662", "0x2", ""]:
            self.assertRefused(hand_feed([hand_item(seq)]), "is not a number")

    def test_seq_out_of_range(self) -> None:
        """
        A message outside the range asked for (or outside the part of it
        the channel says it served) is refused.
        """
        self.assertRefused(hand_feed([hand_item("4")]), "message 4) is outside the range")
        self.assertRefused(
            hand_feed([hand_item("1"), hand_item("7")], first="5", last="7"),
            "message 1) is outside",
            5,
            7,
        )
        self.assertRefused(hand_feed([hand_item("3")], last="2"), "message 3) is outside", 1, 3)

    def test_channel_range(self) -> None:
        """
        A feed for another range than the one asked for is refused.
        """
        self.assertRefused(hand_feed([], first="2"), "asked for messages 1 to 3")
        self.assertRefused(hand_feed([], last="4"), "asked for messages 1 to 3")
        self.assertRefused(hand_feed([], last="-1"), "dw:last '-1' is not a number")
        self.assertRefused(hand_feed([], more="maybe"), "dw:more is 'maybe'")

    def test_duplicate_seq(self) -> None:
        """
        The same number twice in one page is refused, whatever the texts.
        """
        data = hand_feed([hand_item("2", text="first"), hand_item("2", text="second")])
        self.assertRefused(data, "message 2 appears twice")

    def test_too_many_items(self) -> None:
        """
        More than MAX_ITEMS_PER_FEED items are refused.
        """
        count = MAX_ITEMS_PER_FEED + 1
        data = hand_feed([hand_item(str(seq)) for seq in range(1, count + 1)], last=str(count))
        self.assertRefused(data, f"{count} items", 1, count)

    def test_text_too_long(self) -> None:
        """
        A text over 140 code points after NFC is refused; 140 is fine, and
        so is a longer decomposed text that is 140 after NFC.
        """
        self.assertRefused(hand_feed([hand_item("1", text="x" * 141)]), "141 characters long")
        self.assertRefused(hand_feed([hand_item("1", text="😀" * 141)]), "141 characters long")
        for text in ["x" * 140, "e\u0301" * 140]:
            page = parse_range_feed(hand_feed([hand_item("1", text=text)]), ACCT, 1, 3)
            self.assertEqual(page.items[0].text, text)

    def test_bad_deleted(self) -> None:
        """
        dw:deleted is "true" or "false", nothing else.
        """
        for value in ["yes", "True", "1", ""]:
            data = hand_feed([hand_item("1", deleted=value)])
            self.assertRefused(data, 'not "true" or "false"')
        no_flag = hand_item("1").replace("<dw:deleted>false</dw:deleted>", "")
        self.assertRefused(hand_feed([no_flag]), "has no dw:deleted")

    def test_text_and_tombstones(self) -> None:
        """
        A message needs dw:text (as a value attribute); a tombstone must not
        carry text; dw:deletes is on a tombstone and names an earlier
        number.
        """
        self.assertRefused(hand_feed([hand_item("1", text=None)]), "has no dw:text")
        self.assertRefused(hand_feed([hand_item("1", text="")]), "has no dw:text")
        as_element = hand_item("1", text=None, extra="<dw:text>hello</dw:text>")
        self.assertRefused(hand_feed([as_element]), 'dw:text carries its text in value="..."')
        self.assertRefused(
            hand_feed([hand_item("1", text="secret", deleted="true")]),
            "deleted but still has text",
        )
        for extra, deleted in [
            ("<dw:deletes>1</dw:deletes>", "false"),
            ("<dw:deletes>2</dw:deletes>", "true"),
            ("<dw:deletes>0</dw:deletes>", "true"),
        ]:
            text = "x" if deleted == "false" else None
            data = hand_feed([hand_item("2", text=text, deleted=deleted, extra=extra)])
            self.assertRefused(data, "dw:deletes")

    def test_bad_in_reply_to(self) -> None:
        """
        A reply target needs acct="handle@authority" and a positive seq.
        """
        for extra in [
            "<dw:inReplyTo>bob@s2.test 12</dw:inReplyTo>",
            '<dw:inReplyTo seq="12"/>',
            '<dw:inReplyTo acct="bob" seq="12"/>',
            '<dw:inReplyTo acct="bob@s2.test/x y" seq="12"/>',
            '<dw:inReplyTo acct="bob@s2.test"/>',
            '<dw:inReplyTo acct="bob@s2.test" seq="twelve"/>',
            '<dw:inReplyTo acct="bob@s2.test" seq="0"/>',
        ]:
            self.assertRefused(hand_feed([hand_item("1", extra=extra)]), "dw:inReplyTo")

    def test_missing_date(self) -> None:
        """
        An item without a readable pubDate is refused.
        """
        self.assertRefused(hand_feed([hand_item("1", pub_date=None)]), "has no valid pubDate")
        data = hand_feed([hand_item("1", pub_date="yesterday")])
        self.assertRefused(data, "has no valid pubDate")

    def test_garbage(self) -> None:
        """
        Whatever is not a well-formed RSS 2.0 feed is refused: nothing,
        text, JSON, an HTML error page, cut-off XML, an Atom feed, bytes
        that are not UTF-8.
        """
        good = hand_feed([hand_item("1")])
        for data in [
            b"",
            b"hello",
            b'{"error": "no"}',
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            good[: len(good) // 2],
            good.replace(b"</item>", b""),
            b"\xff\xfe\x00<\x00r",
            render_person_atom(ALICE, PUBLIC_URL, []),
        ]:
            self.assertRaises(FeedError, parse_range_feed, data, ACCT, 1, 3)
        self.assertRefused(good.replace(b"hello", "h\u00e9llo".encode("latin-1")), "UTF-8")
        self.assertRefused(b"<rss><channel>", "not a well-formed feed")

    def test_only_rss_2(self) -> None:
        """
        The root is ``<rss version="2.0">`` with one channel; other RSS
        versions, two channels or a prefix bound twice are refused.
        """
        good = hand_feed([hand_item("1")])
        self.assertRefused(good.replace(b'version="2.0"', b'version="0.92"'), "not an RSS 2.0")
        self.assertRefused(good.replace(b"</channel>", b"</channel><channel/>"), "2 channels")
        twice = good.replace(b"<item>", b'<item xmlns:dw="https://evil.test/ns">', 1)
        self.assertRefused(twice, "binds the prefix 'dw' twice")

    def test_namespace(self) -> None:
        """
        The dw elements must be in distwit's namespace under the dw prefix:
        look-alike elements of another namespace are refused.
        """
        self.assertRefused(
            hand_feed([hand_item("1")], namespaces='xmlns:dw="https://evil.test/ns"'),
            "does not declare",
        )
        self.assertRefused(
            hand_feed(
                [hand_item("1")],
                namespaces=f'xmlns:dw="{DW_NS}" xmlns:x="{DW_NS}"',
                channel_extra="<x:more>true</x:more>",
            ),
            "binds",
        )

    def test_oversized(self) -> None:
        """
        A body over MAX_FEED_BYTES is refused before it is parsed, even a
        valid feed padded out.
        """
        good = hand_feed([hand_item("1")])
        padded = good + b" " * (MAX_FEED_BYTES - len(good) + 1)
        self.assertRefused(padded, f"the limit is {MAX_FEED_BYTES}")
        parse_range_feed(good + b" " * (MAX_FEED_BYTES - len(good)), ACCT, 1, 3)

    def test_entity_declarations(self) -> None:
        """
        A DOCTYPE (entity expansion, "billion laughs") is refused.
        """
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        )
        good = hand_feed([hand_item("1", text="&c;")]).split(b"\n", 1)[1]
        self.assertRefused(bomb + good.replace(b"&amp;c;", b"&c;"), "no DOCTYPE")

    def _bomb(self, encoding: str) -> bytes:
        """
        A feed with an entity-expanding DOCTYPE, declared as ``encoding``.
        """
        good = hand_feed([hand_item("1", text="&c;")]).split(b"\n", 1)[1]
        return (
            f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE rss ['
            '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            + good.replace(b"&amp;c;", b"&c;").decode("utf-8")
        ).encode(encoding)

    def test_entity_declarations_in_utf16_and_utf32(self) -> None:
        """
        A DOCTYPE spelled in UTF-16 or UTF-32 (with or without a byte-order
        mark) is refused too: the feed is not UTF-8, and no entity is ever
        expanded into a stored post.
        """
        for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                         "utf-32-be"):
            self.assertRefused(self._bomb(encoding), "UTF-8")

    def test_other_encoding_declared(self) -> None:
        """
        A feed declaring an encoding other than UTF-8 is refused, even
        when its bytes are ASCII.
        """
        good = hand_feed([hand_item("1")]).split(b"\n", 1)[1]
        for encoding in (b"ISO-8859-1", b"UTF-16", b"us-ascii"):
            self.assertRefused(
                b'<?xml version="1.0" encoding="' + encoding + b'"?>' + good, "UTF-8"
            )
        parse_range_feed(b'<?xml version="1.0" encoding="utf-8"?>' + good, ACCT, 1, 3)
        parse_range_feed(b"\xef\xbb\xbf" + good, ACCT, 1, 3)

    def test_dtd_refused_by_the_parser(self) -> None:
        """
        A DTD is refused by the parser itself, however it is spelled: a
        bare DOCTYPE, one with whitespace and comments before it, and one
        with only an external identifier.
        """
        good = hand_feed([hand_item("1")]).split(b"\n", 1)[1]
        for doctype in (
            b"<!DOCTYPE rss>",
            b"<!-- hi -->\n  <!DOCTYPE\trss [ ]>",
            b'<!DOCTYPE rss SYSTEM "file:///etc/passwd">',
            b'<!DOCTYPE rss PUBLIC "-//x//y" "http://169.254.169.254/">',
        ):
            self.assertRefused(doctype + good, "no DOCTYPE")

    def test_body_naming_a_file(self) -> None:
        """
        A body that is the name of a local file is refused as not a feed:
        the file is never opened (feedparser opens strings naming files).
        """
        fd, path = tempfile.mkstemp(suffix=".rss")
        self.addCleanup(os.remove, path)
        with os.fdopen(fd, "wb") as f:
            f.write(hand_feed([hand_item("1")]))
        self.assertRefused(path.encode(), "not a well-formed feed")


class PersonFeedTests(SynchronousTestCase):
    posts = [
        Post(1, ALICE, 1, "first post", T0 + 1000, "web", None, False),
        Post(2, ALICE, 2, "gone", T0 + 2000, "web", None, True),
        Post(4, ALICE, 4, "<b>x</b> & y 😀", T0 + 4000, "web", None, False),
        Post(3, ALICE, 3, "second\npost", T0 + 3000, "web", None, False),
    ]

    def test_rss(self) -> None:
        """
        A feed reader reads the RSS feed cleanly: "Name (@handle)", a link
        to the profile page, the latest posts newest first with their
        permalinks and dates; deleted posts are not shown; HTML-like text
        shows as typed, not as markup.
        """
        parsed = feedparser.parse(render_person_rss(ALICE, PUBLIC_URL, self.posts))
        self.assertEqual(parsed.bozo, 0, parsed.get("bozo_exception"))
        self.assertEqual(parsed.version, "rss20")
        self.assertEqual(parsed.feed.title, "Alice Liddell (@Alice)")
        self.assertEqual(parsed.feed.link, "http://s1.test:8080/Alice")
        self.assertEqual(
            [entry.link for entry in parsed.entries],
            [f"http://s1.test:8080/Alice/status/{seq}" for seq in (4, 3, 1)],
        )
        self.assertEqual([entry.id for entry in parsed.entries], [e.link for e in parsed.entries])
        self.assertEqual(
            [calendar.timegm(entry.published_parsed) for entry in parsed.entries],
            [(T0 + seq * 1000) // 1000 for seq in (4, 3, 1)],
        )
        # The title, which feedparser guesses is HTML, shows as typed.
        self.assertEqual(parsed.entries[0].title_detail.type, "text/html")
        self.assertNotIn("<b>", parsed.entries[0].title)
        self.assertEqual(html.unescape(parsed.entries[0].title), "Alice: <b>x</b> & y 😀")
        self.assertEqual(html.unescape(parsed.entries[0].summary), "<b>x</b> & y 😀")
        self.assertNotIn("<b>", parsed.entries[0].summary)

    def test_atom(self) -> None:
        """
        A feed reader reads the Atom feed cleanly: title, profile link,
        entries newest first with permalink ids, published dates, and the
        text as plain-text content.
        """
        parsed = feedparser.parse(render_person_atom(ALICE, PUBLIC_URL, self.posts))
        self.assertEqual(parsed.bozo, 0, parsed.get("bozo_exception"))
        self.assertEqual(parsed.version, "atom10")
        self.assertEqual(parsed.feed.title, "Alice Liddell (@Alice)")
        self.assertEqual(parsed.feed.link, "http://s1.test:8080/Alice")
        self.assertEqual(parsed.feed.id, "http://s1.test:8080/Alice")
        self.assertEqual(
            [entry.id for entry in parsed.entries],
            [f"http://s1.test:8080/Alice/status/{seq}" for seq in (4, 3, 1)],
        )
        self.assertEqual(parsed.entries[0].link, "http://s1.test:8080/Alice/status/4")
        self.assertEqual(
            [calendar.timegm(entry.published_parsed) for entry in parsed.entries],
            [(T0 + seq * 1000) // 1000 for seq in (4, 3, 1)],
        )
        content = parsed.entries[0].content[0]
        self.assertEqual((content.type, content.value), ("text/plain", "<b>x</b> & y 😀"))
        self.assertEqual(parsed.entries[1].content[0].value, "second\npost")

    def test_no_posts(self) -> None:
        """
        Someone who has not posted yet still has valid, empty feeds.
        """
        for render, version in [(render_person_rss, "rss20"), (render_person_atom, "atom10")]:
            parsed = feedparser.parse(render(ALICE, PUBLIC_URL, []))
            self.assertEqual((parsed.bozo, parsed.version, parsed.entries), (0, version, []))
            self.assertEqual(parsed.feed.title, "Alice Liddell (@Alice)")


class PersonFeedsResourceTests(SynchronousTestCase):
    """
    ``/HANDLE.rss`` and ``/HANDLE.atom`` as a feed reader fetches them.
    """

    def setUp(self) -> None:
        from twisted.internet.task import Clock

        from distwit.core.microblog import Microblog
        from tests.support import cheap_hasher, synchronous_sqlite_store

        store = synchronous_sqlite_store(os.path.join(self.mktemp() + ".sqlite3"))
        self.addCleanup(store.close)
        clock = Clock()
        clock.advance(T0 / 1000)
        self.microblog = Microblog(store, cheap_hasher(), clock)
        alice = self.successResultOf(self.microblog.create_user("alice", "correct horse"))
        self.successResultOf(self.microblog.post(alice, "down the rabbit hole"))

    def get(self, path: str) -> tuple[int, bytes, Any]:
        from treq.testing import StubTreq

        from distwit.api.person_feeds import PersonFeeds

        stub = StubTreq(PersonFeeds(self.microblog, PUBLIC_URL).resource())
        response = self.successResultOf(stub.get(PUBLIC_URL + path))
        return response.code, self.successResultOf(stub.content(response)), response

    def test_rss(self) -> None:
        """
        ``/alice.rss`` is an RSS feed of alice's posts.
        """
        code, body, response = self.get("/alice.rss")
        self.assertEqual(code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"),
            [b"application/rss+xml; charset=utf-8"],
        )
        parsed = feedparser.parse(body)
        self.assertEqual([e.title for e in parsed.entries], ["alice: down the rabbit hole"])

    def test_atom(self) -> None:
        """
        ``/alice.atom`` is the same posts as Atom.
        """
        code, body, response = self.get("/alice.atom")
        self.assertEqual(code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"),
            [b"application/atom+xml; charset=utf-8"],
        )
        self.assertEqual(feedparser.parse(body).version, "atom10")

    def test_unknown_user(self) -> None:
        """
        A feed of nobody is a 404 that says so.
        """
        code, body, _ = self.get("/nobody.rss")
        self.assertEqual(code, 404)
        self.assertIn(b"No user 'nobody' here.", body)


class SixtyFourBitNumberTests(SynchronousTestCase):
    def test_numbers_up_to_64_bits(self) -> None:
        """
        Message numbers are read up to 2**63 - 1 (a copy that a lying lookup
        started that high can still be read, and its claim forgotten), and
        refused beyond.
        """
        top = 2**63 - 1
        page = parse_range_feed(
            render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, [], top, top - 1, False),
            ACCT, top, top,
        )
        self.assertEqual(page.last, top - 1)
        with self.assertRaises(FeedError):
            parse_range_feed(
                render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, [], top + 1, top, False),
                ACCT, top + 1, top + 1,
            )
