"""
Tests for the registry role (the live list of ping servers, its routes and
its store) and for the ping server's heartbeat to it.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from typing import Any, Generator, cast

from treq.testing import StubTreq
from twisted.application.service import IService
from twisted.internet import reactor
from twisted.internet.defer import (
    Deferred,
    fail,
    inlineCallbacks,
)
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from distwit.http import Root
from distwit.ping.heartbeat import Heartbeat
from distwit.config import DataFolder
from distwit.registry.interfaces import IRegistryStore
from distwit.registry.resource import MAX_BODY, RegistryResource
from distwit.registry.service import RegistryService, list_version
from distwit.registry.store import (
    REGISTRY,
    MemoryRegistryStore,
    RegistryEntry,
    open_registry_store,
    registry_engine,
)
from distwit.store.engines.postgres import PostgresEngine
from distwit.store.engines.sqlite import SQLiteEngine
from distwit.store.schema import (
    TWITTER,
    SchemaTooNew,
    migrations,
    prepare_database,
    schema_version,
)
from distwit.s2s.interfaces import (
    IRequestVerifier,
    IS2SClient,
    S2SResponseError,
)
from tests.support import POSTGRES_SKIP, postgres_url, wipe_postgres
from tests.fakes import (
    SIGNER_HEADER,
    FakeVerifier,
    ScriptedClient,
    json_answer,
    post_signed,
)

P1 = "https://p1.example"
P2 = "https://p2.example"
P3 = "http://p3.example:8080"
BASE = "http://registry.example"
REGISTRY_URL = BASE + "/registry"


def make_key(seed: int) -> str:
    """
    A well-formed Ed25519 public key (32 bytes) in unpadded base64url.
    """
    return base64.urlsafe_b64encode(bytes([seed]) * 32).rstrip(b"=").decode("ascii")


K1, K2, K3 = make_key(1), make_key(2), make_key(3)


@implementer(IRegistryStore)
class ScriptedStore(MemoryRegistryStore):
    """
    A memory store whose answers a test holds back (``hold_all``,
    ``hold_writes``) or breaks (``fail_upserts``, ``raise_on_remove``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.hold_all = False
        self.hold_writes = False
        self.fail_upserts = False
        self.raise_on_remove = 0
        self.held: list[Deferred[Any]] = []

    def _maybe_hold(self, operation: Any, hold: bool) -> Deferred[Any]:
        """
        Run ``operation`` now, or on :meth:`release` when ``hold`` is set.
        """
        if not hold:
            return operation()
        later: Deferred[Any] = Deferred()
        later.addCallback(lambda _: operation())
        self.held.append(later)
        return later

    def upsert(self, public_url: str, public_key: str, now: float) -> Deferred[None]:
        if self.fail_upserts:
            return fail(OSError("disk full"))
        parent = super().upsert
        return self._maybe_hold(lambda: parent(public_url, public_key, now), self.hold_writes)

    def remove(self, public_url: str) -> Deferred[None]:
        if self.raise_on_remove:
            self.raise_on_remove -= 1
            raise RuntimeError("the store broke")
        parent = super().remove
        return self._maybe_hold(lambda: parent(public_url), self.hold_writes)

    def all(self) -> Deferred[list[RegistryEntry]]:
        return self._maybe_hold(super().all, self.hold_all)

    def release(self) -> None:
        held, self.held = self.held, []
        for d in held:
            d.callback(None)


@implementer(IS2SClient)
class StubRegistryClient:
    """
    An S2S client that delivers POSTs to a resource in memory, "signed" as
    ``signer`` through the fake verifier's header.
    """

    def __init__(self, resource: Any, signer: str) -> None:
        self.stub: Any = StubTreq(resource)
        self.signer = signer
        self.timeouts: list[float | None] = []

    def get_json(self, url: str) -> Deferred[Any]:
        d = self.stub.get(url)
        self.stub.flush()
        return d.addCallback(self._json)

    def post_json(self, url: str, value: Any, timeout: float | None = None) -> Deferred[Any]:
        self.timeouts.append(timeout)
        d = self.stub.post(
            url,
            data=json.dumps(value).encode("utf-8"),
            headers={SIGNER_HEADER: [self.signer.encode("ascii")]},
        )
        self.stub.flush()
        return d.addCallback(self._json)

    def get_bytes(self, url: str, max_size: int | None = None) -> Deferred[Any]:
        d = self.stub.get(url)
        self.stub.flush()
        return d.addCallback(lambda response: response.content())

    def _json(self, response: Any) -> Deferred[Any]:
        if response.code != 200:
            raise S2SResponseError(f"status {response.code}")
        return response.json()


class InterfaceTests(SynchronousTestCase):
    def test_provides(self) -> None:
        """
        The memory store provides IRegistryStore, the services provide
        IService, and the tests' fakes provide the s2s interfaces, so they
        stand for the real things.
        """
        self.assertTrue(verifyObject(IRegistryStore, MemoryRegistryStore()))
        self.assertTrue(verifyObject(IRegistryStore, ScriptedStore()))
        self.assertTrue(verifyObject(IRequestVerifier, FakeVerifier()))
        self.assertTrue(verifyObject(IS2SClient, ScriptedClient()))
        self.assertTrue(verifyObject(IS2SClient, StubRegistryClient(None, P1)))
        registry = RegistryService(MemoryRegistryStore(), Clock(), admission="open")
        self.assertTrue(verifyObject(IService, registry))
        heartbeat = Heartbeat(ScriptedClient(), REGISTRY_URL, P1, K1, Clock())
        self.assertTrue(verifyObject(IService, heartbeat))

    def test_version_is_order_free(self) -> None:
        """
        The version depends on the set of (url, key) pairs only.
        """
        a = RegistryEntry(P1, K1, 0.0, 1.0)
        b = RegistryEntry(P2, K2, 5.0, 9.0)
        self.assertEqual(list_version([a, b]), list_version([b, a]))
        self.assertEqual(list_version([a]), list_version([RegistryEntry(P1, K1, 3.0, 4.0)]))
        self.assertNotEqual(list_version([a]), list_version([RegistryEntry(P1, K2, 0.0, 1.0)]))
        self.assertNotEqual(list_version([a]), list_version([a, b]))


class RegistryTestCase(SynchronousTestCase):
    """
    A started registry on a Clock, a memory store and a fake verifier,
    reached through StubTreq.
    """

    interval = 10.0

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = ScriptedStore()
        self.verifier = FakeVerifier()
        self.service = self.make_service()
        self.service.startService()
        self.addCleanup(self.stop)
        self.stub: Any = StubTreq(self.resource())

    def make_service(self) -> RegistryService:
        return RegistryService(
            self.store, self.clock, heartbeat_interval=self.interval, admission="open"
        )

    def resource(self) -> Any:
        """
        The routes over the service, built as the composition root does.
        """
        return RegistryResource(self.service, self.verifier).resource()

    def stop(self) -> None:
        if self.service.running:
            self.store.hold_writes = False
            self.store.release()
            self.successResultOf(self.service.stopService())

    def result(self, response_d: Deferred[Any], code: int = 200) -> Any:
        return json_answer(self, self.stub, response_d, code)[0]

    def post(self, signer: str | None, body: Any) -> Deferred[Any]:
        """
        POST ``body`` (encoded as JSON unless it is bytes) to /register.
        """
        return post_signed(self.stub, BASE + "/register", signer, body)

    def register(self, url: str, key: str) -> Any:
        """
        A registration signed by ``url`` itself; the decoded answer.
        """
        return self.result(self.post(url, {"public_url": url, "public_key": key}))

    def error(self, signer: str | None, body: Any, code: int) -> str:
        answer = self.result(self.post(signer, body), code)
        self.assertEqual(list(answer), ["error"])
        self.assertIsInstance(answer["error"], str)
        return str(answer["error"])

    def pings(self) -> Any:
        return self.result(self.stub.get(BASE + "/pings"))

    def urls(self) -> list[str]:
        return [entry["url"] for entry in self.pings()["pings"]]

    def advance(self, seconds: float, heartbeats: tuple[tuple[str, str], ...] = ()) -> None:
        """
        Let ``seconds`` pass, then the given servers send a heartbeat.
        """
        self.clock.advance(seconds)
        for url, key in heartbeats:
            self.register(url, key)


class RegistrationTests(RegistryTestCase):
    def test_empty(self) -> None:
        """
        A new registry lists no ping servers, with a version and the
        heartbeat interval, to anyone (no signature needed).
        """
        answer = self.pings()
        self.assertEqual(answer["pings"], [])
        self.assertEqual(answer["heartbeat_interval"], 10.0)
        self.assertIsInstance(answer["version"], str)

    def test_register_listed(self) -> None:
        """
        A signed registration puts the ping server on the list with its
        key and the time it was heard; the answer gives the list's new
        version and the heartbeat interval, and that it is listed.
        """
        before = self.pings()["version"]
        answer = self.register(P1, K1)
        self.assertEqual(set(answer), {"version", "heartbeat_interval", "admission"})
        self.assertEqual(answer["admission"], "listed")
        self.assertEqual(answer["heartbeat_interval"], 10.0)
        self.assertNotEqual(answer["version"], before)
        listing = self.pings()
        self.assertEqual(listing["version"], answer["version"])
        self.assertEqual(
            listing["pings"],
            [{"url": P1, "public_key": K1, "last_heard": self.clock.seconds()}],
        )
        self.assertEqual(self.store.rows[P1].public_key, K1)

    def test_sorted_and_normalised(self) -> None:
        """
        The list is sorted by URL; a trailing slash on public_url and
        padding on the key are dropped.
        """
        self.register(P3, K3)
        self.register(P2, K2)
        self.result(self.post(P1, {"public_url": P1 + "/", "public_key": K1 + "="}))
        self.assertEqual(self.urls(), sorted([P1, P2, P3]))
        self.assertEqual(self.pings()["pings"][1]["public_key"], K1)

    def test_heartbeat_keeps(self) -> None:
        """
        A ping server that sends a heartbeat every interval stays listed
        for as long as it does, and the version does not move.
        """
        version = self.register(P1, K1)["version"]
        for _ in range(20):
            self.advance(self.interval, heartbeats=((P1, K1),))
        listing = self.pings()
        self.assertEqual([e["url"] for e in listing["pings"]], [P1])
        self.assertEqual(listing["pings"][0]["last_heard"], self.clock.seconds())
        self.assertEqual(listing["version"], version)

    def test_silence_drops(self) -> None:
        """
        A ping server not heard from for three intervals leaves the list
        (and the store) and the version changes; one that keeps beating
        stays.
        """
        self.register(P1, K1)
        both = self.register(P2, K2)["version"]
        self.advance(self.interval, heartbeats=((P2, K2),))
        self.advance(self.interval, heartbeats=((P2, K2),))
        self.assertEqual(self.urls(), [P1, P2])  # 20 s of silence: still there
        self.assertEqual(self.pings()["version"], both)
        self.advance(self.interval)
        listing = self.pings()
        self.assertEqual([e["url"] for e in listing["pings"]], [P2])
        self.assertNotEqual(listing["version"], both)
        self.assertEqual(list(self.store.rows), [P2])

    def test_back_after_drop(self) -> None:
        """
        A dropped ping server that registers again is listed again, and the
        list returns to the version it had with it.
        """
        version = self.register(P1, K1)["version"]
        self.advance(3 * self.interval)
        self.assertEqual(self.urls(), [])
        self.assertEqual(self.register(P1, K1)["version"], version)
        self.assertEqual(self.urls(), [P1])

    def test_version_unchanged_when_nothing_changes(self) -> None:
        """
        Time passing, heartbeats and public reads leave the version alone;
        a new server or a new key moves it.
        """
        empty = self.pings()["version"]
        self.advance(5 * self.interval)
        self.assertEqual(self.pings()["version"], empty)
        one = self.register(P1, K1)["version"]
        self.assertEqual(self.register(P1, K1)["version"], one)
        self.advance(self.interval, heartbeats=((P1, K1),))
        self.assertEqual(self.pings()["version"], one)
        self.assertNotEqual(one, empty)
        self.assertNotEqual(self.register(P2, K2)["version"], one)

    def test_key_change(self) -> None:
        """
        A ping server registering with a new key is listed with it, the
        version changes, and its first-seen time is kept.
        """
        first = self.clock.seconds()
        old = self.register(P1, K1)["version"]
        self.advance(self.interval)
        new = self.register(P1, K2)["version"]
        self.assertNotEqual(new, old)
        self.assertEqual(self.pings()["pings"][0]["public_key"], K2)
        self.assertEqual(self.store.rows[P1].first_seen, first)
        self.assertEqual(self.store.rows[P1].last_heard, first + self.interval)


class RefusalTests(RegistryTestCase):
    def test_unsigned(self) -> None:
        """
        An unsigned registration is refused with 401 and a JSON error, and
        lists nothing.
        """
        message = self.error(None, {"public_url": P1, "public_key": K1}, 401)
        self.assertIn("not signed", message)
        self.assertEqual(self.urls(), [])

    def test_bad_signature(self) -> None:
        """
        A badly signed registration is refused with 401 saying why.
        """
        self.verifier.failure = "the signature does not verify"
        message = self.error(P1, {"public_url": P1, "public_key": K1}, 401)
        self.assertEqual(message, "the signature does not verify")
        self.assertEqual(self.urls(), [])

    def test_not_the_signer(self) -> None:
        """
        A server cannot register another: public_url must be the signer,
        else 403 naming both, and nothing is listed.
        """
        message = self.error(P1, {"public_url": P2, "public_key": K2}, 403)
        self.assertIn(P1, message)
        self.assertIn(P2, message)
        self.assertEqual(self.urls(), [])

    def test_malformed(self) -> None:
        """
        Bodies that are not a JSON object with an http(s) public_url and a
        32-byte base64url public_key get 400 with a message naming what is
        wrong, and list nothing.
        """
        cases: list[tuple[Any, str]] = [
            (b"{not json", "JSON"),
            (b"\xff\xfe", "UTF-8"),
            (b'{"public_url": NaN}', "JSON"),
            ([P1, K1], "object"),
            ({"public_key": K1}, "public_url"),
            ({"public_url": 12, "public_key": K1}, "public_url"),
            ({"public_url": "ftp://p1.example", "public_key": K1}, "http"),
            ({"public_url": "https://", "public_key": K1}, "host"),
            ({"public_url": P1 + "?x=1", "public_key": K1}, "query"),
            ({"public_url": "https://p1.example:99999", "public_key": K1}, "port"),
            ({"public_url": P1}, "public_key"),
            ({"public_url": P1, "public_key": 7}, "public_key"),
            ({"public_url": P1, "public_key": "a+b/" * 11}, "base64url"),
            ({"public_url": P1, "public_key": make_key(1)[:20]}, "32 bytes"),
        ]
        for body, fragment in cases:
            message = self.error(P1, body, 400)
            self.assertIn(fragment, message, body)
        self.assertEqual(self.urls(), [])

    def test_oversize(self) -> None:
        """
        A body over 64 KB is refused with 413 before the signature is
        even checked.
        """
        body = json.dumps(
            {"public_url": P1, "public_key": K1, "padding": "x" * MAX_BODY}
        ).encode("utf-8")
        message = self.error(P1, body, 413)
        self.assertIn(str(MAX_BODY), message)
        self.assertEqual(self.verifier.bodies, [])
        self.assertEqual(self.urls(), [])

    def test_get_register(self) -> None:
        """
        /register takes POST only.
        """
        self.stub.flush()
        response_d = self.stub.get(BASE + "/register")
        self.stub.flush()
        self.assertEqual(self.successResultOf(response_d).code, 405)

    def test_stopped(self) -> None:
        """
        A registration that reaches a stopped registry gets 503 rather
        than being lost silently.
        """
        self.successResultOf(self.service.stopService())
        message = self.error(P1, {"public_url": P1, "public_key": K1}, 503)
        self.assertIn("not running", message)


class MountTests(RegistryTestCase):
    def test_mounted(self) -> None:
        """
        The routes answer under /registry/ when the registry shares the
        port with other roles (--role=all), and at the root when it runs
        alone.
        """
        self.register(P1, K1)
        for root, prefix in [(Root(None), "/registry"), (Root(self.resource()), "")]:
            if prefix:
                root.putChild(b"registry", self.resource())
            stub: Any = StubTreq(root)
            response_d = stub.get(BASE + prefix + "/pings")
            stub.flush()
            response = self.successResultOf(response_d)
            self.assertEqual(response.code, 200, prefix)
            body = json.loads(self.successResultOf(response.content()))
            self.assertEqual([e["url"] for e in body["pings"]][0], P1)
            response_d = stub.post(
                BASE + prefix + "/register",
                data=json.dumps({"public_url": P2, "public_key": K2}).encode("utf-8"),
                headers={SIGNER_HEADER: [P2.encode("ascii")]},
            )
            stub.flush()
            self.assertEqual(self.successResultOf(response_d).code, 200, prefix)


class LifeCycleTests(RegistryTestCase):
    def test_restart_remembers(self) -> None:
        """
        A new registry on the same store lists the servers registered
        before, with their keys and times, and at once drops those silent
        for three intervals by then.
        """
        self.register(P1, K1)
        self.register(P2, K2)
        self.advance(2 * self.interval, heartbeats=((P1, K1),))
        self.successResultOf(self.service.stopService())
        self.assertTrue(self.store.closed)

        self.clock.advance(15)  # down for 15 s: P2 is now 35 s silent
        self.store.closed = False
        self.service = self.make_service()
        self.service.startService()
        self.stub = StubTreq(self.resource())
        listing = self.pings()
        self.assertEqual(
            listing["pings"],
            [{"url": P1, "public_key": K1, "last_heard": self.clock.seconds() - 15}],
        )
        self.assertEqual(list(self.store.rows), [P1])

    def test_reads_wait_for_the_store(self) -> None:
        """
        Until the list is read back from the store, /pings and /register
        wait rather than answer from a half-empty list.
        """
        self.successResultOf(self.service.stopService())
        self.store.upsert(P1, K1, self.clock.seconds())
        self.store.hold_all = True
        self.service = self.make_service()
        self.service.startService()
        self.stub = StubTreq(self.resource())

        pings_d = self.stub.get(BASE + "/pings")
        register_d = self.post(P2, {"public_url": P2, "public_key": K2})
        self.stub.flush()
        self.assertNoResult(pings_d)
        self.assertNoResult(register_d)

        self.store.release()
        self.assertEqual([e["url"] for e in self.result(pings_d)["pings"]], [P1])
        self.result(register_d)
        self.assertEqual(self.urls(), [P1, P2])

    def test_stop_waits_for_writes(self) -> None:
        """
        Stopping lets the store writes in progress finish before the store
        is closed.
        """
        self.store.hold_writes = True
        self.register(P1, K1)
        stopped = self.service.stopService()
        self.assertNoResult(stopped)
        self.assertFalse(self.store.closed)
        self.store.release()
        self.successResultOf(stopped)
        self.assertTrue(self.store.closed)
        self.assertEqual(list(self.store.rows), [P1])

    def test_write_failure_still_answers(self) -> None:
        """
        When the store cannot be written the ping server is still listed
        and answered (the list is what matters; the next heartbeat writes
        again), and the failure is logged.
        """
        self.store.fail_upserts = True
        self.register(P1, K1)
        self.assertEqual(self.urls(), [P1])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_sweep_failure_logged_loop_goes_on(self) -> None:
        """
        A sweep that fails is logged and the next one still runs.
        """
        self.register(P1, K1)
        self.register(P2, K2)
        self.store.raise_on_remove = 1
        self.advance(3 * self.interval)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.advance(self.interval)
        self.assertEqual(self.urls(), [])
        self.assertEqual(list(self.store.rows), [P1])  # the failed removal
        # A restarted registry drops it again, from memory and store.
        self.successResultOf(self.service.stopService())
        self.store.closed = False
        self.service = self.make_service()
        self.service.startService()
        self.assertEqual(self.store.rows, {})

    def test_stop_closes_store_and_loop(self) -> None:
        """
        Stopping closes the store and stops sweeping.
        """
        self.successResultOf(self.service.stopService())
        self.assertTrue(self.store.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_live_pings(self) -> None:
        """
        In-process callers get the sorted URLs of the live list.
        """
        self.register(P2, K2)
        self.register(P1, K1)
        self.assertEqual(self.successResultOf(self.service.live_pings()), [P1, P2])


class SQLStoreTestsMixin:
    """
    The store in a real database, its SQL running in the reactor's threads
    (hence the real reactor here).  Subclasses provide ``make_engine``.
    """

    def make_engine(self) -> Any:
        raise NotImplementedError()

    def setUp(self) -> None:
        self.data_dir = self.mktemp()
        os.makedirs(self.data_dir)
        self.engine = self.make_engine()

    def open(self) -> Any:
        store = open_registry_store(self.engine, reactor)
        self.addCleanup(store.close)
        return store

    @inlineCallbacks
    def test_rows(self) -> Generator[Deferred[Any], Any, None]:
        """
        upsert adds rows and updates key and last-heard time while keeping
        the first-seen time (to the fraction of a second); remove forgets
        one; all lists them by URL.
        """
        store = self.open()
        self.assertTrue(verifyObject(IRegistryStore, store))
        yield store.upsert(P2, K2, 1_700_000_100.0)
        yield store.upsert(P1, K1, 1_700_000_101.5)
        yield store.upsert(P2, K3, 1_700_000_110.25)
        rows = yield store.all()
        self.assertEqual(
            rows,
            [
                RegistryEntry(P1, K1, 1_700_000_101.5, 1_700_000_101.5),
                RegistryEntry(P2, K3, 1_700_000_100.0, 1_700_000_110.25),
            ],
        )
        yield store.remove(P1)
        yield store.remove("https://never.example")
        rows = yield store.all()
        self.assertEqual(
            rows, [RegistryEntry(P2, K3, 1_700_000_100.0, 1_700_000_110.25)]
        )

    @inlineCallbacks
    def test_service_restart(self) -> Generator[Deferred[Any], Any, None]:
        """
        A registry restarted on the same database still lists the ping
        servers registered before, and drops those silent for three
        intervals by then, from the database too.
        """
        clock = Clock()
        clock.advance(1_700_000_000)

        def start() -> tuple[RegistryService, Any]:
            service = RegistryService(
                open_registry_store(self.engine, reactor), clock, admission="open"
            )
            service.startService()
            return service, StubTreq(RegistryResource(service, FakeVerifier()).resource())

        def call(stub: Any, response_d: Deferred[Any]) -> Any:
            stub.flush()
            response = self.successResultOf(response_d)
            self.assertEqual(response.code, 200)
            return json.loads(self.successResultOf(response.content()))

        def register(stub: Any, url: str, key: str) -> Any:
            body = json.dumps({"public_url": url, "public_key": key}).encode("utf-8")
            headers = {SIGNER_HEADER: [url.encode("ascii")]}
            return call(stub, stub.post(BASE + "/register", data=body, headers=headers))

        first, stub = start()
        yield first.when_loaded()
        register(stub, P1, K1)
        register(stub, P2, K2)
        clock.advance(20)
        register(stub, P1, K1)
        yield first.stopService()

        clock.advance(15)  # P1 silent 15 s, P2 35 s
        second, stub = start()
        yield second.when_loaded()
        listing = call(stub, stub.get(BASE + "/pings"))
        self.assertEqual(
            listing["pings"],
            [{"url": P1, "public_key": K1, "last_heard": clock.seconds() - 15}],
        )
        yield second.stopService()

        rows = yield self.open().all()
        self.assertEqual([row.public_url for row in rows], [P1])

    def test_beside_the_twitter_tables(self) -> None:
        """
        The registry's tables and the twitter role's share one database
        (one --database for both roles) without their version bookkeeping
        colliding: each set records its own versions in its own table, and
        opening again applies nothing of either.
        """
        twitter_newest = migrations(TWITTER)[-1][0]
        registry_newest = migrations(REGISTRY)[-1][0]
        self.assertEqual(
            prepare_database(self.engine, TWITTER),
            [version for version, _, _ in migrations(TWITTER)],
        )
        self.assertEqual(
            prepare_database(self.engine, REGISTRY),
            [version for version, _, _ in migrations(REGISTRY)],
        )
        self.assertEqual(prepare_database(self.engine, TWITTER), [])
        self.assertEqual(prepare_database(self.engine, REGISTRY), [])
        self.assertEqual(schema_version(self.engine, TWITTER), twitter_newest)
        self.assertEqual(schema_version(self.engine, REGISTRY), registry_newest)

    def test_newer_registry_refused(self) -> None:
        """
        A database whose registry tables a newer distwit has changed is
        refused, with a message naming the registry's schema, both versions
        and what to do; the twitter role's versions do not count.
        """
        prepare_database(self.engine, REGISTRY)
        connection = self.engine.connect()
        try:
            connection.cursor().execute(
                "INSERT INTO registry_schema_version (version, name) VALUES (9, '009_x.sql')"
            )
            connection.commit()
        finally:
            connection.close()
        error = self.assertRaises(
            SchemaTooNew, open_registry_store, self.engine, reactor
        )
        message = str(error)
        newest = migrations(REGISTRY)[-1][0]
        self.assertIn("version 9 of the registry role's schema", message)
        self.assertIn(f"knows (version {newest})", message)
        self.assertIn("Run that newer distwit, or restore a backup", message)
        prepare_database(self.engine, TWITTER)  # the twitter set is not affected


class SQLiteStoreTests(SQLStoreTestsMixin, TestCase):
    """
    The registry's store on SQLite.
    """

    def make_engine(self) -> SQLiteEngine:
        return registry_engine("", self.data_dir)

    def test_default_file(self) -> None:
        """
        Without --database the registry keeps its list in registry.sqlite3
        in the data folder (where registries always kept it); with an
        SQLite --database, in that file.
        """
        engine = registry_engine("", self.data_dir)
        assert isinstance(engine, SQLiteEngine)
        self.assertEqual(engine.path, DataFolder(self.data_dir).registry_database)
        engine = registry_engine("sqlite:shared.sqlite3", self.data_dir)
        assert isinstance(engine, SQLiteEngine)
        self.assertEqual(engine.path, os.path.join(self.data_dir, "shared.sqlite3"))

    @inlineCallbacks
    def test_file_survives(self) -> Generator[Deferred[Any], Any, None]:
        """
        What is written is in the SQLite file, in WAL mode, and a new store
        on the same file reads it back.
        """
        store = open_registry_store(self.engine, reactor)
        yield store.upsert(P1, K1, 100.0)
        yield store.close()
        connection = sqlite3.connect(self.engine.path)
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        finally:
            connection.close()
        self.assertEqual(mode, "wal")
        rows = yield self.open().all()
        self.assertEqual(rows, [RegistryEntry(P1, K1, 100.0, 100.0)])

    @inlineCallbacks
    def test_file_from_before_versions(self) -> Generator[Deferred[Any], Any, None]:
        """
        A registry.sqlite3 written before the registry had numbered changes
        (its table, no version recorded) is adopted with its rows.
        """
        connection = sqlite3.connect(self.engine.path)
        try:
            connection.execute(
                "CREATE TABLE ping_servers (public_url TEXT PRIMARY KEY,"
                " public_key TEXT NOT NULL, first_seen REAL NOT NULL,"
                " last_heard REAL NOT NULL)"
            )
            connection.execute("INSERT INTO ping_servers VALUES (?, ?, 1.0, 2.0)", (P1, K1))
            connection.commit()
        finally:
            connection.close()
        rows = yield self.open().all()
        self.assertEqual(rows, [RegistryEntry(P1, K1, 1.0, 2.0)])
        # Adopted as version 1, then brought up to date.
        self.assertEqual(schema_version(self.engine, REGISTRY), 2)


class PostgresStoreTests(SQLStoreTestsMixin, TestCase):
    """
    The registry's store on PostgreSQL (``--database postgresql://...``),
    in a wiped database per test.
    """

    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def make_engine(self) -> PostgresEngine:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        engine = registry_engine(url, self.data_dir)
        assert isinstance(engine, PostgresEngine)
        return engine

    def test_one_connection(self) -> None:
        """
        On PostgreSQL too the registry writes through one connection, so
        a heartbeat and a sweep of the same server keep their order.
        """
        self.assertEqual(self.engine.pool_size, 1)


class DatabaseSettingTests(SynchronousTestCase):
    """
    ``twistd distwit`` gives the registry the --database it is told.
    """

    def make(self, role: str, database: str) -> Any:
        from twisted.internet.testing import MemoryReactorClock

        from distwit.tap import Options, makeService

        data = self.mktemp()
        options = Options()
        arguments = ["--data", data, "--role", role, "--listen", "tcp:0"]
        options.parseOptions(arguments + (["--database", database] if database else []))
        top = makeService(options, MemoryReactorClock())
        return data, top

    def test_postgres_shared_with_twitter(self) -> None:
        """
        With --role=all and one PostgreSQL --database, both roles' tables
        are in it, each set with its own versions; no registry.sqlite3 is
        made.
        """
        url = postgres_url()
        if url is None:
            raise SkipTest(POSTGRES_SKIP)
        wipe_postgres(url)
        data, top = self.make("all", url)
        engine = PostgresEngine(url)
        self.assertEqual(schema_version(engine, TWITTER), migrations(TWITTER)[-1][0])
        self.assertEqual(schema_version(engine, REGISTRY), migrations(REGISTRY)[-1][0])
        self.assertFalse(os.path.exists(DataFolder(data).registry_database))

    def test_default_sqlite(self) -> None:
        """
        The registry alone with no --database keeps registry.sqlite3 in the
        data folder, and no twitter database is made.
        """
        data, top = self.make("registry", "")
        engine = SQLiteEngine(DataFolder(data).registry_database)
        self.assertEqual(schema_version(engine, REGISTRY), migrations(REGISTRY)[-1][0])
        self.assertFalse(os.path.exists(os.path.join(data, "distwit.sqlite3")))

    def test_bad_database(self) -> None:
        """
        A registry's database of no known kind stops the start with a
        message naming it.
        """
        from twisted.internet.testing import MemoryReactorClock

        from distwit.tap import Options, makeService

        options = Options()
        options.parseOptions(["--data", self.mktemp(), "--role", "registry",
                              "--database", "mysql://x", "--listen", "tcp:0"])
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        self.assertIn("mysql://x", str(error))


class HeartbeatTests(SynchronousTestCase):
    """
    A ping server's heartbeat on a Clock and a scripted client.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.client = ScriptedClient()
        self.client.routes[REGISTRY_URL + "/register"] = {
            "version": "v1",
            "heartbeat_interval": 10.0,
        }
        self.heartbeat = Heartbeat(
            self.client, REGISTRY_URL, P1, K1, self.clock, interval=10.0
        )
        self.events: list[dict[str, Any]] = []
        self.heartbeat.log = Logger(
            namespace="heartbeat", observer=cast(ILogObserver, self.events.append)
        )
        self.addCleanup(self.stop)

    def stop(self) -> None:
        if self.heartbeat.running:
            self.successResultOf(self.heartbeat.stopService())

    def posts(self) -> list[Any]:
        return self.client.posts_to(REGISTRY_URL + "/register")

    def warnings(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["log_level"].name in ("warn", "error", "critical")]

    def test_posts_on_start_and_every_interval(self) -> None:
        """
        The registration goes to <registry>/register at start and then
        every interval, naming this server and its key.
        """
        self.heartbeat.startService()
        self.assertEqual(self.posts(), [{"public_url": P1, "public_key": K1}])
        self.clock.advance(9.9)
        self.assertEqual(len(self.posts()), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.posts()), 2)
        for _ in range(3):
            self.clock.advance(10)
        self.assertEqual(len(self.posts()), 5)
        self.assertEqual(self.heartbeat.registry_version, "v1")
        self.assertEqual(self.warnings(), [])

    def test_survives_failing_post(self) -> None:
        """
        A heartbeat the registry refuses (or that cannot reach it) is
        logged with the error, once while it keeps failing, and the next
        one is still sent.
        """
        self.client.routes[REGISTRY_URL + "/register"] = S2SResponseError("status 503")
        self.heartbeat.startService()
        self.clock.advance(10)
        self.assertEqual(len(self.posts()), 2)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["error"], "status 503")
        self.client.routes[REGISTRY_URL + "/register"] = {"version": "v2"}
        self.clock.advance(10)
        self.assertEqual(len(self.posts()), 3)
        self.assertEqual(self.heartbeat.registry_version, "v2")
        self.assertEqual(len(self.warnings()), 1)

    def test_survives_unexpected_error(self) -> None:
        """
        An unexpected error in a heartbeat is logged as a failure and the
        loop goes on.
        """
        self.client.routes[REGISTRY_URL + "/register"] = RuntimeError("bug")
        self.heartbeat.startService()
        self.clock.advance(10)
        self.assertEqual(len(self.posts()), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 0)  # own observer
        failures = [e for e in self.events if "log_failure" in e]
        self.assertEqual(len(failures), 2)
        self.assertTrue(failures[0]["log_failure"].check(RuntimeError))

    def test_stop_cancels_in_flight(self) -> None:
        """
        Stopping cancels the heartbeat in flight without logging an error
        and sends no more.
        """
        self.client.hold = True
        self.heartbeat.startService()
        [(url, body, in_flight)] = self.client.pending
        stopped = self.heartbeat.stopService()
        self.successResultOf(stopped)
        self.assertTrue(in_flight.called)  # nobody but the cancel fired it
        self.clock.advance(100)
        self.assertEqual(len(self.client.requests), 1)
        self.assertEqual(self.warnings(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_interval_warning(self) -> None:
        """
        A registry that expects heartbeats more often than this server
        sends them gets one warning, not one per heartbeat.
        """
        self.client.routes[REGISTRY_URL + "/register"] = {
            "version": "v1",
            "heartbeat_interval": 5,
        }
        self.heartbeat.startService()
        self.clock.advance(10)
        [warning] = self.warnings()
        self.assertEqual(warning["theirs"], 5)


class HeartbeatWithRegistryTests(RegistryTestCase):
    def test_heartbeat_keeps_ping_server_listed(self) -> None:
        """
        A ping server's Heartbeat, talking to the registry's routes, keeps
        it listed for as long as it runs; once it stops, the registry drops
        it three intervals later.
        """
        client = StubRegistryClient(self.resource(), P1)
        heartbeat = Heartbeat(client, BASE, P1, K1, self.clock, interval=self.interval)
        heartbeat.startService()
        self.assertEqual(self.urls(), [P1])
        version = heartbeat.registry_version
        self.assertEqual(version, self.pings()["version"])
        for _ in range(10):
            self.clock.advance(self.interval)
        self.assertEqual(self.urls(), [P1])
        self.assertEqual(heartbeat.registry_version, version)
        self.assertEqual(client.timeouts[0], self.interval)
        self.successResultOf(heartbeat.stopService())
        self.clock.advance(3 * self.interval)
        self.assertEqual(self.urls(), [])
