"""
How much this server is used, as NodeInfo tells federation crawlers:
local users, those active in the last month and half-year, local posts.

An active user is one who posted or retweeted in the period (a server
that is only read from counts no active user).  The counts are kept a
minute, so a crawler asking often costs one count a minute.
"""

from __future__ import annotations

from typing import Any

from distwit.store.interfaces import IUsageStore, UsageCounts

DAY_MS = 24 * 60 * 60 * 1000
#: NodeInfo's periods: "activeMonth" and "activeHalfyear".
MONTH_MS = 30 * DAY_MS
HALFYEAR_MS = 180 * DAY_MS
#: Seconds the counts are kept before they are counted again.
USAGE_TTL = 60.0


class ServerUsage:
    """
    :param store: the :class:`IUsageStore`.
    :param clock: ``seconds()``: the reactor.
    """

    def __init__(self, store: IUsageStore, clock: Any, ttl: float = USAGE_TTL) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._kept: tuple[float, UsageCounts] | None = None

    async def counts(self) -> UsageCounts:
        """
        The counts, at most ``ttl`` seconds old.
        """
        now = self._clock.seconds()
        if self._kept is not None and now - self._kept[0] < self._ttl:
            return self._kept[1]
        now_ms = int(now * 1000)
        counted: UsageCounts = await self._store.usage_counts(
            now_ms - MONTH_MS, now_ms - HALFYEAR_MS
        )
        self._kept = (now, counted)
        return counted
