"""
The devices' sender (``channels/delivery.py``): retries, giving up,
restarts and several senders on one database, with recording channels
(the gateways are tested by their own helpers); and the twitter role's
wiring of channels, the rules and the sender.
"""

from __future__ import annotations

import os
from typing import Any

from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred, inlineCallbacks
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.application.service import Service

from distwit.channels import configured
from distwit.channels.delivery import FIRST_DELAY, MAX_DELAY, Delivery, retry_delay
from distwit.channels.interfaces import AddressRefused, ChannelError, ChannelParts
from distwit.config import resolve
from distwit.federation.health import FederationHealth, status_text
from distwit.roles.metrics import Metrics
from distwit.roles.twitter import TwitterService, make_twitter_web
from distwit.store.schema import prepare_database

from tests.support import (
    POSTGRES_SKIP,
    PostgresEngine,
    SQLiteEngine,
    cheap_hasher,
    postgres_url,
    synchronous_sqlite_store,
    threaded_store,
    wipe_postgres,
)
from tests.test_devices import ALICE_PHONE, RecordingChannel
from tests.test_outbox import Warnings

T0 = 1_700_000_000_000


class DeliveryTests(SynchronousTestCase):
    """
    One sender on a synchronous SQLite store and a clock.
    """

    def setUp(self) -> None:
        self.store = synchronous_sqlite_store(self.mktemp() + ".sqlite3")
        self.addCleanup(self.store.close)
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.sms = RecordingChannel("sms")
        self.warnings = Warnings(self)

    def sender(self, channel: RecordingChannel | None = None) -> Delivery:
        delivery = Delivery(self.store, {"sms": channel or self.sms}, self.clock)
        delivery.startService()
        self.addCleanup(delivery.stopService)
        self.clock.advance(0)
        return delivery

    def queue(self, key: str, text: str = "hello") -> None:
        now = int(self.clock.seconds() * 1000)
        self.successResultOf(self.store.queue_device_message(
            1, "sms", ALICE_PHONE, "answer", text, "", "", key, now, now
        ))

    def test_backoff(self) -> None:
        """
        The delay doubles from 1 s to 5 minutes.
        """
        self.assertEqual([retry_delay(n) for n in (1, 2, 3, 9, 10, 40)],
                         [FIRST_DELAY, 2.0, 4.0, 256.0, MAX_DELAY, MAX_DELAY])

    def test_fails_then_works(self) -> None:
        """
        A gateway that fails twice (ChannelError) then takes the message
        gets it exactly once, after the backoff; the failing channel is
        logged once, not per try.
        """
        delivery = self.sender()
        self.sms.failures = [ChannelError("down"), ChannelError("still down")]
        self.queue("a")
        delivery.wake()
        self.clock.advance(0)
        self.assertEqual(self.sms.sent, [])
        self.clock.advance(0.9)
        self.assertEqual(self.sms.sent, [])
        for _ in range(10):
            self.clock.advance(1)
        self.assertEqual(self.sms.to(ALICE_PHONE), ["hello"])
        for _ in range(30):
            self.clock.advance(10)
        self.assertEqual(len(self.sms.sent), 1)
        self.assertEqual(self.warnings.count("recording-sms channel fails"), 1)
        health = self.successResultOf(self.store.device_queue_health(self.clock.seconds() * 1000))
        self.assertEqual((health.pending, health.sent, health.given_up), (0, 1, 0))

    def test_refused_address(self) -> None:
        """
        AddressRefused gives the message up at once (one warning), and it is
        never tried again.
        """
        self.sender()
        self.sms.failures = [AddressRefused("no such number")]
        self.queue("a")
        for _ in range(20):
            self.clock.advance(2)
        self.assertEqual(self.sms.sent, [])
        self.assertEqual(self.warnings.count("giving up answer message"), 1)
        self.assertEqual(self.warnings.count("no such number"), 1)
        health = self.successResultOf(self.store.device_queue_health(self.clock.seconds() * 1000))
        self.assertEqual((health.pending, health.given_up), (0, 1))

    def test_gives_up_after_a_day(self) -> None:
        """
        A message whose gateway fails for a day is given up, once.
        """
        self.sender()
        self.sms.failures = [ChannelError("down")] * 400
        self.queue("a")
        for _ in range(25 * 12):
            self.clock.advance(300)
        self.assertEqual(self.sms.sent, [])
        self.assertEqual(self.warnings.count("still failing after a day"), 1)
        self.assertLess(len(self.sms.failures), 400 - 250)

    def test_restart(self) -> None:
        """
        A sender stopped with a message handed to a gateway that never
        answered, and one not yet tried: a new sender over the same store
        sends each once, at once (the lease of the first is not waited).
        """
        hung = RecordingChannel("sms")
        hung.hold = True
        first = Delivery(self.store, {"sms": hung}, self.clock)
        first.startService()
        self.queue("a", "one")
        first.wake()
        self.clock.advance(0)
        self.assertEqual(len(hung.held), 1)
        self.successResultOf(first.stopService())
        self.queue("b", "two")
        self.sender()
        self.clock.advance(0)
        self.assertEqual(sorted(self.sms.to(ALICE_PHONE)), ["one", "two"])
        for _ in range(100):
            self.clock.advance(5)
        self.assertEqual(len(self.sms.sent), 2)

    def test_sweep_failure_logged_and_loop_goes_on(self) -> None:
        """
        A sweep that fails is logged, and the round still sends what is
        queued.
        """
        delivery = self.sender()

        async def broken() -> None:
            raise RuntimeError("boom")

        delivery.sweep = broken
        errors: list[Any] = []
        self.queue("a")
        self.clock.advance(2)
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertTrue(errors)
        self.assertEqual(self.sms.to(ALICE_PHONE), ["hello"])

    def test_unsubscribe_link_handed_over(self) -> None:
        """
        A channel whose ``send`` takes ``unsubscribe`` gets the message's
        link (the e-mail channel's List-Unsubscribe); others do not.
        """
        given: list[Any] = []

        class Mail(RecordingChannel):
            def send(self, address: str, text: str, subject: str,  # type: ignore[override]
                     unsubscribe: str = "") -> Any:
                given.append(unsubscribe)
                return super().send(address, text, subject)

        mail = Mail("email")
        delivery = Delivery(self.store, {"email": mail}, self.clock)
        delivery.startService()
        self.addCleanup(delivery.stopService)
        now = int(self.clock.seconds() * 1000)
        self.successResultOf(self.store.queue_device_message(
            1, "email", "a@mail.test", "mention", "body", "subj", "http://s1/u/t", "m", now, now
        ))
        self.clock.advance(2)
        self.assertEqual(given, ["http://s1/u/t"])
        self.assertEqual(mail.sent, [("a@mail.test", "body", "subj")])


