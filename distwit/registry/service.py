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

Admission (``admission`` in the settings): ``approval`` lists only the ping
servers the operator approved (``distwit registry approve``), keyed by
authority (``host[:port]``: the paths of one server are not separate
servers) and key; the others that register wait on a bounded pending list,
listed to no one.  An approved server whose key changes goes back to
pending.  In ``--role=all`` the process's own ping server (this process's
URL, signing with this process's key) needs no approval.  ``open`` lists
every ping server that signs, one per authority.  The approvals are
written by the ``distwit`` command into the registry's database and read
back at every sweep, so an approval or a revocation takes effect within
an interval (at the server's next heartbeat).

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

from distwit.config import ADMISSIONS
from distwit.registry.interfaces import IRegistryStore
from distwit.registry.store import PENDING, Admission, RegistryEntry
from distwit.urls import authority_of

#: A ping server silent for this many heartbeat intervals is dropped.
MISSED_HEARTBEATS = 3

#: The most ping servers waiting for approval; more are refused until
#: some are approved or fall silent.
MAX_PENDING = 100


class RegistrationRefused(Exception):
    """
    A registration that admission refuses; the message says why.

    :ivar code: the HTTP status to answer with.
    """

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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
    :param admission: ``"approval"`` or ``"open"`` (see the module).
    :param own_url: in ``--role=all``, this process's public URL, whose
        ping server is admitted without approval when it registers with
        ``own_key``.
    :param own_key: this process's public key, unpadded base64url.
    """

    name = "registry"
    log = Logger()

    def __init__(
        self,
        store: IRegistryStore,
        clock: IReactorTime,
        heartbeat_interval: float = 10.0,
        *,
        admission: str,
        own_url: str = "",
        own_key: str = "",
    ) -> None:
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be positive, not {heartbeat_interval!r}")
        if admission not in ADMISSIONS:
            raise ValueError(f"admission must be one of {ADMISSIONS}, not {admission!r}")
        self.admission = admission
        self._own = (own_url.rstrip("/"), own_key) if own_url and own_key else None
        self._admissions: dict[str, Admission] = {}
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
        A server admission does not list yet is kept as pending.

        The answer does not wait for the disk: the live list is what
        matters, and the next heartbeat writes again if this write fails
        (which is logged).

        :return: the answer to the ping server: ``version``,
            ``heartbeat_interval`` and ``admission`` (``"listed"`` or
            ``"pending"``).
        :raise RegistryStopped: the service is not running.
        :raise RegistrationRefused: another URL of its authority is listed
            or pending, or the pending list is full.
        """
        if not self.running or self._store is None:
            raise RegistryStopped("the registry is not running")
        authority = authority_of(public_url)
        live = self._live_of(authority)
        if live is not None and live.public_url != public_url:
            raise RegistrationRefused(
                f"{authority} is listed as {live.public_url}: one ping server per authority"
            )
        if self.admission == "open" or self._own == (public_url, public_key):
            return self._list(public_url, public_key)
        admitted = self._admissions.get(authority)
        if admitted is not None and admitted.public_url != public_url:
            raise RegistrationRefused(
                f"{authority} is {admitted.status} as {admitted.public_url}:"
                " one ping server per authority"
            )
        if admitted is not None and admitted.approved:
            if admitted.public_key == public_key:
                return self._list(public_url, public_key)
            return self._key_changed(admitted, public_key)
        return self._pending(authority, public_url, public_key, admitted)

    def _live_of(self, authority: str) -> RegistryEntry | None:
        for entry in self._entries.values():
            if authority_of(entry.public_url) == authority:
                return entry
        return None

    def _answer(self, admission: str) -> dict[str, Any]:
        return {
            "version": self._version,
            "heartbeat_interval": self.heartbeat_interval,
            "admission": admission,
        }

    def _list(self, public_url: str, public_key: str) -> dict[str, Any]:
        assert self._store is not None
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
        return self._answer("listed")

    def _key_changed(self, approved: Admission, public_key: str) -> dict[str, Any]:
        """
        An approved server came with another key: its approval was for the
        old one, so it goes back to pending and leaves the list.
        """
        assert self._store is not None
        now = self.clock.seconds()
        pending = Admission(
            approved.authority, approved.public_url, public_key, PENDING, now, now
        )
        self._admissions[approved.authority] = pending
        self.log.warn(
            "approved ping server {url} registered with another key: back to pending"
            " until the operator approves it again",
            url=approved.public_url,
        )
        self._write(self._store.set_admission(pending), "the admission of", approved.public_url)
        self._unlist(approved.public_url)
        return self._answer(PENDING)

    def _pending(
        self, authority: str, public_url: str, public_key: str, old: Admission | None
    ) -> dict[str, Any]:
        assert self._store is not None
        now = self.clock.seconds()
        if old is not None and old.public_key != public_key:
            raise RegistrationRefused(
                f"{public_url} is pending with another key; it may ask again with this"
                " one once the other falls silent"
            )
        if old is None:
            waiting = sum(1 for a in self._admissions.values() if not a.approved)
            if waiting >= MAX_PENDING:
                raise RegistrationRefused(
                    "too many ping servers wait for approval; ask the operator", 429
                )
            self.log.info(
                "ping server {url} asks to be listed: pending until the operator runs"
                " `distwit registry approve {url}`",
                url=public_url,
            )
        pending = Admission(
            authority, public_url, public_key, PENDING, now if old is None else old.since, now
        )
        self._admissions[authority] = pending
        self._write(self._store.heard_pending(pending), "the request of", public_url)
        return self._answer(PENDING)

    def _unlist(self, public_url: str) -> None:
        if self._entries.pop(public_url, None) is None:
            return
        if self._store is not None:
            self._write(self._store.remove(public_url), "the removal of", public_url)
        self._list_changed()

    def _admitted(self, entry: RegistryEntry) -> bool:
        """
        Whether admission lets ``entry`` be listed.
        """
        if self.admission == "open" or self._own == (entry.public_url, entry.public_key):
            return True
        admitted = self._admissions.get(authority_of(entry.public_url))
        return (
            admitted is not None
            and admitted.approved
            and (admitted.public_url, admitted.public_key) == (entry.public_url, entry.public_key)
        )

    def enforce(self) -> list[str]:
        """
        Drop from the list whoever admission no longer lets in (a
        revocation, an approval of another key), and from the store.

        :return: the URLs dropped.
        """
        dropped = [url for url, e in sorted(self._entries.items()) if not self._admitted(e)]
        for url in dropped:
            self.log.info("ping server {url} dropped: not approved", url=url)
            self._unlist(url)
        return dropped

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
        for authority, admitted in list(self._admissions.items()):
            if not admitted.approved and admitted.last_heard <= cutoff:
                del self._admissions[authority]
        if self._store is not None and self.admission != "open":
            self._write(self._store.forget_pending(cutoff), "the pending older than", str(cutoff))
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
            "registry role started, heartbeats every {interval} s, admission {admission}",
            interval=self.heartbeat_interval,
            admission=self.admission,
        )
        if self.admission == "open":
            self.log.warn(
                "the registry is OPEN (admission = open): it lists every ping server that"
                " signs, so anyone can take over the delivery of this federation's posts."
                " Use it for labs only; set admission = approval on the internet."
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
            await self._read_admissions()
            self.enforce()
            self.sweep()
            return
        try:
            await self._load()
            # Drop whoever fell silent while the registry was down, or is
            # no longer approved, before anyone sees the list.
            self.enforce()
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
            kept = self._live_of(authority_of(row.public_url))
            if kept is not None:
                # From before one entry per authority: keep the oldest.
                if kept.first_seen <= row.first_seen:
                    continue
                del self._entries[kept.public_url]
            self._entries[row.public_url] = row
        await self._read_admissions()
        self._list_changed(quiet=True)
        self.log.info("registry list read back: {count} ping servers", count=len(rows))

    async def _read_admissions(self) -> None:
        """
        Read the approvals back (``distwit registry`` writes them); the
        pending rows too, which this service wrote.
        """
        if self._store is None or self.admission == "open":
            return
        try:
            rows = await self._store.admissions()
        except Exception:
            # Keep what we knew; the next round reads again.
            self.log.failure("could not read the registry's approvals")
            return
        self._admissions = {row.authority: row for row in rows}

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
