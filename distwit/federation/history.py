"""
History on demand (docs/design/reach.md): a reader paging a remote
author's timeline past what this server holds gets the older messages
fetched from the author's server, as range feeds, and stored below what
is held.

A newly followed author is copied from :data:`~distwit.federation.follows.HISTORY`
messages back; what is older stays on the home server until someone reads
that far.  :class:`History` is the
:class:`~distwit.core.timelines.HistorySource` of the timelines.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import DeferredLock
from twisted.logger import Logger

from distwit.core.accts import make_acct
from distwit.federation.range_feed import (
    MAX_FEED_BYTES,
    MAX_ITEMS_PER_FEED,
    FeedItem,
    parse_range_feed,
)
from distwit.model import Account
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore

#: Most range pages fetched for one read (a page is at most 200
#: messages): a read that finds only tombstones does not fetch forever.
MAX_PAGES_PER_READ = 3

#: Seconds a server whose history could not be fetched is left alone: a
#: reader's request does not wait out a timeout again at once.
FAILURE_PAUSE = 30.0


class History:
    """
    Fetches older messages of remote authors when they are read.

    :param own_authority: this server's authority (replies to its users).
    """

    log = Logger()

    def __init__(
        self, store: IStore, client: IS2SClient, clock: Any, own_authority: str
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._own_authority = own_authority
        self._locks: dict[int, DeferredLock] = {}
        #: Authority -> when it may be asked again after a failure.
        self._paused: dict[str, float] = {}

    async def fetch_older(self, account_id: int, wanted: int) -> int:
        """
        Fetch messages older than what is held of a remote account until
        ``wanted`` posts (not counting tombstones) came, the first message
        is held, or :data:`MAX_PAGES_PER_READ` pages were read.  One fetch
        per account at a time: a second reader waits for the first.

        :return: how many messages were stored.  A failure of the author's
            server is logged, not raised: the reader gets what is held.
        """
        lock = self._locks.setdefault(account_id, DeferredLock())
        await lock.acquire()
        try:
            return await self._fetch(account_id, wanted)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(account_id, None)

    async def _fetch(self, account_id: int, wanted: int) -> int:
        account = await self._store.get_account(account_id)
        if (
            account is None
            or account.is_local
            or not account.home_url
            or account.synced_seq <= 0
            or self._paused.get(account.authority, 0.0) > self._clock.seconds()
        ):
            return 0
        stored = posts = 0
        for _ in range(MAX_PAGES_PER_READ):
            start = await self._store.held_from(account_id)
            if start <= 1:
                break
            first, last = max(1, start - MAX_ITEMS_PER_FEED), start - 1
            try:
                items = await self._range(account, first, last)
            except Exception as e:
                self._paused[account.authority] = self._clock.seconds() + FAILURE_PAUSE
                self.log.warn(
                    "history of {acct} ({first}..{last}) not fetched: {error}",
                    acct=account.screen_name, first=first, last=last, error=str(e),
                )
                return stored
            new = await self._store.store_history_items(
                account_id, items, self._own_authority, int(self._clock.seconds() * 1000)
            )
            if not new:
                break
            stored += new
            posts += sum(1 for item in items if not item.deleted)
            if posts >= wanted:
                break
        self._paused.pop(account.authority, None)
        return stored

    async def _range(self, account: Account, first: int, last: int) -> list[FeedItem]:
        """
        Every message ``first..last`` of ``account`` from its server (more
        than one request if the server cuts the answer short).
        """
        acct = make_acct(account.handle, account.authority)
        items: list[FeedItem] = []
        while first <= last:
            url = paths.range_feed_url(account.home_url, account.handle, first, last)
            data = await self._client.get_bytes(url, max_size=MAX_FEED_BYTES)
            page = parse_range_feed(data, acct, first, last)
            items.extend(page.items)
            if page.last < first or not page.more:
                break
            first = page.last + 1
        return items
