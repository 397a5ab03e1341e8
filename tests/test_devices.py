"""
The rules of phones, IM and e-mail (docs/design/devices.md) on a real
store (SQLite, and PostgreSQL when ``DISTWIT_TEST_POSTGRES`` is set), with
the real sender (``channels/delivery.py``) handing messages to recording
channels: the gateways are not the point here (their helpers test them
against Kannel, Prosody, SMTP and moto).  A ``task.Clock`` drives time.
"""

from __future__ import annotations

import re
from typing import Any, Coroutine

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from distwit.channels.delivery import Delivery
from distwit.channels.interfaces import ChannelError, IChannel, IInboundChannel
from distwit.core.devices import (
    CODE_TTL_MS,
    UNSUBSCRIBE_PATH,
    AddressTaken,
    BadAddress,
    BadSetting,
    CodeExpired,
    Devices,
    NoSuchAddress,
    NoSuchChannel,
    NotFollowing,
    WrongCode,
    device_text,
    normalize_address,
    quiet_ends,
    quiet_now,
)
from distwit.core.microblog import Microblog
from distwit.model import Account
from distwit.store.interfaces import DeviceSettings
from distwit.store.schema import prepare_database
from distwit.store.sql import SQLStore

from tests.support import (
    POSTGRES_SKIP,
    PostgresEngine,
    SynchronousPool,
    cheap_hasher,
    postgres_url,
    synchronous_sqlite_store,
    wipe_postgres,
)

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
PUBLIC_URL = "http://s1.test"
ALICE_PHONE = "+15550000001"
BOB_PHONE = "+15550000002"


