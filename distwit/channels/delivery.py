"""
The devices' sender: hands the messages of the durable devices' outbox
(``device_outbox``) to their channels (docs/design/devices.md, "The
durable outbox").

Every round (a ``LoopingCall`` every :data:`INTERVAL` seconds, and at once
when something is queued) it first runs the sweep (``Devices.sweep``: what
new posts, direct messages and follows call for is queued), then claims the
due messages with a lease, so that several processes on one database never
send one twice, and hands each to the channel of its kind.  A message is
marked sent when the gateway took it; on :class:`ChannelError` it is tried
again after a delay that doubles from :data:`FIRST_DELAY` to
:data:`MAX_DELAY`, for :data:`GIVE_UP_AFTER` seconds from when it was first
due, then given up; on :class:`AddressRefused` it is given up at once (one
log line each).  On start every pending message is tried at once.  The one
window left: the process dies after the gateway took a message and before
its mark is committed; that message is sent again.

Modelled on :mod:`distwit.federation.outbox`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredSemaphore,
    ensureDeferred,
)
from twisted.logger import Logger

from distwit.channels.interfaces import AddressRefused, ChannelError
from distwit.core.rounds import Rounds
from distwit.store.interfaces import DeviceMessage, IStore

#: Seconds between rounds (a round also runs at once when something is queued).
INTERVAL = 2.0
#: The delay after a message's first failed try (seconds); it doubles each try...
FIRST_DELAY = 1.0
#: ... up to this.
MAX_DELAY = 300.0
#: Seconds from when a message was first due after which a failing one is
#: given up.
GIVE_UP_AFTER = 24 * 3600.0
#: Messages being handed to one channel at once.
PER_CHANNEL = 4
#: Messages claimed in one round.
BATCH = 100
#: How long a claimed message is kept from other rounds and processes
#: (seconds): longer than any one try takes.
LEASE = 120.0
#: Finished messages are kept this long (seconds): the SMS cap counts them.
KEEP_FINISHED = 8 * 24 * 3600.0
#: Seconds between prunings of finished messages.
PRUNE_EVERY = 3600.0


def retry_delay(tries: int, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> float:
    """
    Seconds to wait after the ``tries``-th failed try (1, 2, ...).
    """
    return float(min(first * 2 ** min(tries - 1, 32), cap))


class Delivery(Rounds):
    """
    Sends the devices' outbox, round after round.

    :param store: the :class:`IStore`.
    :param channels: the channel of each kind (``sms``, ``im``, ``email``):
        an ``IChannel``.
    :param clock: an ``IReactorTime``.
    :param sweep: run at the start of each round: queues what arrived
        since the last (``Devices.sweep``).
    """

    name = "delivery"
    log = Logger()
    round_failed = "delivery round failed"

    def __init__(
        self,
        store: IStore,
        channels: dict[str, Any],
        clock: Any,
        *,
        sweep: Callable[[], Awaitable[Any]] | None = None,
        interval: float = INTERVAL,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        give_up_after: float = GIVE_UP_AFTER,
        lease: float = LEASE,
        batch: int = BATCH,
        per_channel: int = PER_CHANNEL,
    ) -> None:
        self._store = store
        self._channels = dict(channels)
        self.sweep = sweep
        super().__init__(clock, interval)
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.give_up_after = give_up_after
        self.lease = lease
        self._batch = batch
        self._semaphores = {kind: DeferredSemaphore(per_channel) for kind in self._channels}
        self._pruned_at = 0.0
        #: Channels failing now (logged once when they start and stop).
        self._failing: set[str] = set()
        #: Told of every try: the message and ``"sent"``, ``"failed"`` (to
        #: be tried again) or ``"given_up"`` (metrics).
        self.observers: list[Callable[[DeviceMessage, str], None]] = []

    def _tell(self, message: DeviceMessage, outcome: str) -> None:
        for observe in self.observers:
            try:
                observe(message, outcome)
            except Exception:
                self.log.failure("a delivery observer failed")

    # The loop

    async def _one_round(self) -> None:
        if self._restarted:
            pending = await self._store.device_messages_due_now(self.now_ms())
            self._restarted = False
            if pending:
                self.log.info("{count} messages to devices waiting", count=pending)
        if self.sweep is not None:
            try:
                await self.sweep()
            except CancelledError:
                raise
            except Exception:
                self.log.failure("queueing the messages of new posts for devices failed")
        now = self.now_ms()
        if self._clock.seconds() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = self._clock.seconds()
            await self._store.prune_device_outbox(now - int(KEEP_FINISHED * 1000))
        claimed = await self._store.claim_device_messages(
            now, now + int(self.lease * 1000), self._batch
        )
        for message in claimed:
            d = ensureDeferred(self._deliver(message))
            self._sending.add(d)

            def failed(failure: Any, message: DeviceMessage = message) -> None:
                if not failure.check(CancelledError) and self.running:
                    self.log.failure(
                        "sending message {id} to a device failed", failure, id=message.id
                    )

            def finished(_: Any, d: Deferred[None] = d) -> None:
                self._sending.discard(d)

            d.addErrback(failed).addBoth(finished)

    # One message

    async def _deliver(self, message: DeviceMessage) -> None:
        """
        Try to send ``message`` once, and record how it went.
        """
        channel = self._channels.get(message.kind)
        if channel is None:
            await self._give_up(message, f"this server has no {message.kind} channel")
            return
        try:
            await self._semaphores[message.kind].run(self._send, channel, message)
        except CancelledError:
            raise
        except AddressRefused as e:
            await self._give_up(message, str(e) or "the gateway refused the address")
        except ChannelError as e:
            await self._failed(message, channel, str(e) or type(e).__name__)
        except Exception as e:
            await self._failed(message, channel, f"{type(e).__name__}: {e}")
        else:
            await self._store.device_message_sent(message.id, self.now_ms())
            self._tell(message, "sent")
            name = getattr(channel, "name", message.kind)
            if name in self._failing:
                self._failing.discard(name)
                self.log.info("the {channel} channel takes messages again", channel=name)

    def _send(self, channel: Any, message: DeviceMessage) -> "Deferred[None]":
        d: Deferred[None] = channel.send(
            message.address, message.text, message.subject, message.unsubscribe
        )
        return d

    async def _give_up(self, message: DeviceMessage, reason: str) -> None:
        self.log.warn(
            "giving up {category} message {id} to a {kind} address: {reason}",
            category=message.category, id=message.id, kind=message.kind, reason=reason,
        )
        await self._store.device_message_given_up(message.id, self.now_ms(), reason)
        self._tell(message, "given_up")

    async def _failed(self, message: DeviceMessage, channel: Any, error: str) -> None:
        name = getattr(channel, "name", message.kind)
        now = self.now_ms()
        if now - message.due_at >= int(self.give_up_after * 1000):
            await self._give_up(message, f"still failing after a day: {error}")
            return
        if name not in self._failing:
            self._failing.add(name)
            self.log.warn(
                "the {channel} channel fails ({error}): messages wait and are tried again",
                channel=name, error=error,
            )
        tries = message.tries + 1
        delay = retry_delay(tries, self.first_delay, self.max_delay)
        self.log.debug(
            "{kind} message {id} failed (try {tries}): {error}; again in {delay:.0f}s",
            kind=message.kind, id=message.id, tries=tries, error=error, delay=delay,
        )
        await self._store.device_message_failed(message.id, now + int(delay * 1000), error)
        self._tell(message, "failed")


__all__ = ["Delivery", "retry_delay"]
