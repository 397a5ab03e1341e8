"""
Bounded caches for the hot reads (issue 16), behind a small interface so
that a shared one (Redis, for several processes) can take the place of the
in-memory one.

What is cached here is never trusted blindly: every entry is kept with the
value it was made from and used only when that value is still the one read
(:class:`RenderCache`), so a change anywhere (a count, a profile, a
delete) shows at once, without a list of events to invalidate on.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Awaitable, Callable, Generic, Hashable, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")
K_in = TypeVar("K_in", bound=Hashable, contravariant=True)

#: Entries of each cache by default (about 2 kB each for a rendered status:
#: ~20 MB).  The ``cache_statuses`` setting, where the composition root
#: passes one.
DEFAULT_ENTRIES = 10_000


class Cache(Protocol[K_in, V]):
    """
    What a cache offers: look up, keep, forget, count.
    """

    def get(self, key: K_in) -> V | None: ...

    def put(self, key: K_in, value: V) -> None: ...

    def discard(self, key: K_in) -> None: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


class LRUCache(Generic[K, V]):
    """
    At most ``size`` entries in memory; the least recently used goes first.
    Counts its hits and misses.
    """

    def __init__(self, size: int = DEFAULT_ENTRIES) -> None:
        if size < 0:
            raise ValueError("a cache's size is 0 or more")
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        entries = self._entries
        value = entries.get(key)
        if value is None:
            self.misses += 1
            return None
        entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        if self.size == 0:
            return
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > self.size:
            entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class RenderCache(Generic[K]):
    """
    Renderings by key, each kept with what it was rendered from (its
    *source*, compared with ``==``): :meth:`get` answers only when the
    source given is equal to the one kept.  Sources are immutable values
    (the frozen :class:`~distwit.model.Post`, with its author and counts),
    so nothing needs telling when something changes: the next read brings
    the new value, which differs, and the rendering is made again.

    :param cache: where entries live (an :class:`LRUCache` by default).
    """

    def __init__(self, cache: Cache[Any, tuple[Any, Any]] | None = None,
                 size: int = DEFAULT_ENTRIES) -> None:
        self._cache: Cache[Any, tuple[Any, Any]] = (
            cache if cache is not None else LRUCache(size)
        )

    def get(self, key: K, source: Any) -> Any:
        """
        The rendering of ``source`` kept under ``key``, or ``None``.
        """
        found = self._cache.get(key)
        if found is None:
            return None
        if found[0] is not source:
            if found[0] != source:
                return None
            # The same value read again: kept with the new object, so the
            # next reads of it compare by identity, not field by field.
            self._cache.put(key, (source, found[1]))
        return found[1]

    def put(self, key: K, source: Any, rendering: Any) -> None:
        self._cache.put(key, (source, rendering))

    def __len__(self) -> int:
        return len(self._cache)


class ReadCache:
    """
    Results of reads kept while nothing was written: each is kept with the
    store's write generation from before the read, and answered again only
    while the generation has not moved (every write of this process moves
    it as it begins and as it ends: a read that overlapped a write is not
    kept).

    :param generation: the store's current write generation, or ``None``
        when it has none (then nothing is kept).
    :param cache: where entries live.
    """

    def __init__(self, generation: "Callable[[], int | None]",
                 cache: Cache[Hashable, tuple[int, Any]] | None = None,
                 size: int = DEFAULT_ENTRIES) -> None:
        self._generation = generation
        self._cache: Cache[Hashable, tuple[int, Any]] = (
            cache if cache is not None else LRUCache(size)
        )

    async def read(self, key: Hashable, read: "Callable[[], Awaitable[T]]",
                   keep_none: bool = True) -> T:
        """
        What ``read()`` gives, kept under ``key``: from the cache while no
        write has begun or ended since it was read.

        :param keep_none: whether a ``None`` found is kept (not for what
            another process may add, as the command line adds apps and
            tokens).
        """
        before = self._generation()
        if before is None:
            return await read()
        found = self._cache.get(key)
        if found is not None and found[0] == before:
            return found[1]  # type: ignore[no-any-return]
        value = await read()
        if self._generation() == before and (keep_none or value is not None):
            self._cache.put(key, (before, value))
        return value

    def __len__(self) -> int:
        return len(self._cache)


__all__ = ["DEFAULT_ENTRIES", "Cache", "LRUCache", "ReadCache", "RenderCache"]
