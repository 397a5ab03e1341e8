"""
The one HTTP site of a process: every role it serves at the same paths
whether alone or together (the ping role under ``/ping/``, the registry
under ``/registry/``, the twitter role at the root), with
``/.well-known/distwit`` (the server's key and endpoints) and ``/health``
in every role.
"""

from __future__ import annotations

from typing import Mapping

from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from distwit import __version__
from distwit.config import Settings
from distwit.http import Health, Root
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
) -> Site:
    """
    The site serving ``resources`` (by role), ``well_known`` (to which the
    metadata document is added) and ``/health``.
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
    site = Site(root)
    site.displayTracebacks = False
    return site
