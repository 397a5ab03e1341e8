"""
The range feeds twitter servers copy posts with (server to server).

The range fetch (docs/design/range-fetch.md: "give me messages 61 through
63 of this author") is answered with an RSS 2.0 document (:func:`render_range_feed`, written as
text with every value escaped) and read back with :func:`parse_range_feed`
(strict XML, with the standard library's expat; DOCTYPEs refused).  What
RSS has no element for travels in the namespace :data:`DW_NS`, prefix
``dw``::

    <rss version="2.0" xmlns:dw="https://distwit.org/ns/1.0">
      <channel>
        <title>Alice (@alice@s1.example)</title>
        <link>https://s1.example/alice</link>
        <description>Messages 61 to 63 of alice@s1.example</description>
        <dw:acct>alice@s1.example</dw:acct>
        <dw:first>61</dw:first>       the range served: first ...
        <dw:last>63</dw:last>         ... to last (first - 1 when empty)
        <dw:more>false</dw:more>      "true": the request was cut at
                                      MAX_ITEMS_PER_FEED, ask again
        <dw:statuses>120</dw:statuses>  the author's own counts, as their
        <dw:followers>8</dw:followers>  server has them (optional: feeds of
        <dw:friends>3</dw:friends>      older servers have none)
        <dw:latestProfile seq="65" name="Alice" description="..." location="..."
                          url="..." image="..."/>   the author's latest profile
                                      item, whatever the range (optional)
        <item>
          <title>alice@s1.example #61</title>
          <link>https://s1.example/alice/status/61</link>
          <description>&lt;b&gt;x&lt;/b&gt; &amp; y</description>
          <guid isPermaLink="true">https://s1.example/alice/status/61</guid>
          <pubDate>Tue, 24 Nov 2026 09:02:15 +0000</pubDate>
          <dw:acct>alice@s1.example</dw:acct>
          <dw:seq>61</dw:seq>
          <dw:deleted>false</dw:deleted>
          <dw:text value="&lt;b&gt;x&lt;/b&gt; &amp; y"/>
          <dw:source value="web"/>
          <dw:inReplyTo acct="bob@s2.example:8080" seq="12"/>
          <dw:deletes>58</dw:deletes>   (on a deletion record only)
        </item>
        <item> ... <dw:seq>64</dw:seq> ...
          <dw:retweetOf acct="bob@s2.example" seq="7"/>   (a retweet: no dw:text)
        </item>
        <item> ... <dw:seq>65</dw:seq> ...
          <dw:profile name="Alice" description="..." location="..." url="..."
                      image="https://s1.example/profile_images/ab12_normal.png"/>
        </item>
      </channel>
    </rss>

How the text travels.  ``description`` carries the text as plain text,
XML-escaped (never markup, never CDATA), for people and ordinary tools.
Feed readers cannot read it back exactly: feedparser, for one, treats an
RSS description as HTML and sanitises it (``<script>`` vanishes, ``&`` becomes
``&amp;``), strips surrounding whitespace, maps U+0080..U+009F to
Windows-1252 characters and "repairs" text that looks like UTF-8 read as
Latin-1 (``Ã©`` becomes ``é``), in any element's text.  So the exact text
is *also* in the ``value`` attribute of ``dw:text``: XML parsers hand
attribute values through as they are (feedparser too, for unknown
elements), and the XML serialiser escapes every character an attribute would
otherwise lose (``&#10;``, ``&#13;``, ``&#9;``).  :func:`parse_range_feed`
reads only ``dw:text``; the description is for people.  ``dw:source`` is
free text too and travels the same way.

Characters XML 1.0 cannot carry at all (C0 controls other than tab, line
feed and carriage return; U+FFFE, U+FFFF; lone surrogates) are sent as
U+FFFD: without that one such post would make its author's range
unservable forever.

``created_at`` travels as ``pubDate``, so to the second (RSS dates have no
fractions).  A tombstone (``dw:deleted`` "true") has no description and no
``dw:text``.  A deletion record (a tombstone taking a number of its own so
that the delete travels like a post) names the deleted message in
``dw:deletes``.

Items other than posts (docs/design/log-items.md).  A retweet carries
``dw:retweetOf`` (the original's acct and number) and no text: the original
is shown from where it is held.  A profile change carries ``dw:profile``
with the whole profile as attributes (each bounded: name 50, description
160, location 30, url 100 code points, image URL 300), but only the
author's latest one: a superseded profile item is served as ``<dw:profile/>``
alone, its number held like a tombstone's.  So a page holds at most one
full profile and the page-size bound below still holds.  Feeds without
these elements (older servers) read as before: every item a post.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from xml.etree import ElementTree
from xml.parsers import expat
from dataclasses import dataclass
from typing import Any, NoReturn

from distwit.core.rss import status_url, xml_safe
from distwit.model import (
    MAX_IMAGE_URL_LENGTH,
    MAX_POST_LENGTH,
    POST,
    PROFILE,
    PROFILE_LIMITS,
    RETWEET,
    Account,
    limit_source,
    post_length,
    single_line,
)

#: The namespace of distwit's elements in range feeds.
DW_NS = "https://distwit.org/ns/1.0"
DW_PREFIX = "dw"

#: The most messages one range feed carries; a longer request is cut and
#: the channel says ``dw:more`` "true".
MAX_ITEMS_PER_FEED = 200

#: The largest range feed :func:`parse_range_feed` reads: the s2s client's
#: cap on an answer (``distwit.s2s.client.DEFAULT_MAX_SIZE``), which the
#: copier fetches with.  Every field of an item is bounded (text 140 code
#: points, source :data:`~distwit.model.MAX_SOURCE_LENGTH`, accts by
#: ``_ACCT_RE``, numbers 18 digits; a tombstone carries its number alone),
#: so a page of MAX_ITEMS_PER_FEED maximal items, every character escaped at
#: its worst, is about 720 kB: always under this (tests.test_feeds
#: ``test_maximal_page_fits``).  Nothing one author posts can make a page
#: of theirs too large to fetch.
MAX_FEED_BYTES = 1_000_000

_ACCT_RE = re.compile(r"\A[A-Za-z0-9_]{1,15}@[A-Za-z0-9.\-\[\]:]{1,262}\Z")
#: ASCII digits only: ``int()`` would also take " 7", "+7", "7_0" and "٧";
#: at most 19 of them, and at most 2**63 - 1 (checked in :func:`_number`).
_NUMBER_RE = re.compile(r"\A[0-9]{1,19}\Z")
_MAX_NUMBER = 2**63 - 1
#: The XML declaration's encoding, if it has one (read as ASCII bytes).
_ENCODING_DECLARATION_RE = re.compile(
    rb"""\A<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']"""
)


