"""
``twistd distwit``: options and the service tree.

``makeService`` returns a MultiService with one child per role, one for
the listening port and one that closes the outgoing connection pool.  The
services and resources are built by the composition root,
:mod:`distwit.roles`: each role's service first, then its resources on
it; :mod:`distwit.roles.site` puts them at the same paths whatever roles
run together.
"""

from __future__ import annotations

from typing import Any

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.python import usage
from twisted.web.resource import IResource, Resource

from distwit.config import (
    ROLES,
    SETTINGS,
    ConfigError,
    Settings,
    default,
    default_public_url,
    resolve,
)


class ServerOptions(usage.Options):
    """
    Options shared by ``twistd distwit`` and the ``distwit`` command: where
    the data is and which config file to read.
    """

    optParameters: list[list[Any]] = [
        ["config", "c", None, "INI file with the same settings (command line wins)"],
        ["data", "d", None,
         f"folder for SQLite, keys and other state [default: ./{default('data')}]"],
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
        f"SQLite in ./{default('data')}, {default_public_url(default('listen'))}."
    )
    optParameters = ServerOptions.optParameters + [
        ["role", "r", None, f"{'|'.join(ROLES)} [default: {default('role')}]"],
        ["listen", "l", None, f"Twisted endpoint to listen on [default: {default('listen')}]"],
        ["public-url", None, None, "how others reach this server [default: from --listen]"],
        ["registry", None, None, "URL of the ping server registry [default in all: this server]"],
        ["ping-interval", None, None,
         f"seconds between exchanges with ping servers [default: {default('ping_interval')}]"],
        ["long-poll", None, None,
         f"seconds a ping server may hold an exchange (0: off) [default: {default('long_poll')}]"],
        ["ca-file", None, None, "PEM file of CAs to trust for https peers [default: the system's]"],
        ["redis", None, None,
         "redis://host[:port][/db]: share state with the other twitter processes"
         " of this server (with --database postgresql://...) [default: none]"],
        ["admission", None, None,
         f"which ping servers the registry lists: approval|open [default: {default('admission')}]"],
        ["local-https-port", None, None,
         f"the port of --local-https on 127.0.0.1 [default: {default('local_https_port')}]"],
        ["metrics-listen", None, None,
         "Twisted endpoint serving Prometheus metrics at /metrics [default: none]"],
        ["log-format", None, None,
         f"text|json: how the log is written [default: {default('log_format')}]"],
        ["log-level", None, None,
         f"debug|info|warn|error: the least level logged [default: {default('log_level')}]"],
        ["access-log", None, None,
         "on|off|FILE: one line per HTTP request, in the log or a file"
         f" [default: {default('access_log')}]"],
    ]
    optFlags = [
        ["peers-allow-private", None,
         "let this server connect on behalf of others to private or loopback addresses"],
        ["signin-allow-http", None, "let visitors sign in with home servers on plain http"],
        ["signin-allow-private", None,
         "let visitors sign in with home servers at private or loopback addresses"],
        ["local-https", None,
         "also serve https on 127.0.0.1 for local clients that speak nothing else"
         " (tweepy, twitter-api-v2), with a CA made in the data folder"],
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
            peers_allow_private="true" if self["peers-allow-private"] else None,
            admission=self["admission"],
            local_https="true" if self["local-https"] else None,
            local_https_port=self["local-https-port"],
            metrics_listen=self["metrics-listen"],
            redis=self["redis"],
            log_format=self["log-format"],
            log_level=self["log-level"],
            access_log=self["access-log"],
        )
        self.settings = self.settings_from(given)
        if self.settings.metrics_listen:
            _check_endpoint("--metrics-listen", self.settings.metrics_listen)


def _check_endpoint(option: str, description: str) -> None:
    """
    :raise usage.UsageError: ``description`` is not a Twisted server
        endpoint string (nothing listens yet).
    """
    from twisted.internet.protocol import Factory

    try:
        strports.service(description, Factory())
    except (ValueError, KeyError, TypeError) as e:
        raise usage.UsageError(
            f"{option} {description!r} is not a Twisted endpoint"
            f" (like tcp:9100:interface=127.0.0.1): {e}"
        ) from None


def makeService(options: Options, reactor: Any = None) -> MultiService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    from distwit.roles.logs import LoggingService
    from distwit.roles.preflight import check_before_start
    from distwit.roles.process import make_process_parts, prepare_data_folder
    from distwit.roles.site import make_site
    from distwit.s2s import paths

    settings = options.settings
    check_before_start(settings, reactor)
    prepare_data_folder(settings.data_folder)
    roles = ["twitter", "ping", "registry"] if settings.role == "all" else [settings.role]
    public_url = settings.public_url

    parts = make_process_parts(settings, reactor)
    metrics = None
    if settings.metrics_listen:
        from distwit.roles.metrics import Metrics

        metrics = Metrics(settings.role)
    verifier = parts.verifier
    top = LoggingService(settings, getattr(options, "parent", None))
    parts.closer.setServiceParent(top)
    resources: dict[str, IResource] = {}
    well_known = Resource()
    endpoints = paths.endpoints(public_url, roles)
    if "twitter" in roles:
        from distwit.roles.twitter import make_twitter_service, make_twitter_web

        twitter = make_twitter_service(settings, reactor, parts)
        twitter.setServiceParent(top)
        if metrics is not None:
            metrics.instrument_twitter(
                twitter, min(max(settings.ping_interval, 1.0), 15.0)
            ).setServiceParent(top)
        twitter_web = make_twitter_web(twitter)
        resources["twitter"] = twitter_web.root
        for name, child in twitter_web.well_known.items():
            well_known.putChild(name, child)
    if "ping" in roles:
        from distwit.roles.ping import make_ping_resource, make_ping_service

        ping = make_ping_service(settings, reactor, parts)
        ping.setServiceParent(top)
        if metrics is not None:
            metrics.instrument_ping(ping)
        resources["ping"] = make_ping_resource(ping)
    if "registry" in roles:
        from distwit.roles.registry import make_registry_resource, make_registry_service

        registry = make_registry_service(settings, reactor, parts.key)
        registry.setServiceParent(top)
        if metrics is not None:
            metrics.instrument_registry(registry)
        resources["registry"] = make_registry_resource(registry, verifier)

    site = make_site(settings, roles, parts.key, resources, well_known, endpoints, reactor)
    web = strports.service(settings.listen, site, reactor=reactor)
    web.setName("web")
    web.setServiceParent(top)
    if settings.local_https:
        from distwit.roles.local_https import local_https_service

        local_https_service(settings, site, reactor).setServiceParent(top)
    if metrics is not None:
        metrics.wrap_site(site)
        metrics_web = strports.service(settings.metrics_listen, metrics.site(), reactor=reactor)
        metrics_web.setName("metrics")
        metrics_web.setServiceParent(top)
    return top
