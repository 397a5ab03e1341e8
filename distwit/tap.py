"""
``twistd distwit``: options and the service tree.

``makeService`` returns a MultiService with one child per role, one for
the listening port and one that closes the outgoing connection pool.
Every role is at the same paths alone or together: the ping role under
``/ping/``, the registry under ``/registry/``, the twitter role at the
root; ``/.well-known/distwit`` (the server's key and endpoints) and
``/health`` answer in every role.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application import strports
from twisted.application.service import MultiService, Service
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Site

from distwit.config import ROLES, SETTINGS, ConfigError, Settings, resolve
from distwit.http import Health, Root

log = Logger()


class ServerOptions(usage.Options):
    """
    Options shared by ``twistd distwit`` and the ``distwit`` command: where
    the data is and which config file to read.
    """

    optParameters: list[list[Any]] = [
        ["config", "c", None, "INI file with the same settings (command line wins)"],
        ["data", "d", None, "folder for SQLite, keys and other state [default: ./distwit-data]"],
        ["database", None, None, "sqlite:PATH or postgresql://... [default: SQLite in --data]"],
    ]

    def settings_from(self, command_line: dict[str, str | None]) -> Settings:
        try:
            return resolve(command_line, self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


class Options(ServerOptions):
    synopsis = "[options]"
    longdesc = (
        "Run a distwit server.  With no options: every role in one process, "
        "SQLite in ./distwit-data, http://localhost:8080."
    )
    optParameters = ServerOptions.optParameters + [
        ["role", "r", None, f"{'|'.join(ROLES)} [default: all]"],
        ["listen", "l", None, "Twisted endpoint to listen on [default: tcp:8080]"],
        ["public-url", None, None, "how others reach this server [default: from --listen]"],
        ["registry", None, None, "URL of the ping server registry [default in all: this server]"],
        ["ping-interval", None, None, "seconds between exchanges with ping servers [default: 5]"],
        ["long-poll", None, None, "seconds a ping server may hold an exchange (0: off) [default: 0]"],
        ["ca-file", None, None, "PEM file of CAs to trust for https peers [default: the system's]"],
    ]
    optFlags = [
        ["signin-allow-http", None, "let visitors sign in with home servers on plain http"],
        ["signin-allow-private", None,
         "let visitors sign in with home servers at private or loopback addresses"],
    ]

    def postOptions(self) -> None:
        given: dict[str, str | None] = {setting.key: None for setting in SETTINGS}
        given.update(
            role=self["role"],
            listen=self["listen"],
            public_url=self["public-url"],
            data=self["data"],
            database=self["database"],
            registry=self["registry"],
            ping_interval=self["ping-interval"],
            long_poll=self["long-poll"],
            ca_file=self["ca-file"],
            allow_http="true" if self["signin-allow-http"] else None,
            allow_private="true" if self["signin-allow-private"] else None,
        )
        self.settings = self.settings_from(given)


def prepare_data_folder(path: str) -> None:
    """
    Create the data folder (readable by its owner only) if it is missing.
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"distwit: cannot create data folder {path}: {e.strerror}") from None


def open_twitter_store(settings: Settings, reactor: Any) -> Any:
    """
    Open (and migrate) the twitter role's database, or exit with a message
    that says what is wrong.
    """
    from distwit.store.sql import DatabaseURLError, engine_for, open_store

    try:
        engine = engine_for(settings.database, settings.data)
    except DatabaseURLError as e:
        raise SystemExit(f"distwit: {e}") from None
    try:
        return open_store(engine, reactor)
    except Exception as e:
        raise SystemExit(f"distwit: cannot open {engine.describe()}: {e}") from None


class HTTPClientService(Service):
    """
    Closes the process's one outgoing HTTP connection pool when the
    process stops.
    """

    name = "http-client"

    def __init__(self, client: Any) -> None:
        self.client = client

    def stopService(self) -> Any:
        super().stopService()
        return self.client.close()


def makeService(options: Options, reactor: Any = None) -> MultiService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    from distwit import __version__
    from distwit.s2s import paths
    from distwit.s2s.client import S2SClient, make_http_client
    from distwit.s2s.keys import ServerKey
    from distwit.s2s.metadata import MetadataResource, metadata_document
    from distwit.s2s.verifier import SignatureVerifier, metadata_fetcher

    settings = options.settings
    prepare_data_folder(settings.data)
    roles = ["twitter", "ping", "registry"] if settings.role == "all" else [settings.role]
    public_url = settings.public_url.rstrip("/")

    # One identity, one outgoing connection pool and one verifier per
    # process, whatever roles it serves.
    try:
        key = ServerKey.load_or_create(settings.data)
    except (OSError, ValueError) as e:
        raise SystemExit(f"distwit: cannot load the server key in {settings.data}: {e}") from None
    try:
        http_client = make_http_client(reactor, ca_file=settings.ca_file or None)
    except (OSError, ValueError) as e:
        raise SystemExit(
            f"distwit: cannot use the CA file {settings.ca_file}: {e}"
        ) from None
    client = S2SClient(http_client, key, public_url, reactor)
    verifier = SignatureVerifier(metadata_fetcher(http_client, reactor), reactor, public_url)

    top = MultiService()
    HTTPClientService(http_client).setServiceParent(top)
    resources: dict[str, Any] = {}
    well_known = Resource()
    endpoints = paths.endpoints(public_url, roles)
    if "twitter" in roles:
        from distwit.roles.twitter import TwitterService

        twitter = TwitterService(
            settings,
            open_twitter_store(settings, reactor),
            reactor,
            client=client,
            verifier=verifier,
        )
        twitter.setServiceParent(top)
        resources["twitter"] = twitter.resource()
        for name, child in twitter.well_known().items():
            well_known.putChild(name, child)
    if "ping" in roles:
        from distwit.ping.heartbeat import Heartbeat
        from distwit.ping.service import PingService

        children = []
        if settings.registry:
            children.append(
                Heartbeat(
                    client,
                    paths.registry_base(settings.registry),
                    public_url,
                    key.public_key_b64(),
                    reactor,
                )
            )
        else:
            log.warn("no registry configured (--registry): this ping server is known to nobody")
        ping = PingService(clock=reactor, verifier=verifier, children=children)
        ping.setServiceParent(top)
        resources["ping"] = ping.resource()
    if "registry" in roles:
        from distwit.registry.service import RegistryService

        registry = RegistryService(settings.data, reactor, verifier)
        registry.setServiceParent(top)
        resources["registry"] = registry.resource()
        endpoints.update(
            register=f"{public_url}/registry/register", pings=f"{public_url}/registry/pings"
        )

    # Every role at the same paths whether alone or together: the ping
    # role under /ping/, the registry under /registry/, the twitter role
    # at the root.
    root = Root(resources.get("twitter"))
    for role, mount in (("ping", paths.PING), ("registry", paths.REGISTRY)):
        if role in resources:
            root.putChild(paths.child_name(mount), resources[role])
    document = metadata_document(public_url, settings.role, roles, key, endpoints, __version__)
    well_known.putChild(paths.METADATA.encode(), MetadataResource(document))
    root.putChild(paths.child_name(paths.WELL_KNOWN), well_known)
    root.putChild(b"health", Health(settings.role, roles))

    site = Site(root)
    site.displayTracebacks = False
    web = strports.service(settings.listen, site, reactor=reactor)
    web.setName("web")
    web.setServiceParent(top)
    return top