class FeedError(ValueError):
    """
    A range feed that is not what was asked for, or not well formed.
    """


@dataclass(frozen=True)
class FeedItem:
    """
    One message of a range feed.

    :ivar seq: the author's number of the message.
    :ivar text: the text; empty on a tombstone.
    :ivar created_at: milliseconds since the Unix epoch (travels to the
        second).
    :ivar deleted: a tombstone (a deleted message, or a deletion record).
    :ivar in_reply_to: ``(acct, seq)`` of the message replied to.
    :ivar source: the client that posted it.
    :ivar deletes: on a deletion record, the number of the message deleted.
    """

    seq: int
    text: str
    created_at: int
    deleted: bool
    in_reply_to: tuple[str, int] | None = None
    source: str = "web"
    deletes: int | None = None
    #: :data:`~distwit.model.POST`, ``RETWEET`` or ``PROFILE``.
    kind: str = POST
    #: On a retweet: the original's ``(acct, seq)``.
    retweet_of: tuple[str, int] | None = None
    #: On the author's latest profile item: the profile; ``None`` on a
    #: superseded one (its number alone).
    profile: "Profile | None" = None


@dataclass(frozen=True)
class Profile:
    """
    A profile as a profile item carries it, every field bounded.

    :ivar image: the absolute URL of the image (48x48, Twitter's
        ``_normal``), at the author's server; empty for none.
    """

    name: str = ""
    description: str = ""
    location: str = ""
    url: str = ""
    image: str = ""

    def bounded(self) -> "Profile":
        """
        The profile with every field one line and cut to its limit, an
        image URL that is not http(s) or too long dropped.
        """
        def cut(value: str, limit: int) -> str:
            return single_line(value)[:limit].strip()

        image = single_line(self.image)
        if len(image) > MAX_IMAGE_URL_LENGTH or not image.startswith(("http://", "https://")):
            image = ""
        return Profile(
            name=cut(self.name, PROFILE_LIMITS["name"]),
            description=cut(self.description, PROFILE_LIMITS["description"]),
            location=cut(self.location, PROFILE_LIMITS["location"]),
            url=cut(self.url, PROFILE_LIMITS["url"]),
            image=image,
        )


