"""
The ping role's service: holds the directory.  The HTTP resource that
answers the exchange (:mod:`distwit.ping.resource`) is built on it by the
composition root (:mod:`distwit.roles.ping`).

Registration with the registry and heartbeats are other services; they
are handed in as ``children`` and started and stopped with this one.
"""

from __future__ import annotations

from typing import Iterable

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from distwit.ping.directory import MemoryDirectory
from distwit.ping.interfaces import IDirectory
from distwit.s2s.interfaces import IRequestVerifier


class PingService(MultiService):
    """
    Holds the directory of accts for the twitter servers that use this
    ping server.

    :param directory: the table; a new :class:`MemoryDirectory` on
        ``clock`` if not given.
    :param clock: the injected reactor (its clock times the long-polls).
    :param verifier: checks the signature of every exchange (kept for the
        resource built on this service).
    :param children: services that live and die with this one (the
        registry heartbeat, for instance).
    :param max_wait: the longest long-poll, in seconds.
    """

    name = "ping"
    log = Logger()

    def __init__(
        self,
        directory: IDirectory | None = None,
        *,
        clock: IReactorTime,
        verifier: IRequestVerifier,
        children: Iterable[IService] = (),
        max_wait: float = 60,
    ) -> None:
        super().__init__()
        self.directory: IDirectory = (
            directory if directory is not None else MemoryDirectory(clock)
        )
        self.clock = clock
        self.verifier = verifier
        self.max_wait = max_wait
        for child in children:
            child.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        self.log.info("ping role started, epoch {epoch}", epoch=self.directory.epoch)

    def stopService(self) -> Deferred[None]:
        # Answer the long-polls now rather than drop them with the port.
        self.directory.release_waiters()
        return super().stopService()  # type: ignore[no-any-return]
