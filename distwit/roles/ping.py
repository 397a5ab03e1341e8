"""
The ping role: its service (the directory, and the registry heartbeat
when there is a registry) and, built on it, its HTTP resource.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.web.resource import IResource

from distwit.config import Settings
from distwit.ping.heartbeat import Heartbeat
from distwit.ping.resource import PingResource
from distwit.ping.service import PingService
from distwit.roles.process import ProcessParts
from distwit.s2s import paths

log = Logger()


def make_ping_service(settings: Settings, reactor: Any, parts: ProcessParts) -> PingService:
    """
    The ping role's service; with a registry configured, it registers and
    sends heartbeats there.
    """
    children: list[IService] = []
    if settings.registry:
        children.append(
            Heartbeat(
                parts.client,
                paths.registry_base(settings.registry),
                settings.public_url,
                parts.key.public_key_b64(),
                reactor,
            )
        )
    else:
        log.warn("no registry configured (--registry): this ping server is known to nobody")
    return PingService(clock=reactor, verifier=parts.verifier, children=children)


def make_ping_resource(service: PingService) -> IResource:
    """
    The ping role's HTTP resource on ``service``: ``/lookup`` and
    ``/exchange`` (mounted at :data:`distwit.s2s.paths.PING`).
    """
    routes = PingResource(
        service.directory, service.verifier, service.clock, max_wait=service.max_wait
    )
    resource: IResource = routes.resource()
    return resource
