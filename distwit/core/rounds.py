"""
A service that works in rounds: one every ``interval`` seconds, and one
soon after :meth:`Rounds.wake` (something was queued), never two at once
(a wake during a round runs another right after it).  Stopping cancels the
round and the sends it started.  The outbox of signed notices and the
devices' sender are such services.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, ensureDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger


class Rounds(Service):
    """
    Subclasses write :meth:`_one_round`, and add what they start to
    ``_sending`` (cancelled on stop).

    :param clock: an ``IReactorTime``.
    :param interval: seconds between rounds.
    """

    log = Logger()
    #: How a failed round is logged.
    round_failed = "round failed"

    def __init__(self, clock: Any, interval: float) -> None:
        self._clock = clock
        self.interval = interval
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None
        self._again = False
        #: True until the first round after a start (which may say what
        #: waited while the service was down).
        self._restarted = True
        self._wake_call: Any = None
        self._sending: set[Deferred[None]] = set()

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def _one_round(self) -> None:
        raise NotImplementedError

    def startService(self) -> None:
        super().startService()
        self._restarted = True
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._wake_call is not None and self._wake_call.active():
            self._wake_call.cancel()
        self._wake_call = None
        running = list(self._sending)
        if self._round is not None:
            running.append(self._round)
        for d in running:
            d.cancel()
        if not running:
            return succeed(None)
        return DeferredList(running, consumeErrors=True).addCallback(lambda _: None)

    def wake(self) -> None:
        """
        Run a round soon (something was queued).
        """
        if not self.running:
            return
        if self._round is not None:
            self._again = True
            return
        if self._wake_call is None or not self._wake_call.active():
            self._wake_call = self._clock.callLater(0, self._tick)

    def _tick(self) -> None:
        """
        Start a round unless one is running (then one more follows it).
        A failed round is logged; the loop goes on.
        """
        if not self.running:
            return
        if self._round is not None:
            self._again = True
            return
        self._again = False
        d = ensureDeferred(self._one_round())
        self._round = d

        def failed(failure: Any) -> None:
            if not failure.check(CancelledError) and self.running:
                self.log.failure(self.round_failed, failure)

        def done(_: Any) -> None:
            self._round = None
            if self._again and self.running:
                self.wake()

        d.addErrback(failed).addBoth(done)


__all__ = ["Rounds"]
