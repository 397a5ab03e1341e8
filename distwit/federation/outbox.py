"""
The durable outbox: signed notices to other servers (follows, unfollows,
mentions, replies), kept in the database until the receiver takes them.

Whoever has something to tell one server queues it (:meth:`Outbox.queue`,
or the sweep the outbox runs each round, which queues the mention and
reply notices of new posts).  Every round (a ``LoopingCall``, and at once
when something is queued) the outbox claims the notices that are due and
sends each as a signed POST through the s2s client, a few at a time per
receiving server.  A notice is forgotten when the receiver accepts it
(2xx) or refuses it for good (4xx other than 408 and 429: logged once, at
warn, with the reason); otherwise it is tried again after a delay that
doubles up to :data:`MAX_DELAY`, for as long as it takes: never dropped
after some number of tries.  The queue is in the database, so a notice
outlives a crash of the sender; on start every pending notice is tried at
once.  See docs/design/notices.md.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredSemaphore,
    ensureDeferred,
)
from twisted.logger import Logger

from distwit.http import PeerLog, one_line
from distwit.core.accts import authority_of
from distwit.core.rounds import Rounds
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient, S2SResponseError
from distwit.store.interfaces import IStore, OutboxItem

#: Seconds between rounds (a round also runs at once when a notice is queued).
INTERVAL = 2.0
#: The delay after a notice's first failed try (seconds); it doubles each try...
FIRST_DELAY = 1.0
#: ... up to this.
MAX_DELAY = 300.0
#: Notices being sent at once to one receiving server.
PER_PEER = 2
#: Notices claimed in one round.
BATCH = 100
#: How long a claimed notice is kept from other rounds and processes
#: (seconds): longer than any one try takes.
LEASE = 120.0

#: Where each kind of notice is posted, on the receiver's public URL.
NOTICE_URLS: dict[str, Callable[[str], str]] = {
    "follow": paths.follow_url,
    "unfollow": paths.follow_url,
    "mention": paths.notice_url,
    "reply": paths.notice_url,
    "favorite": paths.notice_url,
    "unfavorite": paths.notice_url,
    "retweet": paths.notice_url,
    "unretweet": paths.notice_url,
    "direct_message": paths.notice_url,
}

#: HTTP statuses of a refusal that trying again could change.
TRANSIENT_REFUSALS = (408, 429)


def notice_text(body: dict[str, Any]) -> str:
    """
    A notice's body as kept in the outbox and sent: compact JSON.
    """
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class NoticeRefused(Exception):
    """
    A notice can never be delivered (its receiver cannot be found, or
    refused it for good); ``str()`` says why.
    """


def retry_delay(attempts: int, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> float:
    """
    Seconds to wait after the ``attempts``-th failed try (1, 2, ...).
    """
    return float(min(first * 2 ** min(attempts - 1, 32), cap))


def refused_for_good(error: S2SResponseError) -> bool:
    """
    Whether the receiver's answer refuses the notice itself (a 4xx but
    408 and 429), rather than saying "not now".
    """
    status = error.status
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_REFUSALS


class Outbox(Rounds):
    """
    Sends the queued notices, round after round.

    :param locate: finds the receiving server of a notice queued without
        one (from the accounts its body names); raises
        :class:`NoticeRefused` when there is none to find.
    :param sweep: run at the start of each round: queues what the posts
        written since the last round call for.
    """

    name = "outbox"
    log = Logger()
    round_failed = "outbox round failed"

    def __init__(
        self,
        store: IStore,
        client: IS2SClient,
        clock: Any,
        *,
        interval: float = INTERVAL,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        per_peer: int = PER_PEER,
        batch: int = BATCH,
    ) -> None:
        self._store = store
        self._client = client
        super().__init__(clock, interval)
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._per_peer = per_peer
        self._batch = batch
        self.locate: Callable[[OutboxItem], Awaitable[str]] | None = None
        self.sweep: Callable[[], Awaitable[Any]] | None = None
        self._semaphores: dict[str, DeferredSemaphore] = {}
        #: Receivers (their public URLs) whose notices failed here lately.
        self._failing: set[str] = set()
        #: Told of every try: the notice, its receiver's URL, and
        #: ``"sent"``, ``"failed"`` (to be tried again) or ``"refused"``.
        self.observers: list[Callable[[OutboxItem, str, str], None]] = []
        #: Which servers fail (logged once per change).
        self._peers = PeerLog(self.log, "server")

    def _tell(self, item: OutboxItem, target: str, outcome: str) -> None:
        for observe in self.observers:
            observe(item, target, outcome)

    async def queue(self, target: str, kind: str, body: dict[str, Any]) -> int:
        """
        Keep a notice for the server at ``target`` (its public URL; ``""``:
        to be found by :attr:`locate`) and send it soon.

        :return: its id in the outbox.
        """
        if kind not in NOTICE_URLS:
            raise ValueError(f"no notice kind {kind!r}")
        text = notice_text(body)
        notice_id = await self._store.queue_notice(target, kind, text, self.now_ms())
        self.wake()
        return notice_id

    # The loop

    async def _one_round(self) -> None:
        if self._restarted:
            pending = await self._store.notices_due_now(self.now_ms())
            self._restarted = False
            if pending:
                self.log.info("{count} notices waiting in the outbox", count=pending)
        if self.sweep is not None:
            try:
                await self.sweep()
            except CancelledError:
                raise
            except Exception:
                self.log.failure("queueing the notices of new posts failed")
        now = self.now_ms()
        claimed = await self._store.claim_notices(now, now + int(LEASE * 1000), self._batch)
        for item in claimed:
            d = ensureDeferred(self._deliver(item))
            self._sending.add(d)

            def failed(failure: Any, item: OutboxItem = item) -> None:
                if not failure.check(CancelledError) and self.running:
                    self.log.failure("sending notice {id} failed", failure, id=item.id)

            def finished(_: Any, d: Deferred[None] = d) -> None:
                self._sending.discard(d)

            d.addErrback(failed).addBoth(finished)

    # One notice

    async def _deliver(self, item: OutboxItem) -> None:
        """
        Try to send ``item`` once, and record how it went.
        """
        try:
            url = self._url(item)
            target = item.target
            if not target:
                if self.locate is None:
                    raise NoticeRefused("nobody here can find its receiver")
                target = await self.locate(item)
                url = self._url(item, target)
            body = json.loads(item.body)
            semaphore = self._semaphores.setdefault(
                authority_of(target), DeferredSemaphore(self._per_peer)
            )
            await semaphore.run(self._client.post_json, url, body)
        except CancelledError:
            raise
        except NoticeRefused as e:
            await self._refused(item, str(e))
        except S2SResponseError as e:
            if refused_for_good(e):
                await self._refused(item, str(e))
            else:
                await self._failed(item, str(e), one_line(e))
        except Exception as e:
            await self._failed(item, f"{type(e).__name__}: {e}")
        else:
            await self._store.notice_done(item.id)
            self._tell(item, target, "sent")
            self._peers.answered(target)
            if target in self._failing:
                # It answers again: what waits out a backoff for it goes now.
                self._failing.discard(target)
                if await self._store.hurry_notices(target, self.now_ms()):
                    self.wake()

    def _url(self, item: OutboxItem, target: str | None = None) -> str:
        make = NOTICE_URLS.get(item.kind)
        if make is None:
            raise NoticeRefused(f"no notice kind {item.kind!r}")
        return make((target if target is not None else item.target).rstrip("/"))

    async def _refused(self, item: OutboxItem, reason: str) -> None:
        self.log.warn(
            "dropping {kind} notice {id} to {target}: {reason}",
            kind=item.kind, id=item.id, target=item.target or "(unresolved)", reason=reason,
        )
        await self._store.notice_done(item.id)
        self._tell(item, item.target, "refused")

    async def _failed(self, item: OutboxItem, error: str, cause: str = "") -> None:
        if item.target:
            self._failing.add(item.target)
        attempts = item.attempts + 1
        delay = retry_delay(attempts, self.first_delay, self.max_delay)
        self._peers.failed(item.target or "(unresolved)", cause or error, "sending notices")
        self.log.debug(
            "{kind} notice {id} to {target} failed (try {attempts}): {error};"
            " again in {delay:.0f}s",
            kind=item.kind, id=item.id, target=item.target or "(unresolved)",
            attempts=attempts, error=error, delay=delay,
        )
        await self._store.notice_failed(item.id, self.now_ms() + int(delay * 1000), error)
        self._tell(item, item.target, "failed")
