"""
Several twitter processes, one server (docs/design/several-processes.md):
the one process at a time that reports to the ping servers and copies
ranges (the *leader*), and the wake-ups that reach it from the others.

- :class:`LeaderElection` holds a PostgreSQL session-level advisory lock
  on a connection of its own, tried again every interval.  The process
  that holds it runs the *duties* (the sync service with its copier, the
  outbox with the notice sweep, the direct poller); the others serve the
  API and the pages.  When the leader dies, even by ``kill -9``, its
  connection closes, PostgreSQL lets go of the lock, and another process
  takes it at its next try: within one interval.
- :class:`Bus` carries what the leader must hear at once from the process
  that served a request (a local user's new number, a new remote
  subscription, a notice to send) by the shared state's publish/subscribe
  (Redis pub/sub); every process applies it to its own, idle or running,
  sync service and outbox.  A new leader also reads everything from the
  database when it starts its duties.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Callable

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from distwit.federation.outbox import Outbox
from distwit.core.accts import rendezvous
from distwit.federation.sync import SyncService
from distwit.store.shared import ISharedState

#: The advisory lock's key (any number no other program on the database
#: uses: "dw" and 1).
LEADER_LOCK_KEY = 0x6477_0001

#: The channel of the wake-ups between processes.
CHANNEL = "leader"

#: Where the leader keeps its list of ping servers, and for how long (a
#: list no leader refreshed for a day is forgotten).
SERVERS_KEY = "ping-servers"
SERVERS_TTL = 86400.0


class Bus:
    """
    Messages between the processes of one server, on one channel of the
    shared state; a process ignores its own (it acted already).
    """

    log = Logger()

    def __init__(self, state: ISharedState, channel: str = CHANNEL) -> None:
        self._state = state
        self._channel = channel
        #: This process, in its messages.
        self.me = secrets.token_hex(8)
        self._handlers: dict[str, Callable[..., None]] = {}
        state.listen(channel, self._received)

    @property
    def state(self) -> ISharedState:
        return self._state

    def on(self, kind: str, handler: Callable[..., None]) -> None:
        self._handlers[kind] = handler

    def send(self, kind: str, *args: Any) -> None:
        message = json.dumps({"from": self.me, "kind": kind, "args": list(args)})
        d = self._state.publish(self._channel, message)
        d.addErrback(lambda f: self.log.failure("could not tell the other processes", f))

    def _received(self, message: str) -> None:
        try:
            decoded = json.loads(message)
            if decoded.get("from") == self.me:
                return
            handler = self._handlers.get(decoded["kind"])
            if handler is not None:
                handler(*decoded["args"])
        except Exception:
            self.log.failure("bad message between processes: {message!r}", message=message)


class SharedSyncService(SyncService):
    """
    The sync service of one of several processes: what it is told (a
    local user's new number, a follow of a remote author) it tells the
    others too, so that the leader's reports and subscriptions follow
    whichever process served the request.
    """

    def share(self, bus: Bus) -> None:
        self._bus = bus
        #: The leader's ping servers, for a process that is not the leader
        #: (its lookups of remote accts ask them, as the leader's do).
        self._leaders_servers: list[str] = []
        bus.on("local", lambda handle, last: SyncService.local_changed(self, handle, int(last)))
        bus.on("subscribe", lambda acct: SyncService.subscribe(self, acct))
        bus.on("unsubscribe", lambda acct: SyncService.unsubscribe(self, acct))
        bus.on("servers", self._heard_servers)
        bus.state.reconnected(self._reread)

        def known(value: str | None) -> None:
            if value and not self._leaders_servers:
                self._leaders_servers = list(json.loads(value))

        bus.state.get(SERVERS_KEY).addCallbacks(
            known, lambda f: self.log.failure("could not read the ping servers", f)
        )

    def _reread(self) -> None:
        # Messages from the other processes may have been lost while the
        # connection was down: the store has what they said.
        d = ensureDeferred(SyncService.reread(self))
        d.addErrback(lambda f: self.log.failure("could not read the lost messages' news", f))

    def _heard_servers(self, servers: list[str]) -> None:
        self._leaders_servers = list(servers)

    def _set_servers(self, servers: list[str]) -> None:
        super()._set_servers(servers)
        self._bus.send("servers", servers)
        d = self._bus.state.put(SERVERS_KEY, json.dumps(servers), SERVERS_TTL)
        d.addErrback(lambda f: self.log.failure("could not share the ping servers", f))

    def responsible(self, acct: str) -> list[str]:
        if self.running:
            return super().responsible(acct)
        return rendezvous(acct, self._leaders_servers, self.replicas)

    def local_changed(self, handle: str, last: int) -> None:
        super().local_changed(handle, last)
        self._bus.send("local", handle, last)

    def subscribe(self, acct: str) -> None:
        super().subscribe(acct)
        self._bus.send("subscribe", acct)

    def unsubscribe(self, acct: str) -> None:
        super().unsubscribe(acct)
        self._bus.send("unsubscribe", acct)

    def startService(self) -> None:
        # Taking over: what the database says, not what this process heard
        # while it was not the leader (a message may have been missed).
        self._loaded = False
        self._servers = []
        self._states = {}
        super().startService()


class SharedOutbox(Outbox):
    """
    The outbox of one of several processes: a wake-up (a notice queued, a
    post that names someone elsewhere) reaches the leader's.
    """

    def share(self, bus: Bus) -> None:
        self._bus = bus
        bus.on("outbox", lambda: Outbox.wake(self))
        # A wake-up lost while the connection was down: a round now.
        bus.state.reconnected(lambda: Outbox.wake(self))

    def wake(self) -> None:
        super().wake()
        if not self.running:
            self._bus.send("outbox")


class LeaderElection(Service):
    """
    Runs ``duties`` while this process holds the leader's advisory lock.

    :param database: the ``postgresql://`` URL of the server's database.
    :param duties: started when the lock is taken, stopped when lost.
    :param interval: seconds between tries (the ping interval: another
        process takes over within one).
    """

    name = "leader"
    log = Logger()

    def __init__(
        self, database: str, reactor: Any, duties: MultiService, interval: float,
        key: int = LEADER_LOCK_KEY,
    ) -> None:
        self._database = database
        self._reactor = reactor
        self.duties = duties
        self.interval = interval
        self._key = key
        self._connection: Any = None
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None
        #: Whether this process holds the lock (and runs the duties).
        self.leading = False

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded_try)
        self._loop.clock = self._reactor
        self._loop.start(self.interval, now=True)

    def _guarded_try(self) -> "Deferred[None]":
        d = ensureDeferred(self._try())
        d.addErrback(lambda f: self.log.failure("leader election round failed", f))

        def done(result: Any) -> Any:
            self._round = None
            return result

        self._round = d
        return d.addBoth(done)

    def _in_thread(self, f: Callable[[], Any]) -> "Deferred[Any]":
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), f)

    async def _try(self) -> None:
        try:
            held = await self._in_thread(self._hold)
        except Exception:
            self.log.failure("the leader's database connection failed")
            await self._in_thread(self._close)
            held = False
        if not self.running:
            return
        if held and not self.leading:
            self.leading = True
            self.log.info("this process is now the leader: it reports and copies")
            self.duties.startService()
        elif not held and self.leading:
            self.leading = False
            self.log.warn("this process is no longer the leader")
            await self.duties.stopService()

    def _hold(self) -> bool:
        """
        In a thread: take the lock if free, or check that the connection
        that holds it is alive; whether it is held.
        """
        import psycopg

        if self._connection is None:
            self._connection = psycopg.connect(
                self._database, autocommit=True, connect_timeout=10,
                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
            )
        with self._connection.cursor() as cursor:
            if self.leading:
                # A session lock lasts as long as its connection: a live
                # connection still holds it.
                cursor.execute("SELECT true")
            else:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            row = cursor.fetchone()
        return bool(row and row[0])

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._round is not None:
            # The try in its thread ends first (a connection, one thread).
            ended: Deferred[None] = Deferred()

            def end(result: Any) -> Any:
                ended.callback(None)
                return result

            self._round.addBoth(end)
            await ended
        if self.leading:
            self.leading = False
            await self.duties.stopService()
        # Closing the connection lets go of the lock at once.
        await self._in_thread(self._close)


__all__ = ["Bus", "LEADER_LOCK_KEY", "LeaderElection", "SharedOutbox", "SharedSyncService"]