@implementer(IInboundChannel)
class RecordingChannel:
    """
    An IChannel that keeps what it is handed; ``failures`` (exceptions)
    are raised by the next sends, one each; ``hold`` keeps sends pending.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"recording-{kind}"
        self.sent: list[tuple[str, str, str]] = []
        self.failures: list[Exception] = []
        self.hold = False
        self.held: list[Deferred[None]] = []
        self.inbound: Any = None

    def send(self, address: str, text: str, subject: str) -> "Deferred[None]":
        if self.failures:
            return fail(self.failures.pop(0))
        if self.hold:
            d: Deferred[None] = Deferred()
            self.held.append(d)
            return d
        self.sent.append((address, text, subject))
        return succeed(None)

    def listen(self, inbound: Any) -> None:
        self.inbound = inbound

    def to(self, address: str) -> list[str]:
        return [text for to, text, _ in self.sent if to == address]


class World:
    """
    One server's devices: a store, the rules, the sender, a recording
    channel per kind, on a clock at ``T0``.
    """

    def __init__(
        self, case: SynchronousTestCase, store: SQLStore, kinds: tuple[str, ...] = ("sms", "im",
                                                                                   "email"),
        cap: int = 250,
    ) -> None:
        self.case = case
        self.store = store
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.microblog = Microblog(store, cheap_hasher(), self.clock)
        self.devices = Devices(
            store, self.microblog, self.clock, kinds=frozenset(kinds), sms_weekly_cap=cap,
            public_url=PUBLIC_URL,
        )
        self.channels = {kind: RecordingChannel(kind) for kind in kinds}
        self.delivery = Delivery(store, self.channels, self.clock, sweep=self.devices.sweep)
        self.devices.queued = self.delivery.wake
        self.delivery.startService()
        case.addCleanup(self.delivery.stopService)
        self.settle()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.case.successResultOf(ensureDeferred(coroutine))

    def refused(self, coroutine: Coroutine[Any, Any, Any], error: type[Exception]) -> Any:
        return self.case.failureResultOf(ensureDeferred(coroutine), error).value

    def settle(self, seconds: float = 0.0) -> None:
        """
        Let the sender run its rounds for ``seconds`` (and at once).
        """
        self.clock.advance(0)
        step = min(seconds, 1.0) or 0.0
        passed = 0.0
        while passed < seconds:
            self.clock.advance(step)
            passed += step
        self.clock.advance(0)

    def user(self, handle: str) -> Account:
        return self.run(self.microblog.create_user(handle, "a long password"))

    def code_sent(self, kind: str, address: str) -> str:
        self.settle()
        texts = self.channels[kind].to(address)
        self.case.assertTrue(texts, f"no code was sent to {address}")
        found = re.search(r"\b(\d{6})\b", texts[-1])
        assert found is not None, texts[-1]
        return found.group(1)

    def verified(self, user: Account, kind: str, address: str) -> None:
        self.run(self.devices.add_address(user, kind, address))
        self.run(self.devices.verify(user, kind, self.code_sent(kind, address)))
        self.channels[kind].sent.clear()

    def follow(self, user: Account, friend: Account, notifications: bool = True) -> None:
        self.run(self.microblog.follow(user, friend))
        if notifications:
            self.run(self.devices.set_notifications(user, friend, True))

    def post(self, author: Account, text: str, reply_to: int | None = None) -> Any:
        return self.run(self.microblog.post(author, text, in_reply_to_status_id=reply_to))


def sqlite_store(case: SynchronousTestCase) -> SQLStore:
    store = synchronous_sqlite_store(case.mktemp() + ".sqlite3")
    case.addCleanup(store.close)
    return store


def postgres_store(case: SynchronousTestCase) -> SQLStore:
    url = postgres_url()
    assert url is not None
    wipe_postgres(url)
    engine = PostgresEngine(url)
    prepare_database(engine)
    store = SQLStore(SynchronousPool(engine.connect()), engine)
    case.addCleanup(store.close)
    return store


class AddressTests(SynchronousTestCase):
    """
    Addresses are written one way, and used for nothing but their code
    until it is confirmed.
    """

    def test_normalized(self) -> None:
        """
        Phone numbers lose their spaces and dashes (00 is +), Jabber IDs
        their resource and case, e-mail addresses the case of their domain;
        anything else is refused with a sentence.
        """
        self.assertEqual(normalize_address("sms", " +1 (555) 000-0001 "), "+15550000001")
        self.assertEqual(normalize_address("sms", "0044 20 7946 0000"), "+442079460000")
        self.assertEqual(normalize_address("im", "Dave@Example.org/phone"), "dave@example.org")
        self.assertEqual(normalize_address("email", "Dave@Example.ORG"), "Dave@example.org")
        for kind, bad in [("sms", "5550001"), ("sms", "+1555abc"), ("sms", "+12"),
                          ("im", "dave"), ("email", "a b@c.d"), ("email", "@x.org")]:
            with self.assertRaises(BadAddress):
                normalize_address(kind, bad)
        with self.assertRaises(NoSuchChannel):
            normalize_address("fax", "+15550000001")

    def test_code_verifies(self) -> None:
        """
        Adding a number sends it a six-digit code (the only thing sent to
        it); a wrong code says how many tries are left; the right one
        verifies the number.
        """
        world = World(self, sqlite_store(self))
        alice = world.user("alice")
        added = world.run(world.devices.add_address(alice, "sms", "+1 555 000 0001"))
        self.assertEqual((added.address, added.verified), (ALICE_PHONE, False))
        code = world.code_sent("sms", ALICE_PHONE)
        wrong = "000000" if code != "000000" else "111111"
        error = world.refused(world.devices.verify(alice, "sms", wrong), WrongCode)
        self.assertEqual(error.tries_left, 4)
        self.assertIn("4 tries left", str(error))
        verified = world.run(world.devices.verify(alice, "sms", code))
        self.assertTrue(verified.verified)
        self.assertEqual(
            [a.verified for a in world.run(world.devices.addresses(alice))], [True]
        )

    def test_code_expires(self) -> None:
        """
        A code is valid 15 minutes.
        """
        world = World(self, sqlite_store(self))
        alice = world.user("alice")
        world.run(world.devices.add_address(alice, "im", "alice@im.test"))
        code = world.code_sent("im", "alice@im.test")
        world.clock.advance(CODE_TTL_MS / 1000 + 1)
        error = world.refused(world.devices.verify(alice, "im", code), CodeExpired)
        self.assertIn("expired", str(error))

    def test_five_wrong_tries_void_the_code(self) -> None:
        """
        After five wrong tries even the right code is refused.
        """
        world = World(self, sqlite_store(self))
        alice = world.user("alice")
        world.run(world.devices.add_address(alice, "email", "alice@mail.test"))
        code = world.code_sent("email", "alice@mail.test")
        wrong = "000000" if code != "000000" else "111111"
        for left in (4, 3, 2, 1):
            self.assertEqual(
                world.refused(world.devices.verify(alice, "email", wrong), WrongCode).tries_left,
                left,
            )
        world.refused(world.devices.verify(alice, "email", wrong), CodeExpired)
        world.refused(world.devices.verify(alice, "email", code), CodeExpired)
        world.refused(world.devices.verify(alice, "sms", code), NoSuchAddress)

    def test_one_owner(self) -> None:
        """
        A verified number belongs to one account; a kind the server cannot
        send to is refused.
        """
        world = World(self, sqlite_store(self), kinds=("sms",))
        alice, bob = world.user("alice"), world.user("bob")
        world.verified(alice, "sms", ALICE_PHONE)
        error = world.refused(world.devices.add_address(bob, "sms", ALICE_PHONE), AddressTaken)
        self.assertEqual(str(error), "That phone number is already in use on this server.")
        world.refused(world.devices.add_address(bob, "im", "bob@im.test"), NoSuchChannel)

    def test_settings(self) -> None:
        """
        Friends' posts go only to a kind with a verified address; hours are
        0 to 23; unknown settings are named; choices have defaults.
        """
        world = World(self, sqlite_store(self))
        alice = world.user("alice")
        settings = world.run(world.devices.settings(alice))
        self.assertEqual(settings.delivery_device, "none")
        self.assertTrue(settings.choices["email_mentions"])
        self.assertFalse(settings.choices["sms_mentions"])
        self.assertTrue(settings.choices["sms_direct_messages"])
        error = world.refused(world.devices.update_settings(alice, delivery_device="sms"),
                              BadSetting)
        self.assertEqual(str(error), "Add and verify a phone number first.")
        world.refused(world.devices.update_settings(alice, quiet_start=24), BadSetting)
        world.refused(world.devices.update_settings(alice, colour="red"), BadSetting)
        world.refused(world.devices.update_settings(alice, im_followers="maybe"), BadSetting)
        self.assertTrue(world.run(world.devices.update_settings(alice, im_followers="true"))
                        .choices["im_followers"])
        world.verified(alice, "sms", ALICE_PHONE)
        changed = world.run(world.devices.update_settings(
            alice, delivery_device="SMS", quiet_start=23, quiet_end=7, utc_offset=-3600,
            sms_mentions=True,
        ))
        self.assertEqual(
            (changed.delivery_device, changed.quiet_start, changed.quiet_end, changed.utc_offset,
             changed.choices["sms_mentions"]),
            ("sms", 23, 7, -3600, True),
        )
        self.assertEqual(world.run(world.devices.settings(alice)), changed)
        bob = world.user("bob")
        world.refused(world.devices.set_notifications(alice, bob, True), NotFollowing)

    def test_quiet_hours(self) -> None:
        """
        Quiet hours are read in the user's time, across midnight too.
        """
        night = DeviceSettings("sms", 22, 6, 3600)  # UTC+1
        # T0 is 22:13 UTC: 23:13 for this user.
        self.assertTrue(quiet_now(night, T0))
        self.assertEqual(quiet_ends(night, T0), T0 + (6 * 3600 + 46 * 60 + 40) * 1000)
        self.assertFalse(quiet_now(DeviceSettings("sms", 8, 18, 3600), T0))
        self.assertFalse(quiet_now(DeviceSettings("sms", None, None, 0), T0))
        self.assertEqual(quiet_ends(DeviceSettings(), T0), T0)

    def test_stop_from_a_stranger(self) -> None:
        """
        ``STOP`` from a number nobody verified (someone typed another's
        number) cancels the code waiting for it, and nothing answers.
        """
        world = World(self, sqlite_store(self))
        alice = world.user("alice")
        sms = world.channels["sms"]
        sms.failures = [ChannelError("down")]
        world.run(world.devices.add_address(alice, "sms", BOB_PHONE))
        world.settle(0)
        world.run(world.devices.inbound("sms", BOB_PHONE, "STOP"))
        world.settle(10)
        self.assertEqual(sms.sent, [])

    def test_texts(self) -> None:
        """
        ``alice: text``, ``carol@s2.example: text``; an SMS is cut to 160
        characters with an ellipsis, an IM is whole.
        """
        carol = Account(id=1, handle="carol", authority="a-long-server-name.example",
                        name="", created_at=T0, last_seq=0, statuses_count=0,
                        followers_count=0, friends_count=0)
        sms = device_text("sms", carol, "x" * 140)
        self.assertEqual((len(sms), sms[:35], sms[-1]),
                         (160, "carol@a-long-server-name.example: x", "…"))
        self.assertEqual(device_text("im", carol, "x" * 140),
                         "carol@a-long-server-name.example: " + "x" * 140)

    def test_channel_verifies(self) -> None:
        """
        The recording channel of these tests is an IInboundChannel.
        """
        self.assertTrue(verifyObject(IChannel, RecordingChannel("sms")))
        self.assertTrue(verifyObject(IInboundChannel, RecordingChannel("sms")))


class DeliveryRulesMixin:
    """
    What is sent to whom, on each engine.
    """

    def make_store(self) -> SQLStore:
        raise NotImplementedError()

    def world(self, **kwargs: Any) -> World:
        return World(self, self.make_store(), **kwargs)  # type: ignore[arg-type]

    def test_friends_posts(self) -> None:
        """
        A friend's post goes to the follower's delivery device as
        ``bob: text`` while their notifications are on, once; not their own
        posts, not a friend's with notifications off, nothing with the
        device ``none``; an SMS is cut to 160 characters with an ellipsis.
        """
        world = self.world()
        alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
        world.verified(alice, "sms", ALICE_PHONE)
        world.run(world.devices.update_settings(alice, delivery_device="sms"))
        world.follow(alice, bob)
        world.follow(alice, carol, notifications=False)
        world.post(bob, "hello phone")
        world.post(carol, "not to the phone")
        world.post(alice, "my own")
        world.settle(5)
        sms = world.channels["sms"]
        self.assertEqual(sms.to(ALICE_PHONE), ["bob: hello phone"])
        world.post(bob, "x" * 140)
        world.settle(5)
        self.assertEqual(sms.to(ALICE_PHONE)[-1], "bob: " + "x" * 140)
        world.run(world.devices.set_notifications(alice, bob, False))
        world.post(bob, "gone quiet")
        world.run(world.devices.set_notifications(alice, carol, True))
        world.run(world.devices.update_settings(alice, delivery_device="none"))
        world.post(carol, "device off")
        world.settle(5)
        self.assertEqual(len(sms.to(ALICE_PHONE)), 2)
        self.assertEqual(world.run(world.devices.notifications_on(alice, [bob.id, carol.id])),
                         {carol.id})

    def test_blocks_and_mutes_silence(self) -> None:
        """
        Posts, mentions and direct messages of an account the user blocks
        or mutes are not sent.
        """
        world = self.world()
        alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
        world.verified(alice, "im", "alice@im.test")
        world.run(world.devices.update_settings(alice, delivery_device="im", im_mentions=True))
        world.follow(alice, bob)
        world.follow(alice, carol)
        world.run(world.microblog.mute(alice, bob))
        world.post(bob, "muted post")
        world.post(bob, "muted @alice")
        world.run(world.microblog.block(alice, carol))
        world.post(carol, "blocked @alice")
        world.settle(5)
        self.assertEqual(world.channels["im"].sent, [])

    def test_mentions_replies_messages_followers(self) -> None:
        """
        As each user chose per kind: a mention by e-mail (subject, text,
        link, unsubscribe link), a reply (once, though it mentions too), a
        direct message by IM, a new follower by SMS.
        """
        world = self.world()
        alice, bob = world.user("alice"), world.user("bob")
        world.verified(alice, "email", "alice@mail.test")
        world.verified(alice, "im", "alice@im.test")
        world.verified(alice, "sms", ALICE_PHONE)
        world.run(world.devices.update_settings(alice, sms_followers=True,
                                                sms_direct_messages=False))
        world.follow(alice, bob, notifications=False)
        world.follow(bob, alice, notifications=False)
        own = world.post(alice, "first")
        mention = world.post(bob, "hi @alice")
        world.post(bob, "@alice right", reply_to=own.id)
        world.run(world.devices.direct_messages.send(bob, alice, "a secret"))
        world.settle(5)
        mails = world.channels["email"].sent
        self.assertEqual(
            [subject for _, _, subject in mails],
            ["bob mentioned you", "bob replied to you", "bob sent you a direct message",
             "bob is now following you"],
        )
        body = mails[0][1]
        self.assertIn("bob: hi @alice", body)
        self.assertIn(f"{PUBLIC_URL}/bob/status/{mention.seq}", body)
        link = re.search(r"(http://\S+)$", body.strip())
        assert link is not None
        self.assertIn(UNSUBSCRIBE_PATH, link.group(1))
        self.assertEqual(world.channels["im"].to("alice@im.test"), ["DM from bob: a secret"])
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE), ["bob is now following you."])
        token = link.group(1).rsplit("/", 1)[1]
        world.run(world.devices.unsubscribe(token))
        world.post(bob, "again @alice")
        world.settle(5)
        self.assertEqual(len(world.channels["email"].sent), 4)
        world.refused(world.devices.unsubscribe("no-such-token"), NoSuchAddress)

    def test_suspended_get_nothing(self) -> None:
        """
        A suspended user is sent nothing, and a suspended friend's posts
        are not sent.
        """
        world = self.world()
        alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
        world.verified(alice, "sms", ALICE_PHONE)
        world.verified(carol, "sms", BOB_PHONE)
        for user in (alice, carol):
            world.run(world.devices.update_settings(user, delivery_device="sms"))
            world.follow(user, bob)
        world.follow(carol, alice)
        world.run(world.store.set_suspended(alice.id, True))
        world.run(world.microblog.refresh_moderation())
        world.post(bob, "to carol only")
        world.post(alice, "suspended author")
        world.settle(5)
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE), [])
        self.assertEqual(world.channels["sms"].to(BOB_PHONE), ["bob: to carol only"])

    def test_remote_posts(self) -> None:
        """
        A post copied from another server reaches a follower with its
        author's notifications on, named ``carol@s3.test``.
        """
        world = self.world()
        alice = world.user("alice")
        carol = world.run(world.microblog.remote_account("carol", "s3.test"))
        world.verified(alice, "sms", ALICE_PHONE)
        world.run(world.devices.update_settings(alice, delivery_device="sms"))
        world.follow(alice, carol)

        class Item:
            seq = 1
            text = "from afar"
            created_at = T0
            deleted = False
            in_reply_to = None
            source = "web"
            deletes = None

        world.run(world.store.note_remote_last("carol", "s3.test", 1, "http://s3.test"))
        world.run(world.store.store_remote_items(
            carol.id, 1, 1, [Item()], "s1.test", int(world.clock.seconds() * 1000)
        ))
        world.settle(5)
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE), ["carol@s3.test: from afar"])

    def test_quiet_hours_and_direct_messages(self) -> None:
        """
        During quiet hours a friend's post is not sent (not even later); a
        direct message waits until they end.
        """
        world = self.world()
        alice, bob = world.user("alice"), world.user("bob")
        world.verified(alice, "sms", ALICE_PHONE)
        # T0 is 22:13 UTC: quiet from 22:00 to 23:00.
        world.run(world.devices.update_settings(
            alice, delivery_device="sms", quiet_start=22, quiet_end=23
        ))
        world.follow(alice, bob)
        world.follow(bob, alice, notifications=False)
        world.post(bob, "while asleep")
        world.run(world.devices.direct_messages.send(bob, alice, "wake up"))
        world.settle(60)
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE), [])
        world.settle(47 * 60)  # 23:00:20
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE), ["DM from bob: wake up"])

    def test_weekly_cap(self) -> None:
        """
        Beyond the cap, friends' posts are not sent by SMS; one SMS says so
        (once); direct messages still come; a week later posts come again.
        """
        world = self.world(cap=3)
        alice, bob = world.user("alice"), world.user("bob")
        world.verified(alice, "sms", ALICE_PHONE)
        world.run(world.devices.update_settings(alice, delivery_device="sms"))
        world.follow(alice, bob)
        world.follow(bob, alice, notifications=False)
        for n in range(5):
            world.post(bob, f"post {n}")
        world.settle(5)
        world.post(bob, "post 5")
        world.run(world.devices.direct_messages.send(bob, alice, "still here"))
        world.settle(5)
        texts = world.channels["sms"].to(ALICE_PHONE)
        self.assertEqual(texts[:3], ["bob: post 0", "bob: post 1", "bob: post 2"])
        self.assertEqual(len([t for t in texts if "updates of the week" in t]), 1)
        self.assertEqual(texts[-1], "DM from bob: still here")
        self.assertEqual(len(texts), 5)
        world.clock.advance(7 * 24 * 3600)
        world.post(bob, "a week later")
        world.settle(5)
        self.assertEqual(world.channels["sms"].to(ALICE_PHONE)[-1], "bob: a week later")

    def test_stop(self) -> None:
        """
        ``STOP`` from the phone stops everything to it at once (what waited
        is cancelled), answers once, and ``ON`` starts friends' posts again.
        """
        world = self.world()
        alice, bob = world.user("alice"), world.user("bob")
        world.verified(alice, "sms", ALICE_PHONE)
        world.run(world.devices.update_settings(alice, delivery_device="sms",
                                                sms_mentions=True))
        world.follow(alice, bob)
        sms = world.channels["sms"]
        sms.failures = [ChannelError("down")]
        world.post(bob, "waits for the gateway")
        world.settle(0)
        world.run(world.devices.inbound("sms", ALICE_PHONE, "stop"))
        world.settle(5)
        self.assertEqual(len(sms.to(ALICE_PHONE)), 1)
        self.assertIn("nothing more", sms.to(ALICE_PHONE)[0])
        settings = world.run(world.devices.settings(alice))
        self.assertEqual((settings.delivery_device, settings.choices["sms_mentions"]),
                         ("none", False))
        world.post(bob, "after stop @alice")
        world.settle(5)
        self.assertEqual(len(sms.to(ALICE_PHONE)), 1)
        world.run(world.devices.inbound("sms", ALICE_PHONE, "ON"))
        world.post(bob, "back on")
        world.settle(5)
        self.assertEqual(sms.to(ALICE_PHONE)[-2:],
                         ["Your friends' posts will come here. OFF stops them.", "bob: back on"])


class SQLiteDeliveryRulesTests(DeliveryRulesMixin, SynchronousTestCase):
    def make_store(self) -> SQLStore:
        return sqlite_store(self)


class PostgresDeliveryRulesTests(DeliveryRulesMixin, SynchronousTestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def make_store(self) -> SQLStore:
        return postgres_store(self)
