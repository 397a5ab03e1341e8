"""
Rate limits per caller and endpoint, in fixed windows, as Twitter counts
them: every answer says ``x-rate-limit-limit``, ``-remaining`` and
``-reset`` (Unix seconds), and a caller past the limit gets 429, code 88.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distwit.store.shared import ISharedState
from distwit.config import (
    RATE_LIMIT_ADDRESS_READS,
    RATE_LIMIT_ADDRESS_WRITES,
    RATE_LIMIT_READS,
    RATE_LIMIT_WINDOW,
    RATE_LIMIT_WRITES,
)

#: Default window and calls per window (the settings'): reads are cheap,
#: writes less so.
DEFAULT_LIMITS = {"read": RATE_LIMIT_READS, "write": RATE_LIMIT_WRITES}

#: Default calls per window from one address, all endpoints together.
DEFAULT_ADDRESS_LIMITS = {"read": RATE_LIMIT_ADDRESS_READS, "write": RATE_LIMIT_ADDRESS_WRITES}

#: Sweep forgotten windows when this many callers are tracked.
SWEEP_AT = 10_000


@dataclass
class Window:
    started: float
    used: int


@dataclass(frozen=True)
class Allowance:
    limit: int
    remaining: int
    reset: int
    allowed: bool

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-rate-limit-limit", str(self.limit).encode()),
            (b"x-rate-limit-remaining", str(self.remaining).encode()),
            (b"x-rate-limit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    """
    Counts calls per (caller, endpoint) in windows of ``window`` seconds.

    :param limits: calls per window by kind of endpoint (``read``,
        ``write``).
    """

    def __init__(
        self,
        clock: Any,
        window: float = RATE_LIMIT_WINDOW,
        limits: dict[str, int] | None = None,
    ) -> None:
        self._clock = clock
        self.window = window
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._windows: dict[tuple[str, str], Window] = {}

    def _current(self, caller: str, endpoint: str, now: float) -> Window:
        window = self._windows.get((caller, endpoint))
        if window is None or now >= window.started + self.window:
            if len(self._windows) >= SWEEP_AT:
                self._sweep(now)
            window = self._windows[(caller, endpoint)] = Window(now, 0)
        return window

    def _sweep(self, now: float) -> None:
        for key, window in list(self._windows.items()):
            if now >= window.started + self.window:
                del self._windows[key]

    def hit(self, caller: str, endpoint: str, kind: str) -> Allowance:
        """
        Count one call, unless the limit is reached.
        """
        now = self._clock.seconds()
        limit = self.limits[kind]
        window = self._current(caller, endpoint, now)
        allowed = window.used < limit
        if allowed:
            window.used += 1
        return Allowance(
            limit, max(0, limit - window.used), int(window.started + self.window), allowed
        )

    def forget(self, endpoint: str, generation: int = 0) -> None:
        """
        Forget every caller's count of ``endpoint`` (an operator lifted a
        lock: ``distwit user unlock``).  ``generation`` (the unlock's time)
        names the counts that follow, the same in every process.
        """
        for key in [key for key in self._windows if key[1] == endpoint]:
            del self._windows[key]

    def peek(self, caller: str, endpoint: str, kind: str) -> Allowance:
        """
        Where the caller stands, without counting a call.
        """
        now = self._clock.seconds()
        limit = self.limits[kind]
        window = self._windows.get((caller, endpoint))
        if window is None or now >= window.started + self.window:
            return Allowance(limit, limit, int(now + self.window), True)
        return Allowance(
            limit, max(0, limit - window.used), int(window.started + self.window), True
        )

    async def take(self, caller: str, endpoint: str, kind: str) -> Allowance:
        """
        :meth:`hit`, as every door calls it: awaited, because a
        :class:`SharedRateLimiter` asks the processes' shared state.
        """
        return self.hit(caller, endpoint, kind)

    async def look(self, caller: str, endpoint: str, kind: str) -> Allowance:
        """
        :meth:`peek`, awaited (see :meth:`take`).
        """
        return self.peek(caller, endpoint, kind)


class SharedRateLimiter(RateLimiter):
    """
    A :class:`RateLimiter` whose windows are counted in the state several
    processes share (:class:`~distwit.store.shared.ISharedState`, Redis
    with ``--redis``): a caller has one allowance whichever process
    answers.  Only :meth:`take` and :meth:`look` count there; :meth:`hit`
    and :meth:`peek` would count in this process alone.

    A call past the limit is still counted (Redis ``INCR``), which changes
    nothing a client sees: it is refused, with 0 remaining, until the
    window ends.

    :param name: tells this limiter's keys from other limiters'.
    """

    def __init__(
        self,
        state: ISharedState,
        clock: Any,
        name: str,
        window: float = RATE_LIMIT_WINDOW,
        limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__(clock, window, limits)
        self._state = state
        self._name = name
        #: The counts of an endpoint since it was last forgotten: every
        #: process forgets at the same generation (the operator's unlock,
        #: read from the database), so they all count in the same keys.
        self._generations: dict[str, int] = {}

    def _key(self, caller: str, endpoint: str) -> str:
        generation = self._generations.get(endpoint)
        if generation:
            return f"limit:{self._name}:{endpoint}:g{generation}:{caller}"
        return f"limit:{self._name}:{endpoint}:{caller}"

    def forget(self, endpoint: str, generation: int = 0) -> None:
        """
        The counts before are left to expire in Redis; from now on, and in
        every process that forgets the same generation, new keys count.
        """
        self._generations[endpoint] = generation or int(self._clock.seconds() * 1000)

    async def take(self, caller: str, endpoint: str, kind: str) -> Allowance:
        limit = self.limits[kind]
        used, left = await self._state.count(self._key(caller, endpoint), self.window)
        reset = int(self._clock.seconds() + left)
        return Allowance(limit, max(0, limit - used), reset, used <= limit)

    async def look(self, caller: str, endpoint: str, kind: str) -> Allowance:
        limit = self.limits[kind]
        found = await self._state.counted(self._key(caller, endpoint))
        now = self._clock.seconds()
        if found is None:
            return Allowance(limit, limit, int(now + self.window), True)
        used, left = found
        return Allowance(limit, max(0, limit - used), int(now + left), True)


class AddressLimits:
    """
    Calls per client address, all endpoints together, whatever door they
    come by (HTTP Basic, OAuth, a bearer token, none): counted before any
    credentials are looked at, so that

    - one address cannot use up another's allowance by claiming its
      user's name (a user's own count, :class:`RateLimiter` by user, is
      only taken once the credentials are checked);
    - guessing passwords, or flooding the server, from one address ends
      with 429 before any password is hashed.

    Behind a reverse proxy every client has the proxy's address: raise the
    limits there (``rate_limit_address_reads``, ``_writes``).

    :param limits: calls per window by kind (``read``, ``write``).
    :param state: count in the state several processes share (``--redis``)
        rather than in this process.
    """

    def __init__(
        self,
        clock: Any,
        window: float = RATE_LIMIT_WINDOW,
        limits: dict[str, int] | None = None,
        state: ISharedState | None = None,
    ) -> None:
        chosen = DEFAULT_ADDRESS_LIMITS if limits is None else limits
        self._counts = (
            RateLimiter(clock, window, chosen) if state is None
            else SharedRateLimiter(state, clock, "address", window, chosen)
        )

    def hit(self, address: str, kind: str) -> Allowance:
        """
        Count one call of ``kind`` from ``address``, unless its limit is
        reached.
        """
        return self._counts.hit(address, kind, kind)

    def peek(self, address: str, kind: str) -> Allowance:
        """
        Where ``address`` stands, without counting a call.
        """
        return self._counts.peek(address, kind, kind)

    async def take(self, address: str, kind: str) -> Allowance:
        """
        :meth:`hit`, awaited: shared between processes when built with a
        shared ``state``.
        """
        return await self._counts.take(address, kind, kind)


def tighter(first: Allowance, second: Allowance) -> Allowance:
    """
    Of two allowances that both apply to a call, the one a client should
    pace itself by: a refusal, else the one with fewer calls left.
    """
    if not first.allowed or not second.allowed:
        return first if not first.allowed else second
    return first if first.remaining <= second.remaining else second
