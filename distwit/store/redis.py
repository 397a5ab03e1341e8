"""
The shared state of several twitter processes in one Redis
(``--redis redis://host:port/db``), through txredisapi: never a blocking
call on the reactor thread.

Every key begins with a prefix (``?prefix=`` in the URL, else
``distwit:``), so that several servers, or tests, share one Redis.
Counters and values expire in Redis itself (``PEXPIRE``), so a crashed
process leaves nothing behind for long.  Messages go by Redis pub/sub, on
one subscriber connection per process that reconnects by itself; a message
published while it reconnects is lost, so what listens must also catch up
by other means (the leader reads the database when it takes over).
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import txredisapi
from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from distwit.store.shared import ISharedState

_COUNT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""

_COUNTED = """
local n = redis.call('GET', KEYS[1])
if not n then return false end
return {tonumber(n), redis.call('PTTL', KEYS[1])}
"""

_TAKE = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
"""


#: Seconds a command may wait for Redis (connecting included) before it
#: fails: a Redis that is down fails requests quickly, never hangs them.
COMMAND_TIMEOUT = 5.0


class RedisUnavailable(Exception):
    """
    Redis did not answer within :data:`COMMAND_TIMEOUT`.
    """


class RedisURLError(ValueError):
    """
    A ``--redis`` value that is not ``redis://host[:port][/db][?prefix=...]``.
    """