class TwoSendersMixin:
    """
    Two senders, each on its own connection pool, on one database: each
    message is sent once.  Real threads and the real reactor: the leases
    are what is tested.
    """

    def make_engine(self) -> Any:
        raise NotImplementedError()

    @inlineCallbacks
    def test_two_senders(self):
        """
        100 messages queued, two senders running at once: every message
        reaches one of the two channels, exactly once.
        """
        engine = self.make_engine()
        prepare_database(engine)
        stores = [threaded_store(engine, reactor), threaded_store(engine, reactor)]
        for store in stores:
            self.addCleanup(store.close)
        now = int(reactor.seconds() * 1000)
        for n in range(100):
            yield stores[0].queue_device_message(
                1, "sms", ALICE_PHONE, "answer", f"m{n}", "", "", f"k{n}", now, now
            )
        channels = [RecordingChannel("sms"), RecordingChannel("sms")]
        senders = [
            Delivery(store, {"sms": channel}, reactor, interval=0.05, batch=7)
            for store, channel in zip(stores, channels)
        ]
        for sender in senders:
            sender.startService()
        try:
            for _ in range(400):
                if sum(len(c.sent) for c in channels) >= 100:
                    break
                yield deferLater(reactor, 0.05, lambda: None)
            # A little longer: anything sent twice would show now.
            yield deferLater(reactor, 0.3, lambda: None)
        finally:
            yield DeferredList([sender.stopService() for sender in senders])
        texts = [text for channel in channels for _, text, _ in channel.sent]
        self.assertEqual(sorted(texts), sorted(f"m{n}" for n in range(100)))


