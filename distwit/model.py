"""
The records the twitter role keeps: accounts and posts.

These are plain immutable values handed between the store, the core and
the renderers; nothing here touches a database or the network.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Twitter's handle rule.  Handles compare case-insensitively.
HANDLE_RE = re.compile(r"\A[A-Za-z0-9_]{1,15}\Z")

#: Larger than every status id (ids are signed 64-bit): the default ``max_id``.
MAX_STATUS_ID = 2**63 - 1

#: The longest message, in Unicode code points after NFC normalisation.
MAX_POST_LENGTH = 140

#: The longest ``source`` of a post (the app that posted it), in code
#: points: an OAuth app's name is at most 64 (``api/oauth1.create_app``).
#: Every field of a post is bounded, so that a page of a range feed always
#: fits the fetch limit (``federation/range_feed.MAX_FEED_BYTES``).
MAX_SOURCE_LENGTH = 64

#: The source of a post made without an OAuth app (the pages, HTTP Basic).
WEB_SOURCE = "web"

#: What a single line of text shown to people never carries: C0 and C1
#: controls (line breaks included), DEL, surrogates and the non-characters
#: U+FFFE and U+FFFF (XML 1.0 cannot carry most of them at all).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: Handles that would shadow a path of the API or the pages.
RESERVED_HANDLES = frozenset(
    """
    1.1 api account accounts admin docs favorites followers friends friendships
    health help home login logout me oauth oauth2 openid search settings
    signin signout signup static statuses users well_known
    direct_messages
    notifications people
    channels
    """.split()
)


def is_valid_handle(handle: str) -> bool:
    """
    Does ``handle`` follow Twitter's rule (``[A-Za-z0-9_]{1,15}``)?
    """
    return HANDLE_RE.match(handle) is not None


def normalize_text(text: str) -> str:
    """
    The form in which a message is stored and counted: NFC, with
    surrounding whitespace removed.
    """
    return unicodedata.normalize("NFC", text).strip()


def post_length(text: str) -> int:
    """
    The length of a message as distwit counts it: code points after NFC.
    """
    return len(unicodedata.normalize("NFC", text))


def single_line(text: str) -> str:
    """
    ``text`` as one line fit for a name: NFC, every control character
    (line breaks too) and every character XML cannot carry removed,
    surrounding whitespace stripped.
    """
    return normalize_text(_CONTROL_RE.sub("", unicodedata.normalize("NFC", text)))


def limit_source(source: str) -> str:
    """
    A post's ``source`` as stored and sent: :func:`single_line`, at most
    :data:`MAX_SOURCE_LENGTH` code points, :data:`WEB_SOURCE` when empty.
    """
    return single_line(source)[:MAX_SOURCE_LENGTH].strip() or WEB_SOURCE


#: The kinds of items of an author's numbered log: a post (or its
#: tombstone, or a deletion record), a retweet, a profile change.
POST, RETWEET, PROFILE = "post", "retweet", "profile"

#: The longest fields of a profile in code points (Twitter's lengths, and
#: what a profile item of a range feed may carry), and of an image's URL.
PROFILE_LIMITS = {"name": 50, "description": 160, "location": 30, "url": 100}
MAX_IMAGE_URL_LENGTH = 300


@dataclass(frozen=True)
class Account:
    """
    Someone who posts: a local user (``authority`` empty) or a remote acct.

    :ivar id: this server's integer id for the account (the API ``user.id``).
    :ivar last_seq: the author's highest message number known here.
    """

    id: int
    handle: str
    authority: str
    name: str
    created_at: int  # milliseconds since the Unix epoch
    last_seq: int
    statuses_count: int
    followers_count: int
    friends_count: int
    #: For a remote account: its home server's public URL, and the number up
    #: to which every message of it is held here.
    home_url: str = ""
    synced_seq: int = 0
    #: The profile as the user wrote it (``account/update_profile``).
    description: str = ""
    location: str = ""
    url: str = ""
    favourites_count: int = 0
    #: A local user's image: the hash of its files here; a remote user's:
    #: the absolute URL from their latest profile item.  Empty: none.
    profile_image: str = ""
    #: The number of the latest profile item (a log item, see
    #: :data:`PROFILE`) applied to the account.
    profile_seq: int = 0

    @property
    def is_local(self) -> bool:
        return not self.authority

    @property
    def screen_name(self) -> str:
        """
        How clients see the account: ``handle`` for a local user,
        ``handle@authority`` for a remote one.
        """
        if self.is_local:
            return self.handle
        return f"{self.handle}@{self.authority}"

    def acct(self, own_authority: str) -> str:
        """
        ``handle@authority`` as the federation names it, for any account.
        """
        return f"{self.handle}@{self.authority or own_authority}"


@dataclass(frozen=True)
class Post:
    """
    One message, or the tombstone a deleted message leaves behind.

    :ivar id: the API status id, assigned when the post was stored here.
    :ivar seq: the author's dense sequence number (1, 2, 3, ...).
    """

    id: int
    author: Account
    seq: int
    text: str
    created_at: int  # milliseconds since the Unix epoch
    source: str
    in_reply_to_status_id: int | None
    deleted: bool
    #: The author of the post replied to, when that post is stored here.
    in_reply_to_account_id: int | None = None
    in_reply_to_screen_name: str | None = None
    #: The author's number of the post replied to.
    in_reply_to_seq: int | None = None
    #: On a deletion record, the number of the message it deleted.
    deletes_seq: int | None = None
    #: The accounts the text mentions that are known here, with where:
    #: ``(account, start, end)`` in code points.
    mentions: tuple[tuple[Account, int, int], ...] = ()
    #: How many local users favorited it.
    favorite_count: int = 0
    #: What the numbered item is: :data:`POST`, :data:`RETWEET` or
    #: :data:`PROFILE` (docs/design/log-items.md).
    kind: str = "post"
    #: On a retweet: the original's ``handle@authority`` and number, and the
    #: original itself when it is held here.
    retweet_acct: str | None = None
    retweet_seq: int | None = None
    retweeted_status: "Post | None" = None
    #: How many accounts retweeted it.
    retweet_count: int = 0

    @property
    def is_retweet(self) -> bool:
        return self.kind == RETWEET

    @property
    def display_text(self) -> str:
        """
        The text as people see it: a post's own; a retweet's as Twitter
        wrote it, ``RT @screen_name: original``, or ``RT @acct`` alone
        while the original is not held here.
        """
        if not self.is_retweet:
            return self.text
        original = self.retweeted_status
        if original is not None:
            return f"RT @{original.author.screen_name}: {original.text}"
        return f"RT @{self.retweet_acct or ''}"
