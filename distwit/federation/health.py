"""
The federation's health, as this server sees it (issue 17): every server
it talks to (last successful exchange, latency, failures in a row,
certificate problems), how complete its copy of every followed remote
author is, and the outbox.

Every signed request this server makes goes through one
:class:`MeasuredClient`, which tells :class:`PeerHealth` how it went.
:class:`PeerHealth` keeps that in memory and writes what changed to the
``peer_health`` table every few seconds, so that ``distwit status`` reads
it from the database whether the server runs or not (and with several
twitter processes on one PostgreSQL, each writes what it saw last).
:class:`FederationHealth` assembles the report that the operator page and
``distwit status`` show; :func:`status_text` is the command's text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import (
    AuthorCopy,
    DeviceQueueHealth,
    IStore,
    OutboxTarget,
    PeerRecord,
)

#: Seconds between writes to ``peer_health`` when a peer went down, came
#: back or failed another way...
FLUSH_INTERVAL = 2.0
#: ... and when only the times of the last exchanges moved.
QUIET_FLUSH_INTERVAL = 30.0

#: A request given a timeout longer than this is a long-poll: its time
#: says how long the ping server waited, not how fast it is.
LONG_POLL_AFTER = 31.0

#: Words of a connection failure that make it a certificate problem.
_CERTIFICATE_WORDS = ("certificate", "verificationerror", "ssl", "tls", "hostname mismatch")

#: What a peer observer is told of each request: the authority, its kind
#: (twitter, ping, registry), whether it was answered, and the seconds
#: it took (``None`` for a long-poll).
PeerObserver = Callable[[str, str, bool, "float | None"], None]


def kind_of(url: str) -> str:
    """
    Which role a request to ``url`` is for: ``ping``, ``registry`` or
    ``twitter``.
    """
    path = urlsplit(url).path
    for kind, mount in (("ping", paths.PING), ("registry", paths.REGISTRY)):
        if path == mount or path.startswith(mount.rstrip("/") + "/"):
            return kind
    return "twitter"


def describe_failure(error: BaseException) -> tuple[str, str]:
    """
    ``(error, certificate_error)``: words for the operator (the detail
    kept from the requester), and the same again when it is a TLS
    certificate problem ('' otherwise).
    """
    detail = str(getattr(error, "detail", "") or "")
    text = str(error) or type(error).__name__
    if detail:
        text = f"{text} ({detail})"
    text = " ".join(text.split())[:300]
    certificate = text if any(w in detail.lower() for w in _CERTIFICATE_WORDS) else ""
    return text, certificate


@dataclass
class _Peer:
    authority: str
    kind: str
    url: str
    last_success: int = 0
    last_failure: int = 0
    failures: int = 0
    latency_ms: int = 0
    last_error: str = ""
    certificate_error: str = ""

    def record(self, now: int) -> PeerRecord:
        return PeerRecord(
            self.authority, self.kind, self.url, self.last_success, self.last_failure,
            self.failures, self.latency_ms, self.last_error, self.certificate_error, now,
        )


class PeerHealth(Service):
    """
    How every server this one talks to answered lately; what changed is
    written to the store every :data:`FLUSH_INTERVAL` seconds (and when the
    service stops).

    :ivar observers: told of every request (metrics).
    """

    name = "peer-health"
    log = Logger()

    def __init__(self, store: IStore, clock: Any, interval: float = FLUSH_INTERVAL) -> None:
        self._store = store
        self._clock = clock
        self.interval = interval
        self._peers: dict[tuple[str, str], _Peer] = {}
        self._dirty: set[tuple[str, str]] = set()
        #: A peer's state changed (up, down, another error): write soon.
        self._changed = False
        self._last_flush = float("-inf")
        self._loop: LoopingCall | None = None
        self._flushing: Deferred[None] | None = None
        self.observers: list[PeerObserver] = []

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def _peer(self, url: str) -> _Peer:
        parts = urlsplit(url)
        # One process may serve several roles: a peer of each kind.
        key = (parts.netloc.lower(), kind_of(url))
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(key[0], key[1], f"{parts.scheme}://{parts.netloc}")
        self._dirty.add(key)
        return peer

    def succeeded(self, url: str, seconds: float | None) -> None:
        """
        A request to ``url`` was answered (2xx) in ``seconds``
        (``None``: a long-poll).
        """
        peer = self._peer(url)
        if peer.failures or not peer.last_success:
            self._changed = True
        peer.last_success = self._now_ms()
        peer.failures = 0
        peer.certificate_error = ""
        if seconds is not None:
            peer.latency_ms = round(seconds * 1000)
        for observe in self.observers:
            observe(peer.authority, peer.kind, True, seconds)

    def answered(self, url: str, seconds: float | None) -> None:
        """
        The server at ``url`` answered, though not with what was asked
        (a refusal): it is up.
        """
        self.succeeded(url, seconds)

    def failed(self, url: str, error: BaseException) -> None:
        """
        No answer from ``url`` (or not one to use): ``error`` says why.
        """
        peer = self._peer(url)
        peer.last_failure = self._now_ms()
        peer.failures += 1
        before = peer.last_error
        peer.last_error, certificate = describe_failure(error)
        if peer.failures == 1 or peer.last_error != before:
            self._changed = True
        if certificate:
            peer.certificate_error = certificate
        for observe in self.observers:
            observe(peer.authority, peer.kind, False, None)

    def records(self) -> list[PeerRecord]:
        """
        What is known now of every peer, by authority.
        """
        now = self._now_ms()
        return [self._peers[key].record(now) for key in sorted(self._peers)]

    def flush(self) -> "Deferred[None]":
        """
        Write what changed since the last flush.
        """
        if not self._dirty:
            return succeed(None)
        self._changed = False
        self._last_flush = self._clock.seconds()
        now = self._now_ms()
        records = [self._peers[key].record(now) for key in sorted(self._dirty)]
        self._dirty.clear()
        return self._store.save_peers(records)

    def _guarded_flush(self) -> "Deferred[None]":
        def failed(failure: Any) -> None:
            if not failure.check(CancelledError) and self.running:
                self.log.failure("saving peer health failed", failure)

        quiet = self._clock.seconds() - self._last_flush < QUIET_FLUSH_INTERVAL
        if quiet and not self._changed:
            return succeed(None)
        d = self.flush().addErrback(failed)
        self._flushing = d

        def done(result: Any) -> Any:
            self._flushing = None
            return result

        return d.addBoth(done)

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded_flush)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=False)

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        pending = self._flushing if self._flushing is not None else succeed(None)
        return pending.addBoth(lambda _: self.flush()).addErrback(lambda _: None)


@implementer(IS2SClient)
class MeasuredClient:
    """
    An :class:`IS2SClient` that tells :class:`PeerHealth` how each request
    went.  A cancelled request (this server stopped, or gave up a page
    asked ahead) says nothing about the peer and is not counted.
    """

    def __init__(self, client: IS2SClient, health: PeerHealth, clock: Any) -> None:
        self._client = client
        self._health = health
        self._clock = clock

    def _measure(self, url: str, d: "Deferred[Any]", long_poll: bool = False) -> "Deferred[Any]":
        started = self._clock.seconds()

        def answered(result: Any) -> Any:
            self._health.succeeded(url, None if long_poll else self._clock.seconds() - started)
            return result

        def failed(failure: Any) -> Any:
            if not failure.check(CancelledError):
                error = failure.value
                if getattr(error, "status", None) is not None:
                    # It answered, with a refusal: up, though it said no.
                    self._health.answered(url, self._clock.seconds() - started)
                else:
                    self._health.failed(url, error)
            return failure

        return d.addCallbacks(answered, failed)

    def get_json(self, url: str) -> "Deferred[Any]":
        return self._measure(url, self._client.get_json(url))

    def post_json(self, url: str, value: Any, timeout: float | None = None) -> "Deferred[Any]":
        long_poll = timeout is not None and timeout > LONG_POLL_AFTER
        return self._measure(url, self._client.post_json(url, value, timeout=timeout), long_poll)

    def get_bytes(self, url: str, max_size: int | None = None) -> "Deferred[bytes]":
        return self._measure(url, self._client.get_bytes(url, max_size=max_size))


@dataclass(frozen=True)
class HealthReport:
    """
    The federation as this server sees it.

    :ivar now: ms since the epoch, when the report was made.
    :ivar peers: every server it talks to (twitter, ping, registry).
    :ivar authors: every followed remote author, furthest behind first.
    :ivar outbox: the notices waiting, by receiver.
    :ivar ping_servers: the ping servers in use now (empty when not known:
        the report is read from the database alone).
    :ivar devices: the messages to phones, IM and e-mail waiting and
        failing (docs/design/devices.md).
    """

    now: int
    peers: list[PeerRecord]
    authors: list[AuthorCopy]
    outbox: list[OutboxTarget]
    ping_servers: list[str]
    devices: DeviceQueueHealth | None = None

    @property
    def down(self) -> list[PeerRecord]:
        return [p for p in self.peers if is_down(p)]

    @property
    def behind(self) -> list[AuthorCopy]:
        return [a for a in self.authors if a.held < a.known]


def is_down(peer: PeerRecord) -> bool:
    """
    Whether the last request to ``peer`` failed.
    """
    return peer.failures > 0 and peer.last_failure >= peer.last_success


def completeness(author: AuthorCopy) -> float:
    """
    The share of the author's known numbers held here (1.0: complete).
    """
    return 1.0 if author.known <= 0 else min(author.held, author.known) / author.known


class FederationHealth:
    """
    Assembles :class:`HealthReport` from the store (and, in the running
    server, from what is in memory: the latest peer states, the ping
    servers in use).

    :param peers: the running server's :class:`PeerHealth` (``None`` in
        ``distwit status``: the table alone).
    :param ping_servers: the ping servers in use now.
    """

    def __init__(
        self,
        store: IStore,
        clock: Any = None,
        peers: PeerHealth | None = None,
        ping_servers: Callable[[], list[str]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._peers = peers
        self._ping_servers = ping_servers

    def is_operator(self, account_id: int) -> "Deferred[bool]":
        """
        Whether the local account may see the operator page.
        """
        return self._store.is_admin(account_id)

    def held_from(self, account_id: int) -> "Deferred[int]":
        """
        The lowest number of the remote account from which every number up
        to what the copier keeps is held (1: all its history).
        """
        return self._store.held_from(account_id)

    async def report(self) -> HealthReport:
        now = int((self._clock.seconds() if self._clock is not None else time.time()) * 1000)
        kept = {(p.authority, p.kind): p for p in await self._store.peers()}
        if self._peers is not None:
            kept.update({(p.authority, p.kind): p for p in self._peers.records()})
        peers = sorted(kept.values(), key=lambda p: (p.kind, p.authority))
        pings = self._ping_servers() if self._ping_servers is not None else []
        return HealthReport(
            now,
            peers,
            await self._store.followed_authors(),
            await self._store.outbox_targets(),
            pings,
            await self._store.device_queue_health(now),
        )


def ago(now: int, then: int) -> str:
    """
    ``then`` (ms) as "12s ago", "3m ago", "2h ago", "4d ago", or "never".
    """
    if then <= 0:
        return "never"
    seconds = max(0, (now - then) // 1000)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def peer_state(peer: PeerRecord) -> str:
    if is_down(peer):
        return "CERTIFICATE" if peer.certificate_error else "DOWN"
    return "ok" if peer.last_success else "unknown"


def device_line(health: DeviceQueueHealth, now: int) -> str:
    """
    The devices' outbox in one line: waiting, failing, given up, sent.
    """
    line = (
        f"Devices: {health.pending} message{'s' if health.pending != 1 else ''} waiting"
        f" ({health.failing} failing)"
    )
    if health.oldest_due is not None:
        line += f", oldest due {ago(now, health.oldest_due)}"
    return line + f"; last week {health.sent} sent, {health.given_up} given up"


def status_text(report: HealthReport) -> str:
    """
    ``distwit status``: the report as lines for a terminal.
    """
    now = report.now
    lines = [
        f"Peers: {len(report.peers)} known, {len(report.down)} down",
    ]
    for p in report.peers:
        line = (
            f"  {peer_state(p):<11} {p.kind:<8} {p.authority:<30}"
            f" last ok {ago(now, p.last_success)}, {p.latency_ms} ms"
        )
        if p.failures:
            line += f", {p.failures} failures in a row (last {ago(now, p.last_failure)})"
        lines.append(line)
        if is_down(p) and p.last_error:
            lines.append(f"      {p.last_error}")
        if p.certificate_error:
            lines.append(f"      certificate: {p.certificate_error}")
    behind = report.behind
    lines.append(
        f"Followed authors: {len(report.authors)}, {len(behind)} behind"
    )
    for a in report.authors:
        state = "complete" if a.held >= a.known else "BEHIND"
        lines.append(
            f"  {state:<9} {a.handle}@{a.authority}: held {a.held:,} of {a.known:,}"
            f" ({completeness(a):.1%}), {a.followers} follower{'s' if a.followers != 1 else ''}"
            " here"
        )
    depth = sum(t.depth for t in report.outbox)
    oldest = min((t.oldest for t in report.outbox), default=0)
    lines.append(
        f"Outbox: {depth} notice{'s' if depth != 1 else ''} waiting"
        + (f", oldest queued {ago(now, oldest)}" if depth else "")
    )
    for t in report.outbox:
        line = (
            f"  {t.target or '(receiver not found yet)'}: {t.depth} waiting, oldest"
            f" {ago(now, t.oldest)}, {t.attempts} tries"
        )
        if t.last_error:
            line += f"; last error: {t.last_error[:200]}"
        lines.append(line)
    if report.devices is not None:
        lines.append(device_line(report.devices, now))
    pings = report.ping_servers or [p.url for p in report.peers if p.kind == "ping"]
    lines.append(f"Ping servers: {len(pings)}")
    lines.extend(f"  {url}" for url in pings)
    return "\n".join(lines) + "\n"

