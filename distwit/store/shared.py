"""
State that several twitter processes of one server share, and a single
process keeps in memory: counters in windows (rate limits, wrong
passwords), short-lived values (with expiry), version numbers, and
messages from one process to the others (wake-ups).

:class:`MemorySharedState` is the state of a process on its own;
:class:`distwit.store.redis.RedisSharedState` (``--redis``) the state of
several processes behind one front (docs/design/several-processes.md).
The composition root chooses.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer


class ISharedState(Interface):
    """
    What the processes of one server share, each value under a key (the
    provider adds its own prefix), each gone when its time is up.
    """

    def count(key: str, window: float) -> "Deferred[tuple[int, float]]":
        """
        Add one to the counter ``key`` of the window that began with its
        first count and lasts ``window`` seconds (a new window starts
        after it); the count so far, and the seconds left in the window.
        """

    def counted(key: str) -> "Deferred[tuple[int, float] | None]":
        """
        The count of ``key`` and the seconds left in its window, without
        counting; ``None`` if no window is running.
        """

    def bump(key: str) -> "Deferred[int]":
        """
        Add one to the version number ``key`` (never expires); the new one.
        """

    def version(key: str) -> "Deferred[int]":
        """
        The version number ``key`` (0 if never bumped).
        """

    def put(key: str, value: str, ttl: float) -> "Deferred[None]":
        """
        Keep ``value`` under ``key`` for ``ttl`` seconds.
        """

    def add(key: str, value: str, ttl: float) -> "Deferred[bool]":
        """
        Keep ``value`` under ``key`` for ``ttl`` seconds unless a value is
        there: ``False`` then (a nonce seen before).
        """

    def get(key: str) -> "Deferred[str | None]":
        """
        The value under ``key``, or ``None``.
        """

    def take(key: str) -> "Deferred[str | None]":
        """
        The value under ``key``, removed at once (one use), or ``None``.
        """

    def publish(channel: str, message: str) -> "Deferred[None]":
        """
        Tell every process (this one too) that listens on ``channel``.
        """

    def listen(channel: str, callback: Callable[[str], None]) -> None:
        """
        Call ``callback`` with every message published on ``channel``.
        """

    def reconnected(callback: Callable[[], None]) -> None:
        """
        Call ``callback`` each time the connection that brings the
        messages is back after it was lost: what was published meanwhile
        never arrives, so the callback reads again what those messages
        would have said.
        """

    def close() -> "Deferred[None]":
        """
        Let go of connections.
        """


@implementer(ISharedState)
class MemorySharedState:
    """
    The shared state of a process on its own: dictionaries, timed by
    ``clock`` (an ``IReactorTime``).  Expired entries are swept as new ones
    come, so memory stays bounded by what is alive.
    """

    #: Sweep expired entries when this many keys are kept.
    SWEEP_AT = 10_000

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        #: key -> (value, expiry in clock seconds)
        self._values: dict[str, tuple[Any, float]] = {}
        self._versions: dict[str, int] = {}
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    def _alive(self, key: str) -> tuple[Any, float] | None:
        entry = self._values.get(key)
        if entry is not None and entry[1] <= self._clock.seconds():
            del self._values[key]
            return None
        return entry

    def _keep(self, key: str, value: Any, until: float) -> None:
        if len(self._values) >= self.SWEEP_AT:
            now = self._clock.seconds()
            for old in [k for k, (_, expiry) in self._values.items() if expiry <= now]:
                del self._values[old]
        self._values[key] = (value, until)

    def count(self, key: str, window: float) -> "Deferred[tuple[int, float]]":
        now = self._clock.seconds()
        entry = self._alive(key)
        if entry is None:
            entry = (0, now + window)
        self._keep(key, entry[0] + 1, entry[1])
        return succeed((entry[0] + 1, entry[1] - now))

    def counted(self, key: str) -> "Deferred[tuple[int, float] | None]":
        entry = self._alive(key)
        if entry is None:
            return succeed(None)
        return succeed((int(entry[0]), entry[1] - self._clock.seconds()))

    def bump(self, key: str) -> "Deferred[int]":
        self._versions[key] = self._versions.get(key, 0) + 1
        return succeed(self._versions[key])

    def version(self, key: str) -> "Deferred[int]":
        return succeed(self._versions.get(key, 0))

    def put(self, key: str, value: str, ttl: float) -> "Deferred[None]":
        self._keep(key, value, self._clock.seconds() + ttl)
        return succeed(None)

    def add(self, key: str, value: str, ttl: float) -> "Deferred[bool]":
        if self._alive(key) is not None:
            return succeed(False)
        self._keep(key, value, self._clock.seconds() + ttl)
        return succeed(True)

    def get(self, key: str) -> "Deferred[str | None]":
        entry = self._alive(key)
        return succeed(None if entry is None else str(entry[0]))

    def take(self, key: str) -> "Deferred[str | None]":
        entry = self._alive(key)
        if entry is not None:
            del self._values[key]
        return succeed(None if entry is None else str(entry[0]))

    def publish(self, channel: str, message: str) -> "Deferred[None]":
        for callback in list(self._listeners.get(channel, ())):
            callback(message)
        return succeed(None)

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        self._listeners.setdefault(channel, []).append(callback)

    def reconnected(self, callback: Callable[[], None]) -> None:
        # One process's memory: no connection to lose, nothing ever missed.
        pass

    def close(self) -> "Deferred[None]":
        return succeed(None)


__all__ = ["ISharedState", "MemorySharedState"]
