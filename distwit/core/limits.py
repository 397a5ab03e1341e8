"""
Rate limits per caller and endpoint, in fixed windows, as Twitter counts
them: every answer says ``x-rate-limit-limit``, ``-remaining`` and
``-reset`` (Unix seconds), and a caller past the limit gets 429, code 88.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def forget(self, endpoint: str) -> None:
        """
        Forget every caller's count of ``endpoint`` (an operator lifted a
        lock: ``distwit user unlock``).
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
    """

    def __init__(
        self,
        clock: Any,
        window: float = RATE_LIMIT_WINDOW,
        limits: dict[str, int] | None = None,
    ) -> None:
        self._counts = RateLimiter(
            clock, window, DEFAULT_ADDRESS_LIMITS if limits is None else limits
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


def tighter(first: Allowance, second: Allowance) -> Allowance:
    """
    Of two allowances that both apply to a call, the one a client should
    pace itself by: a refusal, else the one with fewer calls left.
    """
    if not first.allowed or not second.allowed:
        return first if not first.allowed else second
    return first if first.remaining <= second.remaining else second
