"""
Messages of remote authors fetched on demand from their own servers and
kept *aside*: stored here so they can be shown (a mention, a reply, a
post of a thread, the original of a retweet) without making the author
one whose whole log this server copies.

The range feed is the one the copier reads
(:mod:`distwit.federation.copier`), asked for one number or a few; only
the author's server is asked, so nothing is taken on another server's
word; what is stored aside does not move the account's ``synced_seq`` or
``last_seq``, so the copier's idea of what is held and what is wanted is
unchanged.  :class:`Lookup` keeps every item of a range (the notices);
:func:`fetch_one` keeps one post (the copier's originals of retweets, the
threads: docs/design/threads.md).
"""

from __future__ import annotations

from typing import Any

from distwit.federation.range_feed import (
    MAX_FEED_BYTES,
    MAX_ITEMS_PER_FEED,
    RangePage,
    parse_range_feed,
)
from distwit.model import Account, Post
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore


class Lookup:
    """
    Reads messages of remote authors from their home servers on demand.

    :param own_authority: this server's authority (to recognise replies to
        its own users' messages).
    """

    def __init__(self, store: IStore, client: IS2SClient, clock: Any, own_authority: str) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._own_authority = own_authority

    async def fetch_range(self, account: Account, first: int, last: int) -> RangePage:
        """
        Messages ``first..last`` of remote ``account`` as its home server
        serves them (at most :data:`MAX_ITEMS_PER_FEED`), not stored.

        :raise ValueError: a range that is empty or too long, or an account
            with no known home server.
        :raise S2SResponseError: the home server did not answer well.
        :raise FeedError: its answer is not a range feed of that account.
        """
        if first < 1 or last < first or last - first + 1 > MAX_ITEMS_PER_FEED:
            raise ValueError(f"cannot fetch messages {first}..{last}")
        if account.is_local or not account.home_url:
            raise ValueError(f"{account.screen_name} has no known home server")
        url = paths.range_feed_url(account.home_url, account.handle, first, last)
        data = await self._client.get_bytes(url, max_size=MAX_FEED_BYTES)
        acct = f"{account.handle.lower()}@{account.authority}"
        return parse_range_feed(data, acct, first, last)

    async def store_aside(self, account: Account, page: RangePage) -> list[Post]:
        """
        Keep the messages of ``page`` (idempotently), leaving what the
        copier holds and wants of ``account`` as it was.

        :return: the messages of the page's range held here now.
        """
        if page.items or page.counts is not None or page.latest_profile is not None:
            await self._store.store_remote_items(
                account.id,
                page.first,
                page.last,
                page.items,
                self._own_authority,
                int(self._clock.seconds() * 1000),
                page.counts,
                aside=True,
                latest_profile=page.latest_profile,
            )
        if page.last < page.first:
            return []
        return await self._store.range_posts(account.id, page.first, page.last)

    async def fetch_aside(self, account: Account, first: int, last: int) -> list[Post]:
        """
        Fetch messages ``first..last`` of ``account`` and keep them aside.
        """
        return await self.store_aside(account, await self.fetch_range(account, first, last))


def home_url_of(account: Account, scheme: str) -> str:
    """
    Where ``account``'s server answers: the home URL known of it, else its
    authority with ``scheme`` (the federation's servers share one).
    """
    return account.home_url or f"{scheme}://{account.authority}"


async def fetch_one(
    store: IStore,
    client: IS2SClient,
    own_authority: str,
    handle: str,
    authority: str,
    seq: int,
    scheme: str,
    now: int,
) -> Account:
    """
    Fetch message ``seq`` of ``handle@authority`` from its author's server
    and keep it aside (a post; a tombstone or another kind of item is not
    kept).  A message held already is not stored again.

    :param scheme: the scheme of the author's server's URL when no home
        URL is known of the author.
    :param now: the time it is stored at, in milliseconds.
    :return: the author's account here (created if it was not known).
    :raise S2SResponseError: the author's server did not answer it.
    :raise ValueError: its answer was no range feed of that message.
    """
    account = await store.ensure_account(handle, authority, now)
    data = await client.get_bytes(
        paths.range_feed_url(home_url_of(account, scheme), account.handle, seq, seq),
        max_size=MAX_FEED_BYTES,
    )
    page = parse_range_feed(data, f"{handle.lower()}@{authority}", seq, seq)
    for item in page.items:
        await store.store_remote_original(account.id, item, own_authority, now)
    return account
