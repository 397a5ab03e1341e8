"""
The ping role's service.

In this first version it starts, holds its (empty) directory and answers
``/health``; the exchange with twitter servers comes with federation.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.resource import Resource


@dataclass
class DirectoryEntry:
    """
    What the ping server knows of one acct.
    """

    last: int
    home: str
    updated: float


class PingService(Service):
    """
    Holds the directory of accts for the twitter servers that use this
    ping server.
    """

    name = "ping"
    log = Logger()

    def __init__(self) -> None:
        self.directory: dict[str, DirectoryEntry] = {}

    def resource(self) -> Resource:
        """
        The ping role's HTTP resource (its routes beyond ``/health``
        arrive with federation).
        """
        return Resource()

    def startService(self) -> None:
        super().startService()
        self.log.info("ping role started")
