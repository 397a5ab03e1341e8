"""
The registry role's service: the live list of ping servers.

Ping servers register and then send a heartbeat every
``heartbeat_interval`` seconds (both are the same signed
``POST /register``, see :mod:`distwit.registry.resource`).  A ping server
not heard from for three intervals is dropped by a sweep that runs every
interval, so it leaves the list between three and four intervals after
its last heartbeat.

The list lives in memory and is written through to a small store
(:mod:`distwit.registry.store`, given by the composition root, which also
builds the HTTP resource over this service:
:class:`~distwit.registry.resource.RegistryResource`) that is read back
when the service starts:
a restarted registry forgets no one, and drops at once whoever fell silent
while it was down.

Its ``version`` changes whenever the set of live ping servers or one of
their keys changes, and only then, so twitter servers can tell at a glance
whether they must rehash their accts over a new list.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from distwit.registry.interfaces import IRegistryStore
from distwit.registry.store import RegistryEntry

#: A ping server silent for this many heartbeat intervals is dropped.
MISSED_HEARTBEATS = 3


class RegistryStopped(Exception):
    """
    A registration arrived while the service is stopped or stopping.
    """


def list_version(entries: Any) -> str:
    """
    The version of a list of ping servers: a hash of its sorted
    ``(url, key)`` pairs.  The same servers with the same keys give the
    same version, in any order, across restarts and on any registry.
    """
    pairs = sorted((entry.public_url, entry.public_key) for entry in entries)
    encoded = json.dumps(pairs, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:32]


class RegistryService(Service):
    """
    Keeps the list of live ping servers.

    :param store: where the list is kept between restarts (read back
        when the service starts, closed when it stops).
    :param clock: times heartbeats and the sweep.
    :param heartbeat_interval: the seconds between two heartbeats that
        ping servers are told to keep; three missed ones drop a server.
    """

    name = "registry"
    log = Logger()

    def __init__(
        self,
        store: IRegistryStore,
        clock: IReactorTime,
        heartbeat_interval: float = 10.0,
    ) -> None:
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be positive, not {heartbeat_interval!r}")
        self.clock = clock
        self.heartbeat_interval = float(heartbeat_interval)
        self._given_store = store
        self._store: IRegistryStore | None = None
        self._entries: dict[str, RegistryEntry] = {}
        self._version = list_version([])
        self._loaded = False
        self._load_waiters: list[Deferred[None]] = []
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None
        self._writes: set[Deferred[None]] = set()

    # What the routes (and an in-process twitter role) use

    @property
    def version(self) -> str:
        """
        The current list's version (see :func:`list_version`).
        """
        return self._version

    @property
    def stale_after(self) -> float:
        """
        Seconds of silence after which a ping server is dropped.
        """
        return MISSED_HEARTBEATS * self.heartbeat_interval

    def entries(self) -> list[RegistryEntry]:
        """
        The live ping servers, sorted by URL.
        """
        return [self._entries[url] for url in sorted(self._entries)]

    def when_loaded(self) -> Deferred[None]:
        """
        A Deferred that fires once the list has been read back from the
        store (at once if it has).  Routes wait for it so that nobody sees
        the half-empty list of a registry that is still starting.
        """
        if self._loaded:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._load_waiters.append(waiter)
        return waiter

    def register(self, public_url: str, public_key: str) -> dict[str, Any]:
        """
        Record a registration or heartbeat of a ping server whose request
        was signed by ``public_url``, and write it through to the store.

        The answer does not wait for the disk: the live list is what
        matters, and the next heartbeat writes again if this write fails
        (which is logged).

        :return: the answer to the ping server: ``version`` and
            ``heartbeat_interval``.
        :raise RegistryStopped: the service is not running.
        """
        if not self.running or self._store is None:
            raise RegistryStopped("the registry is not running")
        now = self.clock.seconds()
        old = self._entries.get(public_url)
        first_seen = now if old is None else old.first_seen
        self._entries[public_url] = RegistryEntry(public_url, public_key, first_seen, now)
        if old is None:
            self.log.info("ping server {url} registered", url=public_url)
            self._list_changed()
        elif old.public_key != public_key:
            self.log.info("ping server {url} changed its key", url=public_url)
            self._list_changed()
        self._write(self._store.upsert(public_url, public_key, now), "the heartbeat of", public_url)
        return {"version": self._version, "heartbeat_interval": self.heartbeat_interval}

    def listing(self) -> dict[str, Any]:
        """
        The body of ``GET /pings``.
        """
        return {
            "version": self._version,
            "heartbeat_interval": self.heartbeat_interval,
            "pings": [
                {"url": e.public_url, "public_key": e.public_key, "last_heard": e.last_heard}
                for e in self.entries()
            ],
        }

    def live_pings(self) -> Deferred[list[str]]:
        """
        Deferred firing with the URLs of the live ping servers, sorted: the
        shape of the twitter role's ping list, for ``--role=all``.
        """
        return self.when_loaded().addCallback(lambda _: sorted(self._entries))

    def sweep(self) -> list[str]:
        """
        Drop the ping servers silent for :attr:`stale_after` seconds or
        more, from memory at once and from the store in the background.

        :return: the URLs dropped.
        """
        now = self.clock.seconds()
        cutoff = now - self.stale_after
        dropped = [url for url, e in sorted(self._entries.items()) if e.last_heard <= cutoff]
        for url in dropped:
            entry = self._entries.pop(url)
            self.log.info(
                "ping server {url} dropped: not heard from for {silence:.0f} s",
                url=url,
                silence=now - entry.last_heard,
            )
            if self._store is not None:
                self._write(self._store.remove(url), "the removal of", url)
        if dropped:
            self._list_changed()
        return dropped

    # Life cycle

    def startService(self) -> None:
        super().startService()
        self._entries = {}
        self._version = list_version([])
        self._loaded = False
        self._store = self._given_store
        self._loop = LoopingCall(self._guarded_round)
        self._loop.clock = self.clock
        # The first round reads the list back, then sweeps.
        self._loop.start(self.heartbeat_interval, now=True)
        self.log.info(
            "registry role started, heartbeats every {interval} s",
            interval=self.heartbeat_interval,
        )

    def stopService(self) -> Deferred[None]:
        """
        Stop sweeping, let the round and the writes in progress finish
        (short local disk work: waiting is cleaner than leaving a write
        half known), then close the store.
        """
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        pending: list[Deferred[Any]] = list(self._writes)
        if self._round is not None:
            pending.append(self._round)
        store, self._store = self._store, None

        def close(_: Any) -> Deferred[None]:
            if store is None:
                return succeed(None)
            return store.close()

        finished: Deferred[Any] = DeferredList(pending, consumeErrors=True)
        return finished.addCallback(close)

    # Inside

    def _guarded_round(self) -> Deferred[None]:
        """
        One round of the loop; a failure is logged and the loop goes on.
        """
        self._round = ensureDeferred(self._one_round())

        def failed(failure: Any) -> None:
            self.log.failure("registry sweep failed", failure)

        def done(result: Any) -> Any:
            self._round = None
            return result

        return self._round.addErrback(failed).addBoth(done)

    async def _one_round(self) -> None:
        if self._loaded:
            self.sweep()
            return
        try:
            await self._load()
            # Drop whoever fell silent while the registry was down before
            # anyone sees the list.
            self.sweep()
        finally:
            self._loaded = True
            waiters, self._load_waiters = self._load_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    async def _load(self) -> None:
        store = self._store
        rows: list[RegistryEntry] = []
        if store is not None:
            try:
                rows = await store.all()
            except Exception:
                # Serving an empty list beats serving nothing: the ping
                # servers come back with their next heartbeat.
                self.log.failure("could not read the registry's list back; starting empty")
        for row in rows:
            self._entries[row.public_url] = row
        self._list_changed(quiet=True)
        self.log.info("registry list read back: {count} ping servers", count=len(rows))

    def _list_changed(self, quiet: bool = False) -> None:
        version = list_version(self._entries.values())
        if version != self._version:
            self._version = version
            if not quiet:
                self.log.info(
                    "registry list is now version {version}: {count} ping servers",
                    version=version,
                    count=len(self._entries),
                )

    def _write(self, written: Deferred[None], what: str, url: str) -> None:
        """
        Keep track of a write to the store until it is done; log it if it
        fails.
        """
        self._writes.add(written)

        def failed(failure: Any) -> None:
            self.log.failure(
                "could not write {what} {url} to the registry store",
                failure,
                what=what,
                url=url,
            )

        def done(result: Any) -> Any:
            self._writes.discard(written)
            return result

        written.addErrback(failed).addBoth(done)
