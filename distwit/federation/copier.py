"""
Copying remote authors' messages: the range fetch of
docs/design/range-fetch.md.

For each remote author whose known last number is beyond what is held
here, :class:`Fetcher` asks the author's home server for the missing range
as an RSS feed, at most :data:`~distwit.federation.range_feed.MAX_ITEMS_PER_FEED` messages
a page, and stores what it gets.  Storing is idempotent, so a page fetched
twice does no harm.  A range that fails stays wanted and is tried again
after a backoff that doubles up to :attr:`Fetcher.max_backoff`; the
number of fetches running at once per peer server is bounded.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredSemaphore, ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from distwit.http import PeerLog
from distwit.federation.interfaces import IFetcher
from distwit.federation.lookup import fetch_one
from distwit.federation.range_feed import (
    MAX_FEED_BYTES,
    MAX_ITEMS_PER_FEED,
    RangePage,
    parse_range_feed,
)
from distwit.model import RETWEET
from distwit.model import Account
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore


@implementer(IFetcher)
class Fetcher:
    """
    Fills the gaps in this server's copies of remote authors.

    :param own_authority: this server's authority (to recognise replies to
        its own users' messages).
    :param per_peer: fetches running at once per peer server.
    """

    log = Logger()

    def __init__(
        self,
        store: IStore,
        client: IS2SClient,
        clock: Any,
        own_authority: str,
        per_peer: int = 2,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._own_authority = own_authority
        self._per_peer = per_peer
        self.max_backoff = max_backoff
        self._semaphores: dict[str, DeferredSemaphore] = {}
        self._running: dict[int, Deferred[Any]] = {}
        self._failures: dict[int, int] = {}
        self._not_before: dict[int, float] = {}
        #: Of each account backing off: its known last number when it
        #: failed, and its server.
        self._last_when_failed: dict[int, int] = {}
        self._peer_of: dict[int, str] = {}
        #: Originals of retweets being fetched, by (screen name, number).
        self._originals: dict[tuple[str, int], Deferred[Any]] = {}
        self.stopped = False
        #: Whether the operator blocked the server at an authority: nothing
        #: is fetched from it (``distwit server block``).
        self.blocked: Callable[[str], bool] = lambda authority: False
        #: Which servers fail (logged once per change).
        self._peers = PeerLog(self.log, "server")

    def want(self, account: Account) -> None:
        """
        Fetch what is missing of ``account`` soon (unless a fetch of it is
        running, or it is backing off after a failure).
        """
        if self.stopped or account.id in self._running or self.blocked(account.authority):
            return
        if account.last_seq > self._last_when_failed.get(account.id, account.last_seq):
            # A higher number than when it failed: the author's server was
            # up since, and posting.  Its other authors need not wait out
            # their backoff either.
            self._peer_alive(account.authority)
        if self._not_before.get(account.id, 0.0) > self._clock.seconds():
            return
        semaphore = self._semaphores.setdefault(
            account.authority, DeferredSemaphore(self._per_peer)
        )
        d = semaphore.run(lambda: ensureDeferred(self.fetch(account.id)))
        self._running[account.id] = d

        def done(result: Any) -> None:
            self._running.pop(account.id, None)

        def failed(failure: Any) -> None:
            failures = self._failures.get(account.id, 0) + 1
            self._failures[account.id] = failures
            delay = min(2.0**failures, self.max_backoff)
            self._not_before[account.id] = self._clock.seconds() + delay
            self._last_when_failed[account.id] = account.last_seq
            self._peer_of[account.id] = account.authority
            if not self.stopped:
                self._peers.failed(account.authority, failure, f"fetching {account.screen_name}")
                self.log.debug(
                    "fetching {acct} again in {delay:.0f}s", acct=account.screen_name, delay=delay
                )

        def succeeded(_: Any) -> None:
            self._peers.answered(account.authority)
            self._succeeded(account.id)

        d.addCallbacks(succeeded, failed).addBoth(done)

    def _succeeded(self, account_id: int) -> None:
        self._failures.pop(account_id, None)
        self._not_before.pop(account_id, None)
        self._last_when_failed.pop(account_id, None)
        self._peer_of.pop(account_id, None)

    def _peer_alive(self, authority: str) -> None:
        """
        Forget the backoff of every account of the server at ``authority``.
        """
        for account_id, peer in list(self._peer_of.items()):
            if peer == authority:
                self._succeeded(account_id)

    async def sweep(self, limit: int = 1000) -> None:
        """
        Look for every remote author with a gap, and want each: how ranges
        that failed are retried.
        """
        for account in await self._store.wanted(limit):
            self.want(account)

    async def fetch(self, account_id: int) -> int:
        """
        Fetch and store pages until the account is complete.  The next page
        is asked for while one is stored, so the author's server renders
        while this one writes.

        :return: how many messages were new here.
        """
        stored = 0
        ahead: tuple[int, Account, Deferred[RangePage]] | None = None
        try:
            while not self.stopped:
                account = await self._store.get_account(account_id)
                if account is None or account.synced_seq >= account.last_seq:
                    return stored
                first = account.synced_seq + 1
                # What was known when the page was asked for: the claim it
                # answers.
                asked = account
                if ahead is not None and ahead[0] == first:
                    asked = ahead[1]
                    page = await ahead[2]
                else:
                    _discard(ahead)
                    page = await self._page(account, first)
                ahead = None
                # The author's server serves up to its own last number: a
                # page ending short of what was asked says that number.
                denied = page.last < _page_end(asked, first) and not page.more
                if not denied and page.last + 1 <= account.last_seq:
                    ahead = (
                        page.last + 1,
                        account,
                        ensureDeferred(self._page(account, page.last + 1)),
                    )
                stored += await self._store.store_remote_items(
                    account.id,
                    page.first,
                    page.last,
                    page.items,
                    self._own_authority,
                    int(self._clock.seconds() * 1000),
                    page.counts,
                    latest_profile=page.latest_profile,
                )
                if any(item.kind == RETWEET for item in page.items):
                    for name, seq in await self._store.unheld_originals(
                        account.id, page.first, page.last
                    ):
                        self.want_original(account, name, seq)
                if denied:
                    await self._forget_claim(asked, page)
                after = await self._store.get_account(account_id)
                if after is not None and after.synced_seq >= after.last_seq:
                    continue
                if after is None or after.synced_seq <= account.synced_seq:
                    raise ValueError(
                        f"{self._url(account, first, page.last)} did not give message"
                        f" {first} of {account.handle.lower()}@{account.authority}"
                    )
            return stored
        finally:
            _discard(ahead)

    def want_original(self, retweeter: Account, name: str, seq: int) -> None:
        """
        Fetch the original of a retweet copied here (``name@authority``'s
        message ``seq``) from its author's server, and keep it aside: the
        retweet is then shown with it.  Only the author's server is asked,
        so nothing is taken on the retweeter's word.  A failure is logged
        and the retweet stays shown by its reference.
        """
        handle, _, authority = name.rpartition("@")
        key = (name, seq)
        if self.stopped or not handle or key in self._originals or self.blocked(authority):
            return
        # The retweeter's server's scheme: the federation's servers share one.
        scheme = retweeter.home_url.split("://", 1)[0] if "://" in retweeter.home_url else "https"
        semaphore = self._semaphores.setdefault(authority, DeferredSemaphore(self._per_peer))
        d = semaphore.run(
            lambda: ensureDeferred(self._original(handle, authority, seq, f"{scheme}://{authority}"))
        )
        self._originals[key] = d

        def failed(failure: Any) -> None:
            if not self.stopped:
                self.log.warn(
                    "fetching {name} #{seq}, retweeted by {acct}, failed ({error})",
                    name=name, seq=seq, acct=retweeter.screen_name,
                    error=failure.getErrorMessage(),
                )

        d.addErrback(failed).addBoth(lambda _: self._originals.pop(key, None))

    async def _original(self, handle: str, authority: str, seq: int, home_url: str) -> None:
        now = int(self._clock.seconds() * 1000)
        scheme = home_url.split("://", 1)[0]
        await fetch_one(
            self._store, self._client, self._own_authority, handle, authority, seq, scheme, now
        )

    async def _forget_claim(self, account: Account, page: RangePage) -> None:
        """
        The known last number came from a ping server, a claim, and the
        author's server denies it: forget it, or the author's next real
        numbers would seem known already and wait for the backoff.
        """
        confirmed = page.last
        if (
            not page.items
            and confirmed > 0
            and not await self._store.range_posts(account.id, confirmed, confirmed)
        ):
            # An empty page says only "nothing from `first` on", and the
            # copy started past anything held (from a claimed number when
            # the author was followed): what the author holds is unknown.
            confirmed = 0
        self.log.info(
            "{acct}: {claimed} was claimed; its server holds up to {last}",
            acct=account.screen_name,
            claimed=account.last_seq,
            last=page.last,
        )
        await self._store.forget_remote_claim(account.id, account.last_seq, confirmed)

    def _url(self, account: Account, first: int, last: int) -> str:
        return paths.range_feed_url(account.home_url, account.handle, first, last)

    async def _page(self, account: Account, first: int) -> RangePage:
        """
        Messages ``first`` on (a page's worth) of ``account``, as read.
        """
        last = _page_end(account, first)
        acct = f"{account.handle.lower()}@{account.authority}"
        data = await self._client.get_bytes(
            self._url(account, first, last), max_size=MAX_FEED_BYTES
        )
        return parse_range_feed(data, acct, first, last)

    def stop(self) -> "Deferred[Any]":
        from twisted.internet.defer import DeferredList

        self.stopped = True
        running = list(self._running.values()) + list(self._originals.values())
        for d in running:
            d.cancel()
        return DeferredList(running, consumeErrors=True)


def _page_end(account: Account, first: int) -> int:
    """
    The last number to ask for in a page of ``account`` from ``first``.
    """
    return min(account.last_seq, first + MAX_ITEMS_PER_FEED - 1)


def _discard(ahead: "tuple[int, Account, Deferred[Any]] | None") -> None:
    """
    Give up a page asked for ahead: cancel it, and let its failure (if it
    had one) go unreported: the page will be asked for again if needed.
    """
    if ahead is not None:
        ahead[2].addErrback(lambda failure: None)
        ahead[2].cancel()
