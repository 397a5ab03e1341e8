"""
The registry role: its service (the list of live ping servers, kept in its
database) and, built on it, its HTTP resource.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource

from distwit.config import Settings
from distwit.registry import store
from distwit.registry.resource import RegistryResource
from distwit.registry.service import RegistryService
from distwit.roles.process import open_or_exit
from distwit.s2s.interfaces import IRequestVerifier
from distwit.s2s.keys import ServerKey


def open_registry_store(settings: Settings, reactor: Any) -> store.SQLRegistryStore:
    """
    Open (and migrate) the registry role's database (``--database``, or
    ``registry.sqlite3`` in the data folder), or exit with a message that
    says what is wrong.
    """
    return open_or_exit(
        lambda: store.registry_engine(settings.database, settings.data),
        lambda engine: store.open_registry_store(engine, reactor),
    )


def make_registry_service(settings: Settings, reactor: Any, key: ServerKey) -> RegistryService:
    """
    The registry role's service, on its opened database, admitting as
    ``settings.admission`` says.  In ``--role=all`` the process's own ping
    server (its public URL, signing with its key) is admitted without
    approval, so the one-command server needs no ``distwit registry
    approve``.

    :param key: the process's server key
        (:attr:`~distwit.roles.process.ProcessParts.key`).
    """
    own_url = own_key = ""
    if settings.role == "all":
        own_url, own_key = settings.public_url, key.public_key_b64()
    return RegistryService(
        open_registry_store(settings, reactor),
        reactor,
        admission=settings.admission,
        own_url=own_url,
        own_key=own_key,
    )


def make_registry_resource(service: RegistryService, verifier: IRequestVerifier) -> IResource:
    """
    The registry role's HTTP resource on ``service``: ``/register`` and
    ``/pings`` (mounted at :data:`distwit.s2s.paths.REGISTRY`).
    """
    resource: IResource = RegistryResource(service, verifier).resource()
    return resource