class SQLiteTwoSendersTests(TwoSendersMixin, TestCase):
    def make_engine(self) -> SQLiteEngine:
        return SQLiteEngine(self.mktemp() + ".sqlite3")


class PostgresTwoSendersTests(TwoSendersMixin, TestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def make_engine(self) -> PostgresEngine:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return PostgresEngine(url)


class _Leaf(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"kannel was here"


class _Running(Service):
    pass


class WiringTests(SynchronousTestCase):
    """
    The twitter role builds the configured channels, the rules on them,
    and the sender; with none configured, nothing is added.
    """

    def service(self) -> TwitterService:
        data = self.mktemp()
        os.makedirs(data)
        settings = resolve({"data": data}, None)
        store = synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))
        clock = Clock()
        clock.advance(T0 / 1000)
        service = TwitterService(settings, store, clock, cheap_hasher())
        self.addCleanup(store.close)
        return service

    def test_no_channels(self) -> None:
        """
        Without a configured channel there is no sender, and the rules know
        of no kind.
        """
        service = self.service()
        self.assertIsNone(service.delivery)
        self.assertEqual(service.devices.kinds, frozenset())
        self.assertNotIn("delivery", [s.name for s in service])

    def test_channels_wired(self) -> None:
        """
        A configured inbound channel is listened to by the rules, its
        services run with the role, its resources answer under
        ``/channels/<key>``, and the sender hands it messages.
        """
        channel = RecordingChannel("sms")
        running = _Running()
        parts = ChannelParts(channel, {"kannel": _Leaf()}, [running])
        self.patch(configured, "ADAPTERS", [lambda settings, reactor: parts])
        service = self.service()
        self.assertEqual(service.devices.kinds, frozenset({"sms"}))
        self.assertIsNotNone(service.delivery)
        self.assertEqual(channel.inbound, service.devices.inbound)
        web = make_twitter_web(service)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertTrue(running.running)
        stub = StubTreq(web.root)
        response = self.successResultOf(stub.get("http://localhost/channels/kannel"))
        self.assertEqual(self.successResultOf(response.content()), b"kannel was here")

    def test_health(self) -> None:
        """
        The devices' outbox shows in ``distwit status`` (the health report)
        and in the metrics: waiting, failing, given up, the oldest's age,
        and each try by kind, category and outcome.
        """
        channel = RecordingChannel("sms")
        channel.failures = [ChannelError("down")] * 100
        self.patch(configured, "ADAPTERS", [lambda settings, reactor: ChannelParts(channel)])
        service = self.service()
        metrics = Metrics("twitter")
        refresher = metrics.instrument_twitter(service, 1.0)
        clock = service.reactor
        now = int(clock.seconds() * 1000)
        self.successResultOf(service.store.queue_device_message(
            1, "sms", ALICE_PHONE, "answer", "hi", "", "", "k", now, now
        ))
        service.startService()
        self.addCleanup(service.stopService)
        clock.advance(30)
        self.assertEqual(channel.sent, [])  # failing, waiting its backoff
        text = status_text(self.successResultOf(FederationHealth(service.store, clock).report()))
        self.assertIn(
            "Devices: 1 message waiting (1 failing), oldest due 30s ago;"
            " last week 0 sent, 0 given up", text,
        )
        self.successResultOf(ensureDeferred(refresher.refresh()))
        value = metrics.registry.get_sample_value
        self.assertEqual(value("distwit_device_outbox_depth"), 1)
        self.assertEqual(value("distwit_device_outbox_failing"), 1)
        self.assertEqual(value("distwit_device_outbox_oldest_age_seconds"), 30)
        failed = value("distwit_device_messages_total",
                       {"kind": "sms", "category": "answer", "outcome": "failed"})
        self.assertEqual(failed, 100 - len(channel.failures))
        self.assertGreaterEqual(failed, 1)