@dataclass(frozen=True)
class Counts:
    """
    The author's own counts, as the author's server has them.
    """

    statuses: int
    followers: int
    friends: int


@dataclass(frozen=True)
class RangePage:
    """
    A range feed as read: what was served, and the messages in it.

    :ivar first: the first number of the range served (the one asked for).
    :ivar last: the last number of the range served: at most the one asked
        for, ``first - 1`` when the author has nothing from ``first`` on.
        Numbers in the range without an item are not held by the author's
        server either.
    :ivar more: the request was cut at :data:`MAX_ITEMS_PER_FEED`.
    :ivar items: the messages, by number.
    """

    acct: str
    first: int
    last: int
    more: bool
    items: list[FeedItem]
    #: The author's counts, when the feed carries them.
    counts: Counts | None = None
    #: The number and content of the author's latest profile item, when
    #: the feed carries it: a server that starts copying an author after
    #: their last profile change still learns their profile.
    latest_profile: "tuple[int, Profile] | None" = None


# Rendering


def _boolean_text(value: bool) -> str:
    return "true" if value else "false"


def _acct_of(author: Account, authority: str) -> str:
    return f"{author.handle.lower()}@{author.authority or authority}"

def render_range_feed(
    author: Account,
    authority: str,
    public_url: str,
    items: list[FeedItem],
    first: int,
    last: int,
    more: bool,
    counts: Counts | None = None,
    latest_profile: "tuple[int, Profile] | None" = None,
) -> bytes:
    """
    The RSS 2.0 range feed of ``author``'s messages ``first`` to ``last``.

    :param authority: this server's authority (``host[:port]``), for the
        acct of a local author.
    :param public_url: this server's public URL (no trailing slash), for permalinks.
    :param items: the messages held in the range (any order).
    :param last: the end of the range served; ``first - 1`` for none.
    :param more: the range asked for went on past ``last`` and was cut at
        :data:`MAX_ITEMS_PER_FEED`.
    :raise ValueError: ``items`` do not fit the range (a caller's bug: the
        feed would be refused by every server reading it).
    """
    acct = _acct_of(author, authority)
    items = sorted(items, key=lambda item: item.seq)
    if last < first - 1:
        raise ValueError(f"the range {first}..{last} is backwards")
    if len(items) > MAX_ITEMS_PER_FEED:
        raise ValueError(f"{len(items)} items: a range feed has at most {MAX_ITEMS_PER_FEED}")
    numbers = [item.seq for item in items]
    if len(set(numbers)) != len(numbers):
        raise ValueError("the same message number twice")
    if items and not first <= numbers[0] <= numbers[-1] <= last:
        raise ValueError(f"items {numbers[0]}..{numbers[-1]} are outside {first}..{last}")

    # Written as text: feedgen's objects cost 24 ms a page of 200, most of
    # serving one; the same RSS 2.0 as text costs about 3.  Every value
    # goes through _text or _attribute, which escape what XML needs.
    newest = max((item.created_at for item in items), default=author.created_at)
    parts = [
        f"<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<rss xmlns:{DW_PREFIX}="{DW_NS}" version="2.0"><channel>'
        f"<title>{_text(xml_safe(f'{author.name or author.handle} (@{acct})'))}</title>"
        f"<link>{_text(f'{public_url}/{author.handle}')}</link>"
        f"<description>{_text(f'Messages {first} to {last} of {acct}')}</description>"
        f"<generator>distwit</generator>"
        # A fixed build date keeps the same range the same bytes.
        f"<lastBuildDate>{_rfc822(newest)}</lastBuildDate>"
        f"<dw:acct>{_text(acct)}</dw:acct><dw:first>{first}</dw:first>"
        f"<dw:last>{last}</dw:last><dw:more>{_boolean_text(more)}</dw:more>"
    ]
    if counts is not None:
        parts.append(
            f"<dw:statuses>{int(counts.statuses)}</dw:statuses>"
            f"<dw:followers>{int(counts.followers)}</dw:followers>"
            f"<dw:friends>{int(counts.friends)}</dw:friends>"
        )
    if latest_profile is not None:
        parts.append(
            f'<dw:latestProfile seq="{int(latest_profile[0])}"'
            f"{_profile_attributes(latest_profile[1])}/>"
        )
    for item in items:
        url = _text(status_url(public_url, author, item.seq))
        deleted = " (deleted)" if item.deleted else ""
        parts.append(
            f"<item><title>{_text(acct)} #{item.seq}{deleted}</title><link>{url}</link>"
        )
        if not item.deleted:
            parts.append(f"<description>{_text(xml_safe(_for_people(item)))}</description>")
        parts.append(
            f'<guid isPermaLink="true">{url}</guid>'
            f"<pubDate>{_rfc822(item.created_at)}</pubDate>"
            f"<dw:acct>{_text(acct)}</dw:acct><dw:seq>{item.seq}</dw:seq>"
            f"<dw:deleted>{_boolean_text(item.deleted)}</dw:deleted>"
        )
        if not item.deleted and item.kind == POST:
            # A tombstone carries its number alone: no text, no source, no
            # reply (what a deleted post held must not weigh on the feed).
            parts.append(f'<dw:text value="{_attribute(xml_safe(item.text))}"/>')
        if not item.deleted and item.kind != PROFILE:
            parts.append(f'<dw:source value="{_attribute(limit_source(item.source))}"/>')
        if not item.deleted and item.kind == RETWEET and item.retweet_of is not None:
            retweet_acct, retweet_seq = item.retweet_of
            parts.append(
                f'<dw:retweetOf acct="{_attribute(xml_safe(retweet_acct))}"'
                f' seq="{int(retweet_seq)}"/>'
            )
        if not item.deleted and item.kind == PROFILE:
            if item.profile is None:
                parts.append("<dw:profile/>")
            else:
                parts.append(f"<dw:profile{_profile_attributes(item.profile)}/>")
        if item.in_reply_to is not None and not item.deleted:
            reply_acct, reply_seq = item.in_reply_to
            parts.append(
                f'<dw:inReplyTo acct="{_attribute(xml_safe(reply_acct))}" seq="{int(reply_seq)}"/>'
            )
        if item.deletes is not None:
            parts.append(f"<dw:deletes>{int(item.deletes)}</dw:deletes>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def _for_people(item: FeedItem) -> str:
    """
    An item's ``description``: a post's text; a line saying what another
    kind of item is.
    """
    if item.kind == RETWEET and item.retweet_of is not None:
        return f"RT {item.retweet_of[0]} #{item.retweet_of[1]}"
    if item.kind == PROFILE:
        return "Profile changed"
    return item.text


def _profile_attributes(profile: Profile) -> str:
    """
    A profile as the attributes of ``dw:profile`` or ``dw:latestProfile``,
    every field bounded.
    """
    profile = profile.bounded()
    return (
        f' name="{_attribute(profile.name)}"'
        f' description="{_attribute(profile.description)}"'
        f' location="{_attribute(profile.location)}"'
        f' url="{_attribute(profile.url)}" image="{_attribute(profile.image)}"'
    )


_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
    "\n": "&#10;", "\r": "&#13;", "\t": "&#9;",
})


