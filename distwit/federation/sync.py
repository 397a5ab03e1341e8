"""
The twitter role's sync service: the update check of
docs/design/update-check.md.

Every ``interval`` seconds (and at once after a local post) this server
makes one exchange with each ping server it uses: it reports the last
numbers of its own users that changed, keeps its subscriptions to the
remote authors its users follow, and learns which of those have new
messages.  The :class:`~distwit.federation.copier.Fetcher` then copies the
missing ranges from the authors' home servers.

Which ping servers answer for an acct is decided by rendezvous hashing
over the registry's live list, with ``replicas`` servers per acct.  When a
ping server answers with a new ``epoch`` (it restarted and lost its
table), or the list of ping servers changes, everything is reported and
subscribed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from distwit.config import LONG_POLL, PING_INTERVAL
from distwit.http import PeerLog, one_line
from distwit.federation.interfaces import IFetcher, IPingList
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore
from distwit.core.accts import BadAcct, authority_of, make_acct, rendezvous, split_acct


#: The most bytes of accts one exchange carries; a ping server takes at
#: most 1 MiB.
EXCHANGE_BUDGET = 600_000

#: Under a stream of local posts, at most one report per this many seconds.
REPORT_COALESCE = 0.05

#: Seconds before asking again for the ping servers when there are none.
EMPTY_RETRY = 1.0

#: Message numbers and cursors fit in a signed 64-bit integer (as the ping
#: servers and the database hold them).
MAX_NUMBER = 2**63 - 1


def is_number(value: Any) -> bool:
    """
    Whether ``value`` (read from JSON) is a message number or cursor: an
    integer (not a bool) from 0 to :data:`MAX_NUMBER`.
    """
    return type(value) is int and 0 <= value <= MAX_NUMBER


class RoundService(Service):
    """
    A service whose ``LoopingCall`` runs :meth:`round` through
    :meth:`_guarded_round`: a round that fails is logged (as
    :attr:`round_failed` says) and the loop goes on; the round in progress
    is kept in ``_round`` for ``stopService`` to cancel.
    """

    log = Logger()
    round_failed = "round failed"
    _round: "Deferred[Any] | None" = None
    _round_error: str | None = None

    async def round(self) -> None:
        raise NotImplementedError

    def _guarded_round(self) -> "Deferred[None]":
        """
        One round; a failure is logged and the loop goes on.
        """
        self._round = ensureDeferred(self.round())

        def failed(failure: Any) -> None:
            if not self.running:
                return
            # One line, once per cause (the traceback at debug level): a
            # round fails the same way every interval while a peer is down.
            error = one_line(failure)
            if error != self._round_error:
                self.log.warn("{what}: {error}", what=self.round_failed, error=error)
            self._round_error = error
            self.log.failure(self.round_failed, failure, level=LogLevel.debug)

        def succeeded(result: Any) -> Any:
            self._round_error = None
            return result

        def done(result: Any) -> Any:
            self._round = None
            return result

        return self._round.addCallbacks(succeeded, failed).addBoth(done)


@implementer(IPingList)
class RegistryPingList:
    """
    The live list from a registry over HTTP (:func:`~distwit.s2s.paths.registry_pings_url`).

    While the registry cannot be reached (or answers nonsense) the last
    list it gave is kept: the ping servers themselves are most likely still
    there, and delivery goes on.  The outage is logged once, and again when
    its cause changes or it ends.
    """

    log = Logger()

    def __init__(self, client: IS2SClient, registry_url: str) -> None:
        self._client = client
        self._url = paths.registry_pings_url(registry_url)
        self._known: list[str] = []
        self._outage: str | None = None

    def live_pings(self) -> "Deferred[list[str]]":
        def urls(body: Any) -> list[str]:
            found = sorted(str(entry["url"]).rstrip("/") for entry in body["pings"])
            if self._outage is not None:
                self.log.info("registry {url} answers again", url=self._url)
                self._outage = None
            self._known = found
            return list(found)

        def outage(failure: Any) -> list[str]:
            error = one_line(failure)
            if error != self._outage:
                self.log.warn(
                    "registry {url} unavailable ({error}); keeping the {count}"
                    " ping servers last known",
                    url=self._url,
                    error=error,
                    count=len(self._known),
                )
                self._outage = error
            return list(self._known)

        return self._client.get_json(self._url).addCallback(urls).addErrback(outage)


@implementer(IPingList)
class StaticPingList:
    """
    A fixed list of ping servers (tests, and small private federations).
    """

    def __init__(self, urls: list[str]) -> None:
        self._urls = sorted(url.rstrip("/") for url in urls)

    def live_pings(self) -> "Deferred[list[str]]":
        from twisted.internet.defer import succeed

        return succeed(list(self._urls))


@dataclass
class PingState:
    """
    What this server knows of its conversation with one ping server.
    """

    url: str
    epoch: str | None = None
    cursor: int | None = None
    #: Everything must be reported and subscribed again (new server, new
    #: epoch, or a changed list of ping servers).
    reset: bool = True
    #: Local accts whose last number this ping server has not acknowledged.
    pending_reports: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    unsubscribe: set[str] = field(default_factory=set)
    #: The exchange without wait in progress, and the long-poll.
    short: Deferred[Any] | None = None
    long: Deferred[Any] | None = None
    failures: int = 0


class SyncService(RoundService):
    """
    Keeps this server's users' numbers known to the ping servers and this
    server's copies of followed remote authors complete.

    :param interval: seconds between rounds (the *y* of
        docs/design/update-check.md).
    :param long_poll: seconds a ping server may hold an exchange open to
        answer as soon as something changes; 0 turns long-polling off.
    """

    round_failed = "sync round failed"

    name = "sync"
    log = Logger()

    def __init__(
        self,
        store: IStore,
        client: IS2SClient,
        pings: IPingList,
        fetcher: IFetcher,
        clock: Any,
        public_url: str,
        interval: float = PING_INTERVAL,
        long_poll: float = LONG_POLL,
        replicas: int = 2,
    ) -> None:
        self._store = store
        self._client = client
        self._pings = pings
        self._fetcher = fetcher
        self._clock = clock
        self.public_url = public_url
        self.authority = authority_of(public_url)
        self.interval = interval
        self.long_poll = long_poll
        self.replicas = replicas
        self._states: dict[str, PingState] = {}
        self._servers: list[str] = []
        self._local: dict[str, int] = {}
        self._subscriptions: set[str] = set()
        self._loaded = False
        self._loop: LoopingCall | None = None
        self._round: Deferred[Any] | None = None
        self._report_call: Any = None
        self._retry_call: Any = None
        self._last_report = float("-inf")
        #: Which ping servers fail (logged once per change).
        self._peers = PeerLog(self.log, "ping server")

    # Hooks for the rest of the twitter role

    def local_changed(self, handle: str, last: int) -> None:
        """
        A local user's last number is now ``last``: tell their ping servers
        now rather than at the next round.
        """
        acct = make_acct(handle, self.authority)
        self._local[acct] = max(last, self._local.get(acct, 0))
        for url in rendezvous(acct, self._servers, self.replicas):
            self._states[url].pending_reports.add(acct)
        self._schedule_report()

    def subscribe(self, acct: str) -> None:
        """
        A local user follows remote ``acct`` (perhaps the first to).
        """
        if acct in self._subscriptions:
            return
        self._subscriptions.add(acct)
        for url in rendezvous(acct, self._servers, self.replicas):
            self._states[url].subscribe.add(acct)
            self._states[url].unsubscribe.discard(acct)
        self._schedule_report()

    def unsubscribe(self, acct: str) -> None:
        """
        No local user follows remote ``acct`` any more.
        """
        if acct not in self._subscriptions:
            return
        self._subscriptions.discard(acct)
        for url in rendezvous(acct, self._servers, self.replicas):
            self._states[url].unsubscribe.add(acct)
            self._states[url].subscribe.discard(acct)

    async def reread(self) -> None:
        """
        Read again from the store what this service may not have been
        told (a process of the same server that could not reach it): every
        local user's last number, and which remote authors are followed.
        Whatever differs is reported or (un)subscribed as if told now.
        """
        for handle, last in await self._store.local_last_numbers():
            if last > self._local.get(make_acct(handle, self.authority), 0):
                self.local_changed(handle, last)
        followed = {
            make_acct(handle, authority)
            for handle, authority in await self._store.subscriptions()
        }
        for acct in sorted(followed - self._subscriptions):
            self.subscribe(acct)
        for acct in sorted(self._subscriptions - followed):
            self.unsubscribe(acct)

    @property
    def ping_servers(self) -> list[str]:
        """
        The ping servers (base URLs) in use now.
        """
        return list(self._servers)

    def responsible(self, acct: str) -> list[str]:
        """
        The ping servers (base URLs) that answer for ``acct`` now.
        """
        return rendezvous(acct, self._servers, self.replicas)

    # The service

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded_round)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for call in (self._report_call, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        self._report_call = self._retry_call = None
        pending = [self._round] if self._round is not None else []
        for state in self._states.values():
            pending += [d for d in (state.short, state.long) if d is not None]
        for d in pending:
            d.cancel()
        return DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)

    async def _load(self) -> None:
        if self._loaded:
            return
        for handle, last in await self._store.local_last_numbers():
            self._local[make_acct(handle, self.authority)] = last
        for handle, authority in await self._store.subscriptions():
            self._subscriptions.add(make_acct(handle, authority))
        self._loaded = True

    async def round(self) -> None:
        """
        Refresh the list of ping servers, then exchange with each that has
        no exchange in progress.
        """
        await self._load()
        servers = await self._pings.live_pings()
        if servers != self._servers:
            self._set_servers(servers)
        if not servers:
            # No ping server yet (a federation starting up): look again
            # soon rather than a whole interval later.
            self._retry_soon()
        for state in list(self._states.values()):
            if self.long_poll > 0:
                if state.long is None:
                    self._start_long_poll(state)
            elif state.short is None:
                self._start_exchange(state, wait=0)
        # Ranges that failed before, or were wanted before a restart.
        await self._fetcher.sweep()

    def _retry_soon(self) -> None:
        if self.running and self.interval > EMPTY_RETRY and (
            self._retry_call is None or not self._retry_call.active()
        ):
            self._retry_call = self._clock.callLater(EMPTY_RETRY, self._retry_round)

    def _retry_round(self) -> None:
        self._retry_call = None
        if self.running and self._round is None:
            self._guarded_round()

    def _set_servers(self, servers: list[str]) -> None:
        """
        The list changed: every ping server starts over, reported and
        subscribed in full for the accts it now answers for.
        """
        self.log.info("ping servers now {servers}", servers=servers)
        self._servers = servers
        old = self._states
        self._states = {}
        for url in servers:
            state = old.get(url) or PingState(url)
            state.reset = True
            state.pending_reports.clear()
            state.subscribe.clear()
            state.unsubscribe.clear()
            self._states[url] = state
        for acct in self._local:
            for url in rendezvous(acct, servers, self.replicas):
                self._states[url].pending_reports.add(acct)
        for acct in self._subscriptions:
            for url in rendezvous(acct, servers, self.replicas):
                self._states[url].subscribe.add(acct)
        for url, state in old.items():
            if url not in self._states:
                for d in (state.short, state.long):
                    if d is not None:
                        d.cancel()

    def _schedule_report(self) -> None:
        """
        Report soon: at once, or (under a stream of posts) one report per
        :data:`REPORT_COALESCE` seconds carrying everything since the last.
        """
        if not self.running or self._report_call is not None:
            return
        delay = max(0.0, self._last_report + REPORT_COALESCE - self._clock.seconds())
        self._report_call = self._clock.callLater(delay, self._report_now)

    def _report_now(self) -> None:
        self._report_call = None
        self._last_report = self._clock.seconds()
        for state in self._states.values():
            if state.short is None and (state.pending_reports or state.subscribe):
                self._start_exchange(state, wait=0)

    def _start_exchange(self, state: PingState, wait: float) -> None:
        d = ensureDeferred(self.exchange(state, wait))
        attribute = "long" if wait else "short"
        setattr(state, attribute, d)

        def done(result: Any) -> None:
            if getattr(state, attribute) is d:
                setattr(state, attribute, None)

        def succeeded(result: Any) -> None:
            done(result)
            if not wait and (state.pending_reports or state.subscribe):
                # What changed while this exchange was under way (after a
                # failure, the next round tries again instead).
                self._schedule_report()

        def failed(failure: Any) -> None:
            state.failures += 1
            if self.running:
                self._peers.failed(state.url, failure, "exchange")

        d.addCallbacks(succeeded, failed)
        d.addBoth(done)

    def _start_long_poll(self, state: PingState) -> None:
        """
        Exchange with ``wait`` over and over while the service runs; after
        a failure, wait for the next round.
        """

        async def loop() -> None:
            while self.running and self._states.get(state.url) is state:
                await self.exchange(state, self.long_poll)
                state.failures = 0

        d = ensureDeferred(loop())
        state.long = d

        def done(result: Any) -> None:
            if state.long is d:
                state.long = None

        def failed(failure: Any) -> None:
            state.failures += 1
            if self.running:
                self._peers.failed(state.url, failure, "long poll")

        d.addErrback(failed).addBoth(done)

    async def exchange(self, state: PingState, wait: float) -> None:
        """
        One exchange with one ping server: send reports and subscription
        changes, apply the changes it answers with.
        """
        reset = state.reset
        # At most EXCHANGE_BUDGET bytes of accts: the rest goes in the
        # exchanges that follow at once (a ping server takes 1 MiB).
        budget = [EXCHANGE_BUDGET]
        reports = {
            acct: self._local[acct]
            for acct in _within(sorted(a for a in state.pending_reports if a in self._local),
                                budget, extra=22)
        }
        subscribe = _within(sorted(state.subscribe), budget)
        unsubscribe = _within(sorted(state.unsubscribe), budget)
        body = {
            "server": self.public_url,
            "home": self.public_url,
            "epoch": state.epoch,
            "cursor": state.cursor,
            "reports": reports,
            "subscribe": subscribe,
            "unsubscribe": unsubscribe,
            "reset": reset,
        }
        url = paths.ping_exchange_url(state.url, wait)
        answer = await self._client.post_json(url, body, timeout=wait + 30)
        self._peers.answered(state.url)
        epoch, cursor, changes, refused = _parse_answer(answer)
        if refused:
            self.log.warn(
                "ping server {url} sent {count} bad entries (refused): {accts}",
                url=state.url,
                count=len(refused),
                accts=", ".join(refused[:5]),
            )
        if state.epoch is not None and epoch != state.epoch and not reset:
            # The ping server restarted: it knows nothing we told it.
            self.log.info("ping server {url} has a new epoch; reporting again", url=state.url)
            state.epoch, state.cursor, state.reset = epoch, None, True
            self._refill(state)
            self._schedule_report()
            return
        state.epoch = epoch
        if state.cursor is None or cursor > state.cursor or reset:
            state.cursor = cursor
        if reset:
            state.reset = False
        for acct, last in reports.items():
            if self._local.get(acct) == last:
                state.pending_reports.discard(acct)
        state.subscribe.difference_update(subscribe)
        state.unsubscribe.difference_update(unsubscribe)
        await self._apply(changes)

    def _refill(self, state: PingState) -> None:
        state.pending_reports = {
            acct for acct in self._local if state.url in self.responsible(acct)
        }
        state.subscribe = {
            acct for acct in self._subscriptions if state.url in self.responsible(acct)
        }
        state.unsubscribe.clear()

    async def _apply(self, changes: dict[str, tuple[int, str]]) -> None:
        for acct, (last, home) in changes.items():
            if acct not in self._subscriptions:
                continue
            handle, authority = split_acct(acct)
            if authority_of(home) != authority:
                self.log.warn(
                    "ignoring {acct}: home {home} is not its authority", acct=acct, home=home
                )
                continue
            account = await self._store.note_remote_last(handle, authority, last, home)
            if account is not None and account.synced_seq < account.last_seq:
                self._fetcher.want(account)


def _within(accts: list[str], budget: list[int], extra: int = 3) -> list[str]:
    """
    The first of ``accts`` that fit in what is left of ``budget`` (bytes
    of JSON, ``extra`` more per acct for quotes, commas and numbers),
    taking it off the budget.
    """
    taken = []
    for acct in accts:
        cost = len(acct.encode("utf-8")) + extra
        if cost > budget[0]:
            break
        budget[0] -= cost
        taken.append(acct)
    return taken


def _parse_answer(
    answer: Any,
) -> tuple[str, int, dict[str, tuple[int, str]], list[str]]:
    """
    Check the shape of a ping server's answer.

    :return: epoch, cursor, the well-formed changes, and the accts whose
        entries were refused (a bad acct, a number outside 64 bits): those
        are dropped, so that one bad entry does not make every exchange with
        that ping server fail (its cursor moves past it).
    :raise ValueError: it is not what a ping server says.
    """
    if not isinstance(answer, dict):
        raise ValueError("exchange answer is not an object")
    epoch, cursor, changes = answer.get("epoch"), answer.get("cursor"), answer.get("changes")
    if not isinstance(epoch, str) or not is_number(cursor) or not isinstance(changes, dict):
        raise ValueError("exchange answer lacks epoch, cursor or changes")
    parsed: dict[str, tuple[int, str]] = {}
    refused: list[str] = []
    for acct, entry in changes.items():
        try:
            split_acct(acct)
        except BadAcct:
            refused.append(repr(acct)[:80])
            continue
        if (
            not isinstance(entry, dict)
            or not is_number(entry.get("last"))
            or not isinstance(entry.get("home"), str)
        ):
            refused.append(acct)
            continue
        parsed[acct] = (entry["last"], entry["home"].rstrip("/"))
    return epoch, cast(int, cursor), parsed, refused
