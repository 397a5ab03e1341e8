"""
Following across federations (docs/design/reach.md): an author whose
server reports to ping servers this server does not use (another
registry's) is *direct*: its new numbers are learned from its own server,
by polling its last-number document (``GET /s2s/last/HANDLE.json``) at the
ping interval with ``If-None-Match``, so that a poll that finds nothing
new is a 304 without a body.  What it learns goes to the copier exactly as
the sync service's does: ``note_remote_last``, then ``Fetcher.want``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from twisted.internet.defer import CancelledError, Deferred, DeferredList, DeferredSemaphore
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.http_headers import Headers
import treq

from distwit import __version__
from distwit.config import PING_INTERVAL
from distwit.http import PeerLog
from distwit.core.accts import make_acct
from distwit.federation.interfaces import IFetcher
from distwit.federation.sync import RoundService, is_number
from distwit.model import Account
from distwit.s2s import paths
from distwit.s2s.interfaces import S2SResponseError
from distwit.store.interfaces import IStore

#: The largest last-number document read, in bytes.
MAX_LAST_BYTES = 4096

#: Seconds a poll may take, from connecting to the last byte.
POLL_TIMEOUT = 10.0


@dataclass(frozen=True)
class LastAnswer:
    """
    A last-number document as fetched: its ETag and its decoded body.
    """

    etag: str | None
    body: Any


#: ``(url, etag) -> the answer, or None when not modified``.
GetLast = Callable[[str, "str | None"], Awaitable["LastAnswer | None"]]


class _TooBig(Exception):
    pass


class ConditionalGetter:
    """
    ``GET`` with ``If-None-Match`` through the process's outgoing HTTP
    client (which holds the outbound policy: no private address unless the
    operator allowed them), capped in time and size, no redirects.

    :param http_client: a treq ``HTTPClient``.
    """

    def __init__(self, http_client: Any, clock: Any, public_url: str,
                 timeout: float = POLL_TIMEOUT) -> None:
        self._http = http_client
        self._clock = clock
        self._agent = f"distwit/{__version__} (+{public_url})"
        self._timeout = timeout

    async def get(self, url: str, etag: str | None) -> LastAnswer | None:
        headers = {b"accept": [b"application/json"], b"user-agent": [self._agent.encode()]}
        if etag:
            headers[b"if-none-match"] = [etag.encode("latin-1")]
        try:
            response = await self._http.request(
                "GET", url, headers=Headers(headers), timeout=self._timeout,
                reactor=self._clock, allow_redirects=False, unbuffered=True,
            )
        except CancelledError:
            raise
        except Exception:
            # Why (refused, no such host, a private address) is not the
            # business of whoever named the server.
            raise S2SResponseError(f"GET {url}: no answer") from None
        chunks: list[bytes] = []

        def collect(data: bytes) -> None:
            if sum(map(len, chunks)) + len(data) > MAX_LAST_BYTES:
                raise _TooBig()
            chunks.append(data)

        reading = treq.collect(response, collect)
        timer = self._clock.callLater(self._timeout, reading.cancel)
        try:
            await reading
        except _TooBig:
            raise S2SResponseError(f"GET {url}: over {MAX_LAST_BYTES} bytes") from None
        except Exception:
            raise S2SResponseError(f"GET {url}: the answer was not read") from None
        finally:
            if timer.active():
                timer.cancel()
        if response.code == 304:
            return None
        if response.code != 200:
            raise S2SResponseError(f"GET {url}: HTTP {response.code}")
        try:
            body = json.loads(b"".join(chunks))
        except ValueError:
            raise S2SResponseError(f"GET {url}: the answer is not JSON") from None
        found = response.headers.getRawHeaders(b"etag")
        return LastAnswer(found[0].decode("latin-1") if found else None, body)


@dataclass
class _PollState:
    etag: str | None = None
    failures: int = 0
    not_before: float = 0.0


class DirectPoller(RoundService):
    """
    Polls the servers of direct authors that local users follow.

    :param get_last: fetches a last-number document conditionally
        (:meth:`ConditionalGetter.get`).
    :param registry: the registry of our ping servers: an author whose
        server names it is polled no more (the ping servers tell).
    :param interval: seconds between polls of one author.
    :param concurrency: polls running at once.
    :param max_backoff: the longest wait after failures, in seconds.
    """

    round_failed = "direct poll round failed"

    name = "direct"
    log = Logger()

    def __init__(
        self,
        store: IStore,
        get_last: GetLast,
        fetcher: IFetcher,
        clock: Any,
        registry: str = "",
        interval: float = PING_INTERVAL,
        concurrency: int = 4,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._get_last = get_last
        self._fetcher = fetcher
        self._clock = clock
        self._registry = registry.rstrip("/")
        self.interval = interval
        self.max_backoff = max_backoff
        self._semaphore = DeferredSemaphore(concurrency)
        #: Which servers fail (logged once per change).
        self._peers = PeerLog(self.log, "server")
        self._states: dict[int, _PollState] = {}
        self._polls: dict[int, Deferred[Any]] = {}
        self._loop: LoopingCall | None = None
        self._round: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded_round)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        pending = list(self._polls.values())
        if self._round is not None:
            pending.append(self._round)
        for d in pending:
            d.cancel()
        return DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)

    async def round(self) -> None:
        """
        Start a poll of every direct author that is due and not being
        polled (at most ``concurrency`` run at once; the others wait).
        """
        accounts = await self._store.direct_subscriptions()
        followed = {account.id for account in accounts}
        for account_id in list(self._states):
            if account_id not in followed:
                del self._states[account_id]
        now = self._clock.seconds()
        for account in accounts:
            state = self._states.setdefault(account.id, _PollState())
            if account.id in self._polls or state.not_before > now:
                continue
            self._start(account, state)

    def _start(self, account: Account, state: _PollState) -> None:
        d = self._semaphore.run(lambda: ensureDeferred(self.poll(account, state)))
        self._polls[account.id] = d

        def succeeded(result: Any) -> None:
            self._peers.answered(account.authority)
            state.failures = 0
            state.not_before = 0.0

        def failed(failure: Any) -> None:
            if failure.check(CancelledError):
                return
            state.failures += 1
            delay = min(self.interval * 2.0**state.failures, self.max_backoff)
            state.not_before = self._clock.seconds() + delay
            self._peers.failed(account.authority, failure, f"polling {account.screen_name}")
            self.log.debug(
                "polling {acct} again in {delay:.0f}s", acct=account.screen_name, delay=delay,
            )

        def done(result: Any) -> None:
            if self._polls.get(account.id) is d:
                del self._polls[account.id]

        d.addCallbacks(succeeded, failed).addBoth(done)

    async def poll(self, account: Account, state: _PollState) -> None:
        """
        One conditional fetch of an author's last number; a new one goes
        to the copier.
        """
        answer = await self._get_last(paths.last_url(account.home_url, account.handle),
                                      state.etag)
        if answer is None:
            return  # not modified
        acct = make_acct(account.handle, account.authority)
        body = answer.body
        if not isinstance(body, dict) or body.get("acct") != acct or not is_number(
            body.get("last")
        ):
            raise S2SResponseError(f"the last number of {acct} is not {{acct, last}}")
        state.etag = answer.etag
        registry = body.get("registry")
        if self._registry and isinstance(registry, str) and registry.rstrip("/") == self._registry:
            # It reports to our ping servers now: they will tell.
            await self._store.set_direct(account.id, False)
        updated = await self._store.note_remote_last(
            account.handle, account.authority, body["last"], account.home_url
        )
        if updated is not None and updated.synced_seq < updated.last_seq:
            self._fetcher.want(updated)
