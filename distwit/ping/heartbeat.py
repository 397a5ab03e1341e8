"""
A ping server's registration with the registry, repeated as a heartbeat.

The registry drops a ping server it has not heard from for three of its
heartbeat intervals, so the heartbeat goes on whatever happens: a failed
round is logged and the next one comes at the next interval.  Registration
and heartbeat are the same signed ``POST <registry>/register``
(:mod:`distwit.registry.resource`).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel

from distwit.http import one_line
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient, S2SResponseError


class Heartbeat(Service):
    """
    Registers this ping server with the registry at start, then every
    ``interval`` seconds.

    :param client: sends the signed requests.
    :param registry_url: the base URL of the registry role's routes (its
        ``/register`` is appended), e.g. ``https://reg.example/registry`` when
        the registry runs inside a ``--role=all`` server; no trailing slash.
    :param own_public_url: this ping server's public URL as the settings
        hold it (no trailing slash), the one its requests are signed as.
    :param own_public_key_b64: its Ed25519 public key, unpadded base64url.
    :param clock: the injected reactor's clock.
    :param interval: seconds between heartbeats; keep it at or below the
        registry's ``heartbeat_interval`` (a warning says when it is not).
    """

    name = "heartbeat"
    log = Logger()

    def __init__(
        self,
        client: IS2SClient,
        registry_url: str,
        own_public_url: str,
        own_public_key_b64: str,
        clock: IReactorTime,
        interval: float = 10.0,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.client = client
        self.register_url = registry_url + paths.REGISTRY_REGISTER
        self.own_public_url = own_public_url
        self.own_public_key_b64 = own_public_key_b64
        self.clock = clock
        self.interval = float(interval)
        #: The version of the registry's list in its last answer.
        self.registry_version: str | None = None
        #: Whether the registry keeps this ping server waiting for its
        #: operator's approval (its last answer said so).
        self.pending = False
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None
        self._failing = False
        self._warned_interval = False

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded_round)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> Deferred[None]:
        """
        Stop the loop and cancel the heartbeat in flight.
        """
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._round is None:
            return succeed(None)
        in_flight = self._round
        in_flight.cancel()
        return in_flight

    def beat(self) -> Deferred[None]:
        """
        One registration; fails with the client's error.
        """
        return ensureDeferred(self._beat())

    async def _beat(self) -> None:
        answer = await self.client.post_json(
            self.register_url,
            {"public_url": self.own_public_url, "public_key": self.own_public_key_b64},
            # A heartbeat that takes longer than the interval is late anyway.
            timeout=self.interval,
        )
        if not isinstance(answer, dict):
            raise S2SResponseError(f"the registry answered {answer!r}, not an object")
        if self._failing:
            self._failing = False
            self.log.info("registered with {url} again", url=self.register_url)
        pending = answer.get("admission") == "pending"
        if pending != self.pending:
            self.pending = pending
            if pending:
                self.log.warn(
                    "the registry at {url} has not approved this ping server yet: it is not"
                    " listed until its operator runs `distwit registry approve {own}`",
                    url=self.register_url, own=self.own_public_url,
                )
            else:
                self.log.info("the registry at {url} lists this ping server", url=self.register_url)
        version = answer.get("version")
        if version != self.registry_version:
            # Told once at start; later versions (other ping servers come
            # and go) at debug level.
            level = LogLevel.info if self.registry_version is None else LogLevel.debug
            self.registry_version = version if isinstance(version, str) else None
            self.log.emit(
                level,
                "registered with {url}: the list is at version {version}",
                url=self.register_url,
                version=version,
            )
        self._check_interval(answer.get("heartbeat_interval"))

    def _check_interval(self, theirs: Any) -> None:
        if self._warned_interval or type(theirs) not in (int, float) or theirs <= 0:
            return
        if self.interval > theirs:
            self._warned_interval = True
            self.log.warn(
                "heartbeats every {ours} s but the registry at {url} expects one every "
                "{theirs} s: it may drop this ping server",
                ours=self.interval,
                theirs=theirs,
                url=self.register_url,
            )

    def _guarded_round(self) -> Deferred[None]:
        """
        One heartbeat; a failure is logged and the loop goes on.
        """
        self._round = self.beat()

        def failed(failure: Any) -> None:
            if not self.running and failure.check(CancelledError):
                return  # stopService cancelled it
            # The registry is down or refused: the operator's business, told
            # once in one line (again when it answers, and if it fails again).
            self.log.emit(
                LogLevel.debug if self._failing else LogLevel.warn,
                "heartbeat to {url} failed: {error}",
                url=self.register_url,
                error=one_line(failure),
            )
            if not failure.check(S2SResponseError):
                self.log.failure("heartbeat to {url} failed", failure, url=self.register_url,
                                 level=LogLevel.debug)
            self._failing = True

        def done(result: Any) -> Any:
            self._round = None
            return result

        return self._round.addErrback(failed).addBoth(done)
