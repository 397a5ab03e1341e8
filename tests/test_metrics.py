"""
Prometheus metrics (issue 17): a registry, a ping server and two twitter
servers as real processes, each with ``--metrics-listen``; after a post, a
follow across the servers and a mention (a notice through the outbox),
``/metrics`` of every role parses with the Prometheus text parser and
holds the metrics the issue lists, with sensible values.  Route labels
are patterns, never raw paths.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.wsgi import WSGIResource

from distwit.roles.metrics import route_of, route_words
from distwit.tap import Options, makeService
from tests.processes import ROOT, ServerProcess, free_port
from tests.test_federation import Federation, acct, call, follow, home, post, wait_for

INTERVAL = 1.0


class MeasuredFederation(Federation):
    """
    A federation whose every process serves metrics on a port of its own.
    """

    def __init__(self, case: SynchronousTestCase, pings: int = 1) -> None:
        self.metrics_ports: dict[str, int] = {}
        super().__init__(case, pings)

    def start(self, name: str, *options: str, port: int | None = None,
              host: str = "127.0.0.1") -> ServerProcess:
        metrics_port = self.metrics_ports.setdefault(name, free_port())
        if "--metrics-listen" not in options:
            options += ("--metrics-listen", f"tcp:{metrics_port}:interface=127.0.0.1")
        return super().start(name, *options, port=port, host=host)

    def scrape(self, name: str) -> dict[str, list[Any]]:
        """
        The samples of ``name``'s /metrics, by sample name.
        """
        url = f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            self.case.assertEqual(response.status, 200)
            text = response.read().decode("utf-8")
        samples: dict[str, list[Any]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    """
    The sum of the samples called ``name`` whose labels include ``labels``.
    """
    return sum(
        s.value for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def has(samples: dict[str, list[Any]], name: str, **labels: str) -> bool:
    """
    Whether a sample called ``name`` has ``labels``.
    """
    return any(
        all(s.labels.get(k) == v for k, v in labels.items()) for s in samples.get(name, [])
    )


class MetricsTests(SynchronousTestCase):
    def test_every_role(self) -> None:
        """
        Each role's /metrics, scraped after some traffic: the twitter
        servers count requests by route and status with latency
        histograms, time the database, count posts and notices, time the
        delivery to each peer and know each peer up, with no gap nor
        outbox left; the ping server has its table and exchanges; the
        registry its live ping servers.
        """
        federation = MeasuredFederation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=INTERVAL)
        alice, bob = acct("alice", s1), acct("bob", s2)
        s1_authority = s1.url.split("//", 1)[1]
        s2_authority = s2.url.split("//", 1)[1]
        post(s1, "alice", "hello from s1")
        follow(s2, "bob", alice)
        wait_for(lambda: any(s["text"] == "hello from s1" for s in home(s2, "bob")),
                 20, "alice's post on s2")
        post(s1, "alice", f"hi @{bob}")
        wait_for(
            lambda: any(s["text"] == f"hi @{bob}" for s in call(
                s2, "GET", "/1.1/statuses/mentions_timeline.json", "bob")),
            20, "the mention on s2",
        )
        s2.request("GET", "/bob/status/123456789")  # a 404 page
        s2.request("GET", "/nobody-here/followers")

        def settled() -> Any:
            s1m, s2m = federation.scrape("s1"), federation.scrape("s2")
            ok = (
                value(s1m, "distwit_notices_total", outcome="sent") >= 1
                and value(s1m, "distwit_outbox_depth") == 0
                and value(s2m, "distwit_gap_messages") == 0
                and has(s2m, "distwit_peer_gap_messages", peer=s1_authority)
                and value(s2m, "distwit_peer_up", peer=s1_authority) == 1
                and value(s1m, "distwit_peer_up", peer=s2_authority) == 1
            )
            return (s1m, s2m) if ok else None

        (s1m, s2m), _ = wait_for(settled, 30, "metrics after the traffic", 0.5)

        # Requests by route (the pattern) and status, with latencies.
        self.assertGreaterEqual(value(
            s1m, "distwit_http_requests_total", role="twitter",
            route="/1.1/statuses/update.json", method="POST", status="200"), 2)
        self.assertEqual(value(
            s2m, "distwit_http_requests_total", route="/{name}/status/{id}", status="404"), 1)
        self.assertEqual(value(
            s2m, "distwit_http_requests_total", route="/{name}/followers", status="404"), 1)
        for samples in (s1m, s2m):
            routes = {s.labels["route"] for s in samples["distwit_http_requests_total"]}
            self.assertFalse([r for r in routes if "bob" in r or "123456789" in r], routes)
        self.assertGreaterEqual(value(
            s1m, "distwit_http_request_duration_seconds_count",
            route="/1.1/statuses/update.json"), 2)
        self.assertGreater(value(
            s1m, "distwit_http_request_duration_seconds_sum",
            route="/1.1/statuses/update.json"), 0)
        # s2 answered s1's range fetch and the notice, signed.
        self.assertGreaterEqual(value(
            s1m, "distwit_http_requests_total", route="/s2s/feed/{name}.rss", status="200")
            + value(s2m, "distwit_http_requests_total", route="/s2s/notice", status="200"), 1)

        # The database.
        for samples in (s1m, s2m):
            self.assertGreater(value(samples, "distwit_db_wait_seconds_count"), 0)
            self.assertGreater(value(samples, "distwit_db_transaction_seconds_count"), 0)
            self.assertGreater(value(samples, "distwit_db_transaction_seconds_sum"), 0)

        # Posts and deliveries.
        self.assertEqual(value(s1m, "distwit_posts_total"), 2)
        self.assertEqual(value(s2m, "distwit_posts_total"), 0)
        self.assertGreaterEqual(value(s1m, "distwit_notices_total", kind="mention",
                                      outcome="sent"), 1)
        self.assertGreaterEqual(value(s2m, "distwit_notices_total", kind="follow",
                                      outcome="sent"), 1)
        self.assertEqual(value(s1m, "distwit_notices_total", outcome="refused"), 0)
        lag = value(s1m, "distwit_notice_delivery_seconds_count", peer=s2_authority)
        self.assertGreaterEqual(lag, 1)
        self.assertLess(value(s1m, "distwit_notice_delivery_seconds_sum", peer=s2_authority)
                        / lag, 30)

        # The federation: peers, gaps, the outbox.
        self.assertGreaterEqual(value(s2m, "distwit_peer_requests_total", peer=s1_authority,
                                      kind="twitter", outcome="ok"), 1)
        self.assertGreater(value(s2m, "distwit_peer_last_success_timestamp_seconds",
                                 peer=s1_authority), 1.7e9)
        self.assertEqual(value(s2m, "distwit_peer_certificate_problem"), 0)
        self.assertGreaterEqual(value(s2m, "distwit_peer_requests_total", kind="ping",
                                      outcome="ok"), 1)
        self.assertEqual(value(s2m, "distwit_authors_behind"), 0)
        self.assertEqual(value(s2m, "distwit_peer_gap_messages", peer=s1_authority), 0)
        self.assertEqual(value(s1m, "distwit_outbox_oldest_age_seconds"), 0)
        self.assertEqual(value(s1m, "distwit_info", role="twitter"), 1)

        # The ping server: its table and exchanges.
        ping = federation.scrape("ping0")
        self.assertGreaterEqual(value(ping, "distwit_ping_table_entries"), 1)
        self.assertEqual(value(ping, "distwit_ping_subscribers"), 2)
        self.assertGreaterEqual(value(ping, "distwit_ping_exchanges_total", status="200"), 4)
        self.assertGreaterEqual(value(
            ping, "distwit_http_requests_total", role="ping", route="/ping/exchange"), 4)

        # The registry: its live ping servers.
        registry = federation.scrape("registry")
        self.assertEqual(value(registry, "distwit_registry_live_ping_servers"), 1)
        self.assertGreaterEqual(value(
            registry, "distwit_http_requests_total", route="/registry/pings", status="200"), 1)

        # An outbox that cannot deliver: s2 stopped, a mention waits.
        s2.stop()
        post(s1, "alice", f"are you there @{bob}")

        def waiting() -> Any:
            samples = federation.scrape("s1")
            return samples if (
                value(samples, "distwit_outbox_depth") >= 1
                and value(samples, "distwit_notices_total", outcome="failed") >= 1
                and value(samples, "distwit_peer_up", peer=s2_authority) == 0
            ) else None

        # Every metric the example dashboard charts is one of these.
        names = set().union(*(set(m) for m in (s1m, s2m, ping, registry)))
        with open(os.path.join(ROOT, "conf", "grafana-distwit.json"), encoding="utf-8") as f:
            dashboard = json.load(f)
        charted = {
            name
            for panel in dashboard["panels"]
            for target in panel["targets"]
            for name in re.findall(r"distwit_[a-z_]+", target["expr"])
        }
        self.assertGreaterEqual(len(charted), 15)
        self.assertEqual(sorted(charted - names), [])

        samples, _ = wait_for(waiting, 30, "the waiting notice in s1's metrics", 0.5)
        self.assertGreater(value(samples, "distwit_peer_failures", peer=s2_authority), 0)
        for server in (s1, s2):
            self.assertNotIn("Traceback", server.log_text())


class RouteTests(SynchronousTestCase):
    def test_routes_are_patterns(self) -> None:
        """
        A route label keeps the words distwit's routes declare and
        replaces numbers and names: whatever a stranger asks for, the
        label is one of a bounded set.
        """
        import distwit.roles.twitter  # noqa: F401  (every route's module)

        words = route_words()
        cases = {
            "/1.1/statuses/show/1234.json": "/1.1/statuses/show/{id}.json",
            "/1.1/statuses/update.json": "/1.1/statuses/update.json",
            "/alice": "/{name}",
            "/alice/status/99": "/{name}/status/{id}",
            "/alice.rss": "/{name}.rss",
            "/@bob@example.org": "/{name}",
            "/s2s/notice": "/s2s/notice",
            "/ping/exchange": "/ping/exchange",
            "/a/b/c/d/e/f/g/h": "/{name}/{name}/{name}/{name}/{name}/{name}/...",
            "/": "/",
            "/%00%ff/../x": "/{name}/{name}/{name}",
        }
        for path, route in cases.items():
            self.assertEqual(route_of(path.encode(), words), route, path)


class OptionTests(SynchronousTestCase):
    def make(self, *args: str) -> Any:
        options = Options()
        options.parseOptions(["--data", self.mktemp(), "--listen", "tcp:0", *args])
        return makeService(options, MemoryReactorClock())

    def test_off_by_default(self) -> None:
        """
        Without ``--metrics-listen`` nothing listens for metrics; with it,
        a listener of its own (not the site's) serves /metrics.
        """
        names = [s.name for s in self.make()]
        self.assertNotIn("metrics", names)
        service = self.make("--metrics-listen", "tcp:0:interface=127.0.0.1")
        metrics = service.getServiceNamed("metrics")
        # prometheus_client's resource (it renders in a thread: scraped
        # for real in MetricsTests).
        self.assertIsInstance(metrics.factory.resource.children[b"metrics"], WSGIResource)
        self.assertIsNot(metrics.factory, service.getServiceNamed("web").factory)

    def test_bad_endpoint(self) -> None:
        """
        A ``--metrics-listen`` that is no endpoint is refused with the
        option's name, before anything is made.
        """
        data = self.mktemp()
        error = self.assertRaises(
            usage.UsageError, Options().parseOptions,
            ["--data", data, "--metrics-listen", "tcp:abc"],
        )
        self.assertIn("--metrics-listen 'tcp:abc' is not a Twisted endpoint", str(error))
        self.assertFalse(os.path.exists(data))