def parse_redis_url(url: str) -> tuple[str, int, int, str | None, str]:
    """
    ``(host, port, db, password, prefix)`` of a ``redis://`` URL.

    :raise RedisURLError: not such a URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise RedisURLError(f"not a redis://host[:port][/db] URL: {url!r}")
    try:
        port = parts.port or 6379
        db = int(parts.path.strip("/") or 0)
    except ValueError:
        raise RedisURLError(f"bad port or database number in {url!r}") from None
    prefix = parse_qs(parts.query).get("prefix", ["distwit:"])[0]
    return parts.hostname, port, db, parts.password, prefix


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """
    The one subscriber connection: (re)subscribes to every channel listened
    to, and hands each message to the listeners.
    """

    def connectionMade(self) -> Any:
        d = super().connectionMade()
        state: RedisSharedState = self.factory.state
        state._subscriber = self
        channels = list(state._listeners)
        again = state._connections > 0
        state._connections += 1

        def subscribe(_: Any) -> Any:
            if channels:
                return self.subscribe([state._prefix + c for c in channels])
            return None

        def caught_up(result: Any) -> Any:
            # Back after a loss: what was published meanwhile is gone, so
            # the listeners read again what it would have told them.
            if again:
                state.log.info("the connection to Redis for messages is back")
                for callback in list(state._reconnected):
                    try:
                        callback()
                    except Exception:
                        state.log.failure("a reconnection callback failed")
            return result

        if isinstance(d, Deferred):
            return d.addCallback(subscribe).addCallback(caught_up)
        return caught_up(subscribe(None))

    def connectionLost(self, reason: Any) -> Any:
        state: RedisSharedState = self.factory.state
        if state._subscriber is self:
            state._subscriber = None
        return super().connectionLost(reason)

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        state: RedisSharedState = self.factory.state
        if isinstance(channel, bytes):
            channel = channel.decode("utf-8")
        if isinstance(message, bytes):
            message = message.decode("utf-8")
        name = channel[len(state._prefix):]
        for callback in list(state._listeners.get(name, ())):
            try:
                callback(str(message))
            except Exception:
                state.log.failure("listener of {channel} failed", channel=name)


@implementer(ISharedState)
class RedisSharedState:
    """
    :class:`~distwit.store.shared.ISharedState` in Redis.

    :param url: ``redis://[:password@]host[:port][/db][?prefix=...]``.
    :param reactor: the reactor to connect with.
    :param poolsize: command connections (the subscriber has its own).
    """

    log = Logger()

    def __init__(self, url: str, reactor: Any, poolsize: int = 4) -> None:
        host, port, db, password, prefix = parse_redis_url(url)
        self._prefix = prefix
        self._reactor = reactor
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        self._subscriber: Any = None
        #: How many times the subscriber connection was made, and who
        #: wants to know when it is made again (:meth:`reconnected`).
        self._connections = 0
        self._reconnected: list[Callable[[], None]] = []
        self._commands = txredisapi.RedisFactory(
            f"{host}:{port}", db, poolsize, isLazy=True, password=password,
            replyTimeout=10, convertNumbers=True,
        )
        self._commands.startConnecting(HostnameEndpoint(reactor, host, port, timeout=5))
        self._redis = self._commands.handler
        self._subscriptions = txredisapi.SubscriberFactory(isLazy=True)
        self._subscriptions.password = password
        self._subscriptions.protocol = _Subscriber
        self._subscriptions.state = self
        self._subscriptions.startConnecting(HostnameEndpoint(reactor, host, port, timeout=5))

    @property
    def prefix(self) -> str:
        return self._prefix

    def _timed(self, d: "Deferred[Any]", what: str) -> "Deferred[Any]":
        def unavailable(failure: Any) -> Any:
            from twisted.internet.defer import TimeoutError as DeferredTimeout

            if failure.check(DeferredTimeout, txredisapi.ConnectionError):
                raise RedisUnavailable(f"Redis did not answer ({what})")
            return failure

        d.addTimeout(COMMAND_TIMEOUT, self._reactor)
        return d.addErrback(unavailable)

    def count(self, key: str, window: float) -> "Deferred[tuple[int, float]]":
        ms = max(1, int(window * 1000))
        d = self._timed(self._redis.eval(_COUNT, [self._prefix + key], [ms]), key)
        return d.addCallback(lambda r: (int(r[0]), int(r[1]) / 1000.0))

    def counted(self, key: str) -> "Deferred[tuple[int, float] | None]":
        d = self._timed(self._redis.eval(_COUNTED, [self._prefix + key], []), key)

        def read(r: Any) -> tuple[int, float] | None:
            if not r:
                return None
            return int(r[0]), max(0, int(r[1])) / 1000.0

        return d.addCallback(read)

    def bump(self, key: str) -> "Deferred[int]":
        return self._timed(self._redis.incr(self._prefix + key), key).addCallback(int)

    def version(self, key: str) -> "Deferred[int]":
        d = self._timed(self._redis.get(self._prefix + key), key)
        return d.addCallback(lambda v: int(v or 0))

    def put(self, key: str, value: str, ttl: float) -> "Deferred[None]":
        ms = max(1, int(ttl * 1000))
        d = self._timed(self._redis.set(self._prefix + key, value, pexpire=ms), key)
        return d.addCallback(lambda _: None)

    def add(self, key: str, value: str, ttl: float) -> "Deferred[bool]":
        ms = max(1, int(ttl * 1000))
        d = self._timed(
            self._redis.set(self._prefix + key, value, pexpire=ms, only_if_not_exists=True), key
        )
        return d.addCallback(lambda answer: answer is not None and answer != 0)

    def get(self, key: str) -> "Deferred[str | None]":
        d = self._timed(self._redis.get(self._prefix + key), key)
        return d.addCallback(lambda v: None if v is None else str(v))

    def take(self, key: str) -> "Deferred[str | None]":
        d = self._timed(self._redis.eval(_TAKE, [self._prefix + key], []), key)
        return d.addCallback(lambda v: None if v is None else str(v))

    def publish(self, channel: str, message: str) -> "Deferred[None]":
        d = self._timed(self._redis.publish(self._prefix + channel, message), channel)
        return d.addCallback(lambda _: None)

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        first = channel not in self._listeners
        self._listeners.setdefault(channel, []).append(callback)
        if first and self._subscriber is not None:
            self._subscriber.subscribe(self._prefix + channel)

    def reconnected(self, callback: Callable[[], None]) -> None:
        self._reconnected.append(callback)

    def subscribed(self) -> "Deferred[None]":
        """
        Fires once the subscriber connection is up and subscribed (tests,
        and a process that must not miss the first messages).
        """
        return ensureDeferred(self._wait_subscribed())

    async def _wait_subscribed(self) -> None:
        while self._subscriber is None:
            await task.deferLater(self._reactor, 0.02)
        # A PING through the subscriber is answered after the SUBSCRIBE.
        await self._subscriber.ping()

    def close(self) -> "Deferred[None]":
        d = DeferredList(
            [self._commands.disconnect(), self._subscriptions.disconnect()], consumeErrors=True
        )
        return d.addCallback(lambda _: None)  # type: ignore[no-any-return]


__all__ = ["RedisSharedState", "RedisURLError", "parse_redis_url"]