def _text(value: str) -> str:
    """
    ``value`` as XML character data (a carriage return as ``&#13;``, which
    a parser would otherwise turn into a line feed).
    """
    return value.translate(_TEXT)


def _attribute(value: str) -> str:
    """
    ``value`` as a double-quoted XML attribute value, whitespace kept.
    """
    return value.translate(_ATTRIBUTE)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _rfc822(ms: int) -> str:
    """
    An RSS date: ``Tue, 14 Nov 2023 22:13:20 +0000`` (not the locale's).
    """
    t = time.gmtime(ms // 1000)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year}"
        f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


# Parsing


def _dw_name(key: str) -> str:
    """
    ``dw:seq`` for the key ``dw_seq``.
    """
    return f"{DW_PREFIX}:{key[len(DW_PREFIX) + 1 :]}"


def _element_text(context: Any, key: str, where: str) -> str:
    value = context.get(key)
    name = _dw_name(key)
    if value is None:
        raise FeedError(f"{where} has no {name}")
    if not isinstance(value, str):
        raise FeedError(f"{where}: {name} must be text, without attributes")
    return value


def _number(context: Any, key: str, where: str) -> int:
    value = _element_text(context, key, where)
    if _NUMBER_RE.match(value) is None or int(value) > _MAX_NUMBER:
        raise FeedError(f"{where}: {_dw_name(key)} {value!r} is not a number of 64 bits")
    return int(value)


def _boolean(context: Any, key: str, where: str) -> bool:
    value = _element_text(context, key, where)
    if value not in ("true", "false"):
        raise FeedError(f'{where}: {_dw_name(key)} is {value!r}, not "true" or "false"')
    return value == "true"


def _attribute_value(context: Any, key: str, where: str) -> str | None:
    value = context.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise FeedError(f'{where}: {_dw_name(key)} carries its text in value="..."')
    text: str = value["value"]
    return text


def _same_acct(acct: str, expected: str) -> bool:
    handle, _, authority = acct.rpartition("@")
    expected_handle, _, expected_authority = expected.rpartition("@")
    return (
        bool(handle)
        and handle.lower() == expected_handle.lower()
        and authority == expected_authority
    )


def _check_author(context: Any, expected_acct: str, where: str) -> str:
    acct = _element_text(context, "dw_acct", where)
    if not _same_acct(acct, expected_acct):
        raise FeedError(f"{where} is by {acct!r}, not {expected_acct!r} as asked")
    return acct


def _reply_target(
    context: Any, where: str, key: str = "dw_inreplyto"
) -> tuple[str, int] | None:
    value = context.get(key)
    name = "dw:inReplyTo" if key == "dw_inreplyto" else "dw:retweetOf"
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FeedError(f'{where}: {name} needs acct="handle@authority" and seq="n"')
    acct, seq = value.get("acct"), value.get("seq")
    if not isinstance(acct, str) or _ACCT_RE.match(acct) is None:
        raise FeedError(f"{where}: {name} acct {acct!r} is not handle@authority")
    if (not isinstance(seq, str) or _NUMBER_RE.match(seq) is None
            or not 1 <= int(seq) <= _MAX_NUMBER):
        raise FeedError(f"{where}: {name} seq {seq!r} is not a message number")
    return acct, int(seq)


def _profile(context: Any, where: str) -> Profile | None:
    """
    The profile of a profile item; ``None`` for a superseded one
    (``<dw:profile/>``).  Fields are cut to their limits, never refused.
    """
    value = context.get("dw_profile")
    if not isinstance(value, dict):
        return None
    fields = {
        key: value.get(key, "") for key in ("name", "description", "location", "url", "image")
    }
    return Profile(**fields).bounded()


def _kind(entry: Any, where: str, deleted: bool) -> str:
    kinds = [kind for kind, key in ((RETWEET, "dw_retweetof"), (PROFILE, "dw_profile"))
             if key in entry]
    if len(kinds) > 1:
        raise FeedError(f"{where} is both a retweet and a profile change")
    if deleted or not kinds:
        return POST
    return kinds[0]


def _item(entry: Any, expected_acct: str, first: int, last: int, index: int) -> FeedItem:
    where = f"item {index}"
    _check_author(entry, expected_acct, where)
    seq = _number(entry, "dw_seq", where)
    where = f"item {index} (message {seq})"
    if not first <= seq <= last:
        raise FeedError(f"{where} is outside the range served, {first} to {last}")
    deleted = _boolean(entry, "dw_deleted", where)
    text = _attribute_value(entry, "dw_text", where)
    kind = _kind(entry, where, deleted)
    if deleted or kind != POST:
        if text:
            what = "is deleted" if deleted else f"is a {kind} item"
            raise FeedError(f"{where} {what} but still has text")
        text = ""
    else:
        if not text:
            raise FeedError(f"{where} has no dw:text")
        length = post_length(text)
        if length > MAX_POST_LENGTH:
            raise FeedError(
                f"{where} is {length} characters long; the limit is {MAX_POST_LENGTH}"
            )
    # Another server's source is cut to our limit, never refused: one
    # page refused for it would stop the author's feed here for good.
    source = (
        "" if deleted or kind == PROFILE
        else limit_source(_attribute_value(entry, "dw_source", where) or "")
    )
    deletes = None
    if "dw_deletes" in entry:
        deletes = _number(entry, "dw_deletes", where)
        if not deleted or not 1 <= deletes < seq:
            raise FeedError(
                f"{where}: dw:deletes {deletes} must be on a deleted item and name an"
                " earlier message"
            )
    published = entry.get("published_parsed")
    if published is None:
        raise FeedError(f"{where} has no valid pubDate")
    return FeedItem(
        seq=seq,
        text=text,
        created_at=calendar.timegm(published) * 1000,
        deleted=deleted,
        in_reply_to=None if deleted or kind != POST else _reply_target(entry, where),
        source=source,
        deletes=deletes,
        kind=kind,
        retweet_of=_reply_target(entry, where, "dw_retweetof") if kind == RETWEET else None,
        profile=_profile(entry, where) if kind == PROFILE else None,
    )


@dataclass
class _ParsedFeed:
    """
    A range feed as :func:`_read_range_xml` read it: the channel's and each
    item's elements of the ``dw`` namespace (and ``published_parsed``), in
    the shape the checks above read.
    """

    channel: dict[str, Any]
    entries: list[dict[str, Any]]


def _dw_fields(element: Any) -> dict[str, Any]:
    """
    The ``dw:`` children of ``element`` by ``dw_name`` (lower case): an
    element's text if it has no attributes, else its attributes.
    """
    fields: dict[str, Any] = {}
    prefix = "{" + DW_NS + "}"
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith(prefix):
            continue
        key = f"{DW_PREFIX}_{child.tag[len(prefix):].lower()}"
        if child.attrib:
            fields[key] = dict(child.attrib)
        else:
            fields[key] = child.text or ""
    return fields


def _refuse_declaration(*args: Any) -> NoReturn:
    raise FeedError("a range feed has no DOCTYPE or entity declarations")


def _check_utf8_only(data: bytes) -> None:
    """
    Refuse a feed that is not UTF-8 XML: a byte-order mark other than
    UTF-8's, a NUL byte (no XML carries one; UTF-16 and UTF-32 text is full
    of them), an encoding declaration naming anything else, or bytes that
    do not decode.  Expat is also told the document is UTF-8, whatever it
    says, so nothing reaches it in another encoding.

    :raise FeedError: not UTF-8.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        raise FeedError("a range feed is UTF-8 (this one starts with a UTF-16 or UTF-32 mark)")
    if b"\x00" in data:
        raise FeedError("a range feed is UTF-8 (this one has NUL bytes)")
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    declared = _ENCODING_DECLARATION_RE.match(body)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise FeedError(
            f"a range feed is UTF-8, not {declared.group(1).decode('ascii', 'replace')!r}"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FeedError(f"a range feed is UTF-8 ({e})") from None


def _read_range_xml(data: bytes) -> _ParsedFeed:
    """
    Read a range feed with the standard library's XML parser (expat), as
    strict UTF-8 XML: what is not well-formed RSS 2.0 is refused.  (The
    feed was read with feedparser before; its lenient machinery cost 0.85
    ms a message, most of a catch-up's time.)

    Any DOCTYPE, entity or notation declaration is refused by expat's own
    handlers, as it is met, whatever bytes spell it: a byte pattern missed
    one spelled in UTF-16.

    :raise FeedError: not UTF-8, has a DTD, not well-formed, not RSS 2.0,
        or the ``dw`` namespace declared wrongly.
    """
    _check_utf8_only(data)
    namespaces: dict[str, str] = {}
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse_declaration
    parser.EntityDeclHandler = _refuse_declaration
    parser.UnparsedEntityDeclHandler = _refuse_declaration
    parser.NotationDeclHandler = _refuse_declaration
    parser.ExternalEntityRefHandler = _refuse_declaration

    def name_of(expat_name: str) -> str:
        # "uri}local" for a namespaced name, as ElementTree spells "{uri}local".
        return "{" + expat_name if "}" in expat_name else expat_name

    def start_namespace(prefix: str | None, uri: str) -> None:
        prefix = prefix or ""
        if prefix in namespaces and namespaces[prefix] != uri:
            raise FeedError(f"the feed binds the prefix {prefix!r} twice")
        namespaces[prefix] = uri

    def start(tag: str, attributes: dict[str, str]) -> None:
        builder.start(
            name_of(tag), {name_of(key): value for key, value in attributes.items()}
        )

    parser.StartNamespaceDeclHandler = start_namespace
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(name_of(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
        root = builder.close()
    except expat.ExpatError as e:
        raise FeedError(f"not a well-formed feed: {e}") from None
    except AssertionError:
        raise FeedError("not a well-formed feed: no root element") from None
    if root is None or root.tag != "rss" or root.get("version") != "2.0":
        kind = "nothing known" if root is None else f"<{root.tag}>"
        raise FeedError(f"not an RSS 2.0 feed (it looks like {kind!r})")
    channels = root.findall("channel")
    if len(channels) != 1:
        raise FeedError(f"not an RSS 2.0 feed ({len(channels)} channels)")
    _check_namespaces(namespaces)
    channel = channels[0]
    entries = []
    for element in channel.findall("item"):
        entry = _dw_fields(element)
        date = element.findtext("pubDate")
        parsed_date = None if date is None else email.utils.parsedate_tz(date.strip())
        if parsed_date is not None:
            entry["published_parsed"] = time.gmtime(email.utils.mktime_tz(parsed_date))
        entries.append(entry)
    return _ParsedFeed(_dw_fields(channel), entries)


def _check_namespaces(namespaces: dict[str, str]) -> None:
    if namespaces.get(DW_PREFIX) != DW_NS:
        raise FeedError(f'the feed does not declare xmlns:{DW_PREFIX}="{DW_NS}"')
    for prefix, uri in namespaces.items():
        if uri == DW_NS and prefix != DW_PREFIX:
            raise FeedError(f"the feed binds {DW_NS} to {prefix!r}, not {DW_PREFIX!r}")


def parse_range_feed(data: bytes, expected_acct: str, first: int, last: int) -> RangePage:
    """
    Read a range feed fetched for ``expected_acct``'s messages ``first`` to
    ``last``, refusing anything else.

    The text of each message is read from ``dw:text`` (see the module's
    notes): it comes back exactly as it was sent.

    :param expected_acct: ``handle@authority`` asked for; the handle
        compares case-insensitively, the authority exactly.
    :raise FeedError: the feed is too large, not well-formed RSS 2.0 in
        UTF-8, is for another author or another range, or has an item that
        is for another author, outside the range, a repeated number, or not
        a valid message.  Nothing is dropped silently: one bad item refuses
        the whole page.
    """
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"the feed is {len(data)} bytes; the limit is {MAX_FEED_BYTES}")
    parsed = _read_range_xml(data)
    channel = parsed.channel
    acct = _check_author(channel, expected_acct, "the channel")
    served_first = _number(channel, "dw_first", "the channel")
    served_last = _number(channel, "dw_last", "the channel")
    more = _boolean(channel, "dw_more", "the channel")
    if served_first != first or not first - 1 <= served_last <= last:
        raise FeedError(
            f"asked for messages {first} to {last}, the feed serves"
            f" {served_first} to {served_last}"
        )
    entries = parsed.entries
    if len(entries) > MAX_ITEMS_PER_FEED:
        raise FeedError(f"{len(entries)} items; a range feed has at most {MAX_ITEMS_PER_FEED}")
    items: list[FeedItem] = []
    seen: set[int] = set()
    for index, entry in enumerate(entries, 1):
        item = _item(entry, expected_acct, served_first, served_last, index)
        if item.seq in seen:
            raise FeedError(f"message {item.seq} appears twice")
        seen.add(item.seq)
        items.append(item)
    items.sort(key=lambda item: item.seq)
    counts = None
    if all(f"dw_{name}" in channel for name in ("statuses", "followers", "friends")):
        counts = Counts(
            statuses=_number(channel, "dw_statuses", "the channel"),
            followers=_number(channel, "dw_followers", "the channel"),
            friends=_number(channel, "dw_friends", "the channel"),
        )
    latest_profile = None
    value = channel.get("dw_latestprofile")
    if value is not None:
        seq = value.get("seq") if isinstance(value, dict) else None
        if (not isinstance(seq, str) or _NUMBER_RE.match(seq) is None
                or not 1 <= int(seq) <= _MAX_NUMBER):
            raise FeedError(f"the channel: dw:latestProfile seq {seq!r} is not a message number")
        profile = _profile({"dw_profile": value}, "the channel")
        assert profile is not None
        latest_profile = (int(seq), profile)
    return RangePage(
        acct=acct, first=served_first, last=served_last, more=more, items=items, counts=counts,
        latest_profile=latest_profile,
    )
