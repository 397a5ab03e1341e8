"""
The one HTTP site of a process: every role it serves at the same paths
whether alone or together (the ping role under ``/ping/``, the registry
under ``/registry/``, the twitter role at the root), with
``/.well-known/distwit`` (the server's key and endpoints) and ``/health``
in every role.
"""

from __future__ import annotations

from typing import Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource

from distwit import __version__
from distwit.config import Settings
from distwit.http import Health, LimitedSite, Root
from distwit.s2s import paths
from distwit.s2s.keys import ServerKey
from distwit.s2s.metadata import MetadataResource, metadata_document

#: Where each role other than twitter is mounted (twitter takes the rest).
MOUNTS = {"ping": paths.PING, "registry": paths.REGISTRY}


def make_site(
    settings: Settings,
    roles: list[str],
    key: ServerKey,
    resources: Mapping[str, IResource],
    well_known: Resource,
    endpoints: Mapping[str, str],
    reactor: IReactorTime | None = None,
) -> LimitedSite:
    """
    The site serving ``resources`` (by role), ``well_known`` (to which the
    metadata document is added) and ``/health``, within the limits of
    ``settings`` (idle timeout, body size, connections).
    """
    root = Root(resources.get("twitter"))
    for role, mount in MOUNTS.items():
        if role in resources:
            root.putChild(paths.child_name(mount), resources[role])
    document = metadata_document(
        settings.public_url, settings.role, roles, key, dict(endpoints), __version__
    )
    well_known.putChild(paths.METADATA.encode(), MetadataResource(document))
    root.putChild(paths.child_name(paths.WELL_KNOWN), well_known)
    root.putChild(b"health", Health(settings.role, roles))
    site = LimitedSite(
        root,
        idle_timeout=settings.idle_timeout,
        max_body_bytes=settings.max_body_bytes,
        max_connections=settings.max_connections,
        reactor=reactor,
        trusted_proxies=settings.trusted_proxies,
    )
    site.displayTracebacks = False
    site.routine_paths = ROUTINE_PATHS
    site.access_log = settings.access_log != "off"
    if settings.access_log not in ("on", "off"):
        site.access_log = False
        site.access_path = settings.access_log
    return site


#: The paths of the exchanges servers make with each other all the time
#: (ping exchanges and long polls, the registry's list and heartbeats,
#: range copies, last numbers, metadata) and of health checks: their access
#: lines are at debug level when they succeed.
ROUTINE_PATHS = tuple(
    path.encode("ascii")
    for path in (
        paths.PING + paths.PING_EXCHANGE,
        paths.REGISTRY + paths.REGISTRY_PINGS,
        paths.REGISTRY + paths.REGISTRY_REGISTER,
        paths.S2S + paths.RANGE_FEED,
        paths.S2S + paths.LAST,
        paths.WELL_KNOWN + "/" + paths.METADATA,
        "/health",
    )
)

