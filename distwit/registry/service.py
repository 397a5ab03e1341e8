"""
The registry role's service.

In this first version it starts and answers ``/health``; registration,
heartbeats and the live list come with federation.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.resource import Resource


class RegistryService(Service):
    """
    Keeps the list of ping servers.
    """

    name = "registry"
    log = Logger()

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir

    def resource(self) -> Resource:
        """
        The registry's HTTP resource (its routes beyond ``/health`` arrive
        with federation).
        """
        return Resource()

    def startService(self) -> None:
        super().startService()
        self.log.info("registry role started")
