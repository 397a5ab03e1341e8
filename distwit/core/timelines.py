"""
What people read: timelines, searches, follow lists and single posts and
accounts, for every face (the API, the pages, the feeds).

The faces read through here, never from the store itself, so a rule about
who may see what (a block, a suspended account) has one place to live.
"""

from __future__ import annotations

from typing import Protocol

from distwit.core.cache import ReadCache
from distwit.model import Account, Post
from distwit.store.interfaces import Hidden, IStore


class HistorySource(Protocol):
    """
    Where older messages of remote authors come from when a reader pages
    past what is held (:class:`distwit.federation.history.History`).
    """

    async def fetch_older(self, account_id: int, wanted: int) -> int:
        """
        Fetch and store older messages of a remote account, at least
        ``wanted`` posts' worth if its server has them; how many messages
        were stored (0: nothing older, or not a remote account whose copy
        has begun).
        """


class Timelines:
    """
    Reads of one twitter server.  Timelines are newest first; ``since_id``
    is exclusive and ``max_id`` inclusive (``None``: no bound).
    """

    def __init__(self, store: IStore) -> None:
        self._store = store
        #: The hot reads (a home timeline, what its reader favorited and
        #: retweeted, what the reader hides), kept while nothing is written
        #: (:class:`~distwit.core.cache.ReadCache`).
        self.reads = ReadCache(getattr(store, "write_generation", lambda: None))
        #: Older messages of remote authors, fetched when read (set by the
        #: composition root when the server is federated).
        self.history: HistorySource | None = None

    async def home_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        include_rts: bool = True,
    ) -> list[Post]:
        """
        The user's own posts and those of everyone they follow (their
        retweets too, unless ``include_rts`` is false).
        """
        posts: list[Post] = await self.reads.read(
            ("home", account_id, count, since_id, max_id, include_rts),
            lambda: self._store.home_timeline(account_id, count, since_id, max_id, include_rts),
        )
        return list(posts)

    async def user_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        include_rts: bool = True, viewer: int | None = None,
    ) -> list[Post]:
        """
        One author's posts (and retweets, unless ``include_rts`` is false;
        without retweets of what ``viewer`` blocks).
        For a remote author, when fewer than ``count`` are held below
        ``max_id``, older ones are fetched from the author's server first
        (:attr:`history`): any post of any age can be read by paging with
        ``max_id``.  Not when polling with ``since_id``: what is new is
        never history.
        """
        posts: list[Post] = await self._store.user_timeline(
            account_id, count, since_id, max_id, include_rts, viewer
        )
        if len(posts) < count and since_id is None and self.history is not None:
            if await self.history.fetch_older(account_id, count - len(posts)):
                posts = await self._store.user_timeline(
                    account_id, count, since_id, max_id, include_rts, viewer
                )
        return posts

    async def retweets_of_me(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> list[Post]:
        """
        The user's posts that others retweeted.
        """
        posts: list[Post] = await self._store.retweets_of_me(account_id, count, since_id, max_id)
        return posts

    async def retweets_of(self, post_id: int, count: int, viewer: int | None = None
                          ) -> list[Post]:
        """
        The retweets of a post held here, newest first (not those by
        accounts ``viewer`` blocks).
        """
        posts: list[Post] = await self._store.retweets_of(post_id, count, viewer)
        return posts

    async def public_timeline(
        self, count: int, since_id: int | None, max_id: int | None, viewer: int | None = None
    ) -> list[Post]:
        """
        The posts of this server's own users (not those ``viewer`` blocks).
        """
        posts: list[Post] = await self._store.public_timeline(count, since_id, max_id, viewer)
        return posts

    async def mentions_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> list[Post]:
        """
        Posts that mention the user.
        """
        posts: list[Post] = await self._store.mentions_timeline(
            account_id, count, since_id, max_id
        )
        return posts

    async def favorites_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        viewer: int | None = None,
    ) -> list[Post]:
        """
        The posts the user favorited, latest favorite first (not those of
        accounts ``viewer`` blocks).
        """
        posts: list[Post] = await self._store.favorites_timeline(
            account_id, count, since_id, max_id, viewer
        )
        return posts

    async def search_posts(
        self, query: str, count: int, since_id: int | None, max_id: int | None,
        viewer: int | None = None,
    ) -> list[Post]:
        """
        Posts whose text holds ``query`` (not those of accounts ``viewer``
        blocks or mutes).
        """
        posts: list[Post] = await self._store.search_posts(
            query, count, since_id, max_id, viewer
        )
        return posts

    # What a reader hides (docs/design/blocks.md)

    async def hidden(self, account_id: int | None) -> Hidden:
        """
        What the account hides of others: the ids of the accounts it
        blocks (``.blocked``: nothing of theirs anywhere), mutes
        (``.muted``; ``.silenced`` is both: not in the home timeline,
        mentions, notifications) and takes no retweets of
        (``.no_retweets``).  The one place every face asks; one indexed
        read, falsy when the account hides nobody (and for ``None``, a
        reader not signed in).
        """
        if account_id is None:
            return Hidden()
        found: Hidden = await self.reads.read(
            ("hidden", account_id), lambda: self._store.hidden_accounts(account_id)
        )
        return found

    async def hiding_page(
        self, account_id: int, what: str, before: int | None, count: int
    ) -> list[Account]:
        """
        Up to ``count`` accounts the account blocks (``what``
        ``"blocking"``), mutes (``"muting"``) or takes no retweets of
        (``"no_retweets"``), with an id below ``before``, highest id first.
        """
        page: list[Account] = await self._store.hiding_page(account_id, what, before, count)
        return page

    async def hiding_between(self, account_id: int, target_id: int) -> set[str]:
        """
        What the account hides of the target: ``"blocking"``, ``"muting"``,
        ``"no_retweets"``, or fewer.
        """
        found: set[str] = await self._store.hiding_between(account_id, target_id)
        return found

    async def visible(self, account_id: int | None, posts: list[Post],
                      silenced: bool = False) -> list[Post]:
        """
        ``posts`` without those ``account_id`` blocks (with ``silenced``,
        mutes too): by their author, or, for a retweet, its original's
        author.  For lists assembled outside the timelines' SQL
        (conversations, notifications).
        """
        hidden = await self.hidden(account_id)
        if not hidden:
            return posts
        authors = hidden.silenced if silenced else hidden.blocked

        def shown(post: Post) -> bool:
            if post.author.id in authors:
                return False
            original = post.retweeted_status
            return original is None or original.author.id not in authors

        return [post for post in posts if shown(post)]

    async def marked_among(
        self, account_id: int, post_ids: list[int]
    ) -> tuple[set[int], set[int]]:
        """
        Which of ``post_ids`` the account favorited, and which it retweeted.
        """
        found: tuple[set[int], set[int]] = await self.reads.read(
            ("marked", account_id, tuple(post_ids)),
            lambda: self._store.marked_among(account_id, post_ids),
        )
        return set(found[0]), set(found[1])

    async def following_page(
        self, account_id: int, followers: bool, before: int | None, count: int
    ) -> list[Account]:
        """
        Up to ``count`` accounts the account follows (``followers``: that
        follow it) with an id below ``before``, highest id first.
        """
        page: list[Account] = await self._store.following_page(
            account_id, followers, before, count
        )
        return page

    async def is_following(self, follower_id: int, followee_id: int) -> bool:
        following: bool = await self._store.is_following(follower_id, followee_id)
        return following

    async def search_accounts(self, query: str, count: int, offset: int) -> list[Account]:
        """
        Accounts whose handle or name holds ``query``, local ones first.
        """
        found: list[Account] = await self._store.search_accounts(query, count, offset)
        return found

    async def account(self, account_id: int) -> Account | None:
        """
        The account, or ``None``; kept while nothing is written (every
        OAuth request reads its user).
        """
        found: Account | None = await self.reads.read(
            ("account", account_id), lambda: self._store.get_account(account_id),
            keep_none=False,
        )
        return found

    async def post(self, post_id: int) -> Post | None:
        """
        The post, its tombstone if deleted, or ``None``.
        """
        found: Post | None = await self._store.get_post(post_id)
        return found

    async def latest_post(self, account_id: int) -> Post | None:
        """
        The author's newest live post.
        """
        found: Post | None = await self._store.latest_post(account_id)
        return found


__all__ = ["Hidden", "Timelines"]
