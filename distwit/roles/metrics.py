"""
Prometheus metrics (issue 17), served on a listener of their own
(``--metrics-listen``, off by default) at ``/metrics``.

One :class:`Metrics` per process, on its own ``CollectorRegistry`` (not
the library's global one, so a test may run several).  Nothing below the
composition root imports prometheus_client: the roles are instrumented
through the hooks they already offer (the site's root resource, the
store's pool, ``Microblog.on_post``, the outbox's and the peer health's
observers) and, for what is in memory or in the database, by collectors
read at scrape time or refreshed every few seconds.

Request metrics are labelled by route, the path's pattern
(``/1.1/statuses/show/{id}.json``, ``/{name}/status/{id}``), never the raw
path: a segment is kept only when it is a word some route of distwit
declares, a number becomes ``{id}``, anything else ``{name}``; so the
label values are bounded whatever strangers ask for.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.twisted import MetricsResource
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from distwit import __version__
from distwit.s2s import paths

#: Latency buckets (seconds) of HTTP requests, peers and notices.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Buckets of database waits and transactions.
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
#: Buckets of how long a notice took from queued to accepted.
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: The most path segments a route label keeps.
MAX_SEGMENTS = 6

_FORMAT = re.compile(r"\A(.*?)(\.(?:json|xml|rss|atom))\Z")
_WORD = re.compile(r"\A[A-Za-z0-9_.-]{1,40}\Z")


def route_words() -> frozenset[str]:
    """
    Every literal path segment a route of distwit declares: the Klein
    apps' rules, the API's endpoint names, the server-to-server paths, and
    the few resources mounted by hand.
    """
    words = {
        "", "1.1", "api", "health", ".well-known", "ping", "registry", "s2s", "oauth",
        "oauth2", "oidc", "profile_images", "static", "metrics", "favicon.ico", "robots.txt",
    }
    for name, value in vars(paths).items():
        if name.isupper() and isinstance(value, str):
            words.update(value.strip("/").split("/"))
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("distwit.") or module is None:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or cls.__module__ != module_name:
                continue
            app = vars(cls).get("app")
            url_map = getattr(app, "url_map", None)
            if url_map is not None:
                for rule in url_map.iter_rules():
                    words.update(
                        s for s in str(rule.rule).split("/") if "<" not in s
                    )
            for member in vars(cls).values():
                declaration = getattr(member, "api_endpoint", None)
                for pattern in getattr(declaration, "patterns", ()):
                    words.update(s for s in pattern.split("/") if _WORD.match(s))
    return frozenset(w for w in words if _WORD.match(w) or w == "")


def route_of(path: bytes | str, words: frozenset[str]) -> str:
    """
    The route label of ``path`` (see the module's docstring).
    """
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    segments = path.split("?", 1)[0].split("/")[1:]
    out = []
    for segment in segments[:MAX_SEGMENTS]:
        match = _FORMAT.match(segment)
        base, ext = (match.group(1), match.group(2)) if match else (segment, "")
        if base.isdigit():
            base = "{id}"
        elif base not in words:
            base = "{name}"
        out.append(base + ext)
    if len(segments) > MAX_SEGMENTS:
        out.append("...")
    return "/" + "/".join(out)


def role_of(route: str, role: str) -> str:
    """
    Which role answered ``route`` in a process serving ``role``.
    """
    if role != "all":
        return role
    for name, mount in (("ping", paths.PING), ("registry", paths.REGISTRY)):
        if route == mount or route.startswith(mount + "/"):
            return name
    return "twitter"


class Metrics:
    """
    The metrics of one process, on their own registry.

    :param role: the process's role (``all``, ``twitter``, ``ping``,
        ``registry``).
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        info = Gauge("distwit_info", "distwit version and role of this process",
                     ["version", "role"], registry=r)
        info.labels(__version__, role).set(1)
        self.requests = Counter(
            "distwit_http_requests", "HTTP requests answered, by route and status",
            ["role", "route", "method", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "distwit_http_request_duration_seconds", "time to answer an HTTP request",
            ["role", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self._words: frozenset[str] | None = None
        # The twitter role
        self.db_wait = Histogram(
            "distwit_db_wait_seconds", "time a transaction waited for a database connection",
            buckets=DB_BUCKETS, registry=r,
        )
        self.db_transaction = Histogram(
            "distwit_db_transaction_seconds", "time a transaction took (with its commit)",
            buckets=DB_BUCKETS, registry=r,
        )
        self.posts = Counter("distwit_posts", "posts written by this server's users", registry=r)
        self.notices = Counter(
            "distwit_notices", "tries to deliver an outbox notice, by kind and outcome"
            " (sent, failed: to be tried again, refused: dropped)",
            ["kind", "outcome"], registry=r,
        )
        self.delivery_seconds = Histogram(
            "distwit_notice_delivery_seconds",
            "time from queueing a notice to its receiver accepting it, by receiver",
            ["peer"], buckets=DELIVERY_BUCKETS, registry=r,
        )
        self.peer_requests = Counter(
            "distwit_peer_requests", "signed requests to other servers, by server and outcome",
            ["peer", "kind", "outcome"], registry=r,
        )
        self.peer_seconds = Histogram(
            "distwit_peer_request_duration_seconds",
            "time other servers took to answer (long-polls left out)",
            ["peer", "kind"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.authors_behind = Gauge(
            "distwit_authors_behind", "remote authors with messages known but not yet copied",
            registry=r,
        )
        self.gap_messages = Gauge(
            "distwit_gap_messages", "messages of remote authors known but not yet copied",
            registry=r,
        )
        self.peer_gap_messages = Gauge(
            "distwit_peer_gap_messages",
            "messages of followed authors known but not yet copied, by their server",
            ["peer"], registry=r,
        )
        self.outbox_depth = Gauge("distwit_outbox_depth", "notices waiting in the outbox",
                                  registry=r)
        self.outbox_oldest = Gauge(
            "distwit_outbox_oldest_age_seconds", "age of the oldest notice in the outbox"
            " (0 when empty)", registry=r,
        )
        # Phones, IM and e-mail (docs/design/devices.md)
        self.device_messages = Counter(
            "distwit_device_messages", "tries to hand a message to a device's gateway, by"
            " kind, what it is, and outcome (sent, failed: to be tried again, given_up)",
            ["kind", "category", "outcome"], registry=r,
        )
        self.device_outbox_depth = Gauge(
            "distwit_device_outbox_depth", "messages to devices waiting in their outbox",
            registry=r,
        )
        self.device_outbox_failing = Gauge(
            "distwit_device_outbox_failing",
            "messages to devices waiting after at least one failed try", registry=r,
        )
        self.device_outbox_given_up = Gauge(
            "distwit_device_outbox_given_up", "messages to devices given up in the last week",
            registry=r,
        )
        self.device_outbox_oldest = Gauge(
            "distwit_device_outbox_oldest_age_seconds",
            "how long the oldest due message to a device has waited (0 when none)", registry=r,
        )
        # The ping role
        self.ping_exchanges = Counter(
            "distwit_ping_exchanges", "exchanges answered by this ping server, by status",
            ["status"], registry=r,
        )

    # Requests

    def wrap_site(self, site: Site) -> None:
        """
        Count and time every request of ``site``.
        """
        site.resource = MeasuredRoot(site.resource, self)

    def request_finished(self, request: Request, started: float) -> None:
        if self._words is None:
            self._words = route_words()
        route = route_of(request.path, self._words)
        role = role_of(route, self.role)
        status = str(request.code)
        method = request.method.decode("ascii", "replace")[:10]
        if method not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            method = "other"
        self.requests.labels(role, route, method, status).inc()
        self.request_seconds.labels(role, route).observe(time.monotonic() - started)
        if role == "ping" and route == paths.PING + "/exchange":
            self.ping_exchanges.labels(status).inc()

    # The twitter role

    def instrument_twitter(self, service: Any, refresh: float) -> Service:
        """
        Hook into the twitter role's ``service``; the service returned
        refreshes what is read from the database every ``refresh`` seconds.
        """
        store = service.store
        if hasattr(store, "wrap_pool"):
            store.wrap_pool(lambda pool: TimedPool(pool, self.db_wait, self.db_transaction))
        service.microblog.on_post.append(lambda post: self.posts.inc())
        clock = service.reactor
        if service.outbox is not None:
            def notice(item: Any, target: str, outcome: str) -> None:
                self.notices.labels(item.kind, outcome).inc()
                if outcome == "sent":
                    lag = max(0.0, clock.seconds() - item.created_at / 1000)
                    self.delivery_seconds.labels(_authority(target)).observe(lag)

            service.outbox.observers.append(notice)
        if service.peer_health is not None:
            def peer(authority: str, kind: str, ok: bool, seconds: float | None) -> None:
                self.peer_requests.labels(authority, kind, "ok" if ok else "failed").inc()
                if seconds is not None:
                    self.peer_seconds.labels(authority, kind).observe(seconds)

            service.peer_health.observers.append(peer)
            self.registry.register(PeerCollector(service.peer_health))
        delivery = getattr(service, "delivery", None)
        if delivery is not None:
            def device_message(message: Any, outcome: str) -> None:
                self.device_messages.labels(message.kind, message.category, outcome).inc()

            delivery.observers.append(device_message)
        return Refresher(self, store, clock, refresh, devices=delivery is not None)

    def instrument_ping(self, service: Any) -> None:
        self.registry.register(PingCollector(service.directory))

    def instrument_registry(self, service: Any) -> None:
        self.registry.register(RegistryCollector(service))

    def site(self) -> Site:
        """
        The site of the metrics listener: ``/metrics``.
        """
        root = Resource()
        root.putChild(b"metrics", MetricsResource(registry=self.registry))
        site = Site(root)
        site.displayTracebacks = False
        return site


def _authority(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].lower() or "(unresolved)"


class MeasuredRoot(Resource):
    """
    The site's root, timing each request from when it is routed to when
    it finishes.
    """

    def __init__(self, root: IResource, metrics: Metrics) -> None:
        super().__init__()
        self._root = root
        self._metrics = metrics

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:  # type: ignore[override]
        started = time.monotonic()

        def finished(_: Any) -> None:
            self._metrics.request_finished(request, started)

        request.notifyFinish().addBoth(finished)
        return self._root.getChildWithDefault(path, request)

    def render(self, request: IRequest) -> bytes:
        return self._root.render(request)  # type: ignore[no-any-return]


class TimedPool:
    """
    A connection pool whose transactions are timed: how long each waited
    for a connection, and how long it then took.
    """

    def __init__(self, pool: Any, wait: Histogram, transaction: Histogram) -> None:
        self._pool = pool
        self._wait = wait
        self._transaction = transaction

    def runInteraction(self, interaction: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        submitted = time.monotonic()
        started: list[float] = []

        def timed(*a: Any, **k: Any) -> Any:
            started.append(time.monotonic())
            self._wait.observe(started[0] - submitted)
            return interaction(*a, **k)

        def done(result: Any) -> Any:
            if started:
                self._transaction.observe(time.monotonic() - started[0])
            return result

        d = self._pool.runInteraction(timed, *args, **kw)
        return d.addBoth(done)

    def close(self) -> Any:
        return self._pool.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class Refresher(Service):
    """
    Every ``interval`` seconds, reads from the database what the gauges
    show: remote authors behind and by how much, the outbox, and (with
    ``devices``) the devices' outbox.
    """

    name = "metrics-refresher"
    log = Logger()

    def __init__(
        self, metrics: Metrics, store: Any, clock: Any, interval: float, devices: bool = False
    ) -> None:
        self._metrics = metrics
        self._devices = devices
        self._store = store
        self._clock = clock
        self.interval = interval
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None
        self._peers: set[str] = set()

    async def refresh(self) -> None:
        m = self._metrics
        behind, missing, depth, oldest = await self._store.federation_totals()
        m.authors_behind.set(behind)
        m.gap_messages.set(missing)
        m.outbox_depth.set(depth)
        m.outbox_oldest.set(max(0.0, self._clock.seconds() - oldest / 1000) if depth else 0)
        by_peer: dict[str, int] = {}
        for author in await self._store.followed_authors():
            by_peer[author.authority] = by_peer.get(author.authority, 0) + max(
                0, author.known - author.held
            )
        for peer in self._peers - set(by_peer):
            m.peer_gap_messages.remove(peer)
        for peer, count in by_peer.items():
            m.peer_gap_messages.labels(peer).set(count)
        self._peers = set(by_peer)
        if self._devices:
            now = int(self._clock.seconds() * 1000)
            health = await self._store.device_queue_health(now)
            m.device_outbox_depth.set(health.pending)
            m.device_outbox_failing.set(health.failing)
            m.device_outbox_given_up.set(health.given_up)
            m.device_outbox_oldest.set(
                0 if health.oldest_due is None else max(0.0, (now - health.oldest_due) / 1000)
            )

    def _guarded(self) -> None:
        if self._round is not None:
            return

        def failed(failure: Any) -> None:
            if not failure.check(CancelledError) and self.running:
                self.log.failure("refreshing the metrics failed", failure)

        def done(_: Any) -> None:
            self._round = None

        self._round = ensureDeferred(self.refresh())
        self._round.addErrback(failed).addBoth(done)

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._guarded)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stopService(self) -> Any:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._round is not None:
            self._round.cancel()


class PeerCollector(Collector):
    """
    Every peer server's state, as the peer health keeps it in memory.
    """

    def __init__(self, health: Any) -> None:
        self._health = health

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily(
            "distwit_peer_up", "whether the last request to the server was answered",
            labels=["peer", "kind"],
        )
        last = GaugeMetricFamily(
            "distwit_peer_last_success_timestamp_seconds",
            "when the server last answered (0: never)", labels=["peer", "kind"],
        )
        failures = GaugeMetricFamily(
            "distwit_peer_failures", "requests to the server failed in a row",
            labels=["peer", "kind"],
        )
        certificate = GaugeMetricFamily(
            "distwit_peer_certificate_problem",
            "whether the server's TLS certificate was refused", labels=["peer", "kind"],
        )
        for record in self._health.records():
            labels = [record.authority, record.kind]
            down = record.failures > 0 and record.last_failure >= record.last_success
            up.add_metric(labels, 0 if down else 1)
            last.add_metric(labels, record.last_success / 1000)
            failures.add_metric(labels, record.failures)
            certificate.add_metric(labels, 1 if record.certificate_error else 0)
        return [up, last, failures, certificate]

    def describe(self) -> Iterable[Any]:
        return []


class PingCollector(Collector):
    """
    The ping server's table: how many accts, how many twitter servers.
    """

    def __init__(self, directory: Any) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Any]:
        entries = GaugeMetricFamily(
            "distwit_ping_table_entries", "accts in this ping server's table"
        )
        entries.add_metric([], len(self._directory))
        servers = GaugeMetricFamily(
            "distwit_ping_subscribers", "twitter servers exchanging with this ping server"
        )
        servers.add_metric([], self._directory.server_count())
        return [entries, servers]

    def describe(self) -> Iterable[Any]:
        return []


class RegistryCollector(Collector):
    """
    The registry's live list.
    """

    def __init__(self, service: Any) -> None:
        self._service = service

    def collect(self) -> Iterable[Any]:
        live = GaugeMetricFamily(
            "distwit_registry_live_ping_servers", "ping servers the registry lists as live"
        )
        live.add_metric([], len(self._service.entries()))
        return [live]

    def describe(self) -> Iterable[Any]:
        return []
