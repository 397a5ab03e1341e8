"""
The commands people text or message (docs/design/devices.md, "Commands"),
through ``Devices.inbound`` on a real SQLite store, answered through the
durable outbox to a recording channel.
"""

from __future__ import annotations

import os
import re
import sqlite3

from twisted.trial.unittest import SynchronousTestCase

from distwit.core.commands import HELP
from distwit.model import Account

from tests.processes import run_cli
from tests.test_devices import ALICE_PHONE, BOB_PHONE, T0, World, sqlite_store


class CommandTests(SynchronousTestCase):
    """
    What each command does, and the answer it gets.
    """

    def setUp(self) -> None:
        self.world = World(self, sqlite_store(self))
        self.alice = self.world.user("alice")
        self.bob = self.world.user("bob")
        self.world.verified(self.alice, "sms", ALICE_PHONE)
        self.world.verified(self.bob, "im", "bob@im.test")

    def text(self, message: str, kind: str = "sms", address: str = ALICE_PHONE) -> list[str]:
        """
        Send ``message`` from ``address``: the answers it got.
        """
        channel = self.world.channels[kind]
        before = len(channel.to(address))
        self.world.run(self.world.devices.inbound(kind, address, message))
        self.world.settle(3)
        return channel.to(address)[before:]

    def timeline(self, user: Account) -> list[str]:
        posts = self.world.run(self.world.store.user_timeline(user.id, 20, None, None))
        return [post.text for post in posts]

    def test_post(self) -> None:
        """
        Any other text is a post (source ``txt``), with no answer; the API's
        rules answer in words: too long, a duplicate, empty.
        """
        self.assertEqual(self.text("hello from my phone"), [])
        posts = self.world.run(self.world.store.user_timeline(self.alice.id, 20, None, None))
        self.assertEqual([(p.text, p.source) for p in posts], [("hello from my phone", "txt")])
        self.assertEqual(self.text("x" * 141), ["Status is over 140 characters (141)."])
        self.assertEqual(self.text("hello from my phone"), ["Status is a duplicate."])
        self.assertEqual(self.text("   "), ["A post needs some text."])
        self.assertEqual(self.text("hi from IM", "im", "bob@im.test"), [])
        self.assertEqual(self.timeline(self.bob), ["hi from IM"])

    def test_follow_and_leave(self) -> None:
        """
        ``FOLLOW name`` follows with notifications on; ``LEAVE name`` turns
        them off and keeps the follow; an unknown name is said so.
        """
        answers = self.text("follow @bob")
        self.assertEqual(len(answers), 1)
        self.assertIn("You are now following bob", answers[0])
        self.assertTrue(self.world.run(self.world.microblog.is_following(self.alice, self.bob)))
        self.assertEqual(
            self.world.run(self.world.devices.notifications_on(self.alice, [self.bob.id])),
            {self.bob.id},
        )
        self.assertIn("no longer get bob's posts", self.text("LEAVE bob")[0])
        self.assertTrue(self.world.run(self.world.microblog.is_following(self.alice, self.bob)))
        self.assertEqual(
            self.world.run(self.world.devices.notifications_on(self.alice, [self.bob.id])),
            set(),
        )
        self.assertEqual(self.text("FOLLOW nobody"), ["There is no user 'nobody' here."])
        self.assertEqual(self.text("FOLLOW alice"), ["You can't follow yourself."])

    def test_on_and_off(self) -> None:
        """
        ``ON`` makes this device the delivery device, ``OFF`` stops it;
        ``ON name`` / ``OFF name`` turn one friend's posts on and off (only
        for a friend); friends' posts follow.
        """
        self.world.follow(self.alice, self.bob, notifications=False)
        self.assertEqual(self.text("on"), ["Your friends' posts will come here. OFF stops them."])
        self.assertEqual(self.text("ON bob"), ["bob's posts will come to your device."])
        self.world.post(self.bob, "one")
        self.world.settle(3)
        self.assertEqual(self.world.channels["sms"].to(ALICE_PHONE)[-1], "bob: one")
        self.assertEqual(self.text("OFF bob"),
                         ["bob's posts will no longer come to your device."])
        self.world.post(self.bob, "two")
        self.world.settle(3)
        self.assertEqual(self.text("ON bob"), ["bob's posts will come to your device."])
        self.assertEqual(self.text("OFF"),
                         ["Your friends' posts will no longer come here. ON starts them again."])
        self.world.post(self.bob, "three")
        self.world.settle(3)
        self.assertNotIn("bob: two", self.world.channels["sms"].to(ALICE_PHONE))
        self.assertNotIn("bob: three", self.world.channels["sms"].to(ALICE_PHONE))
        carol = self.world.user("carol")
        self.assertEqual(self.text("ON carol"), ["You are not following carol."])
        self.assertIsNotNone(carol)

    def test_direct_message(self) -> None:
        """
        ``D name text`` sends a direct message (the recipient gets it by IM,
        as chosen); the API's rule on who may be sent one answers in words.
        """
        self.assertEqual(self.text("D bob hello there"),
                         ["You cannot send messages to users who are not following you."])
        self.world.follow(self.bob, self.alice, notifications=False)
        self.assertEqual(self.text("d bob hello there"), ["Direct message sent to bob."])
        self.world.settle(3)
        self.assertEqual(self.world.channels["im"].to("bob@im.test"),
                         ["DM from alice: hello there"])
        received = self.world.run(self.world.devices.direct_messages.received(self.bob, 10))
        self.assertEqual([m.text for m in received], ["hello there"])

    def test_get_and_whois(self) -> None:
        """
        ``GET name`` answers their latest post, ``WHOIS name`` their
        profile.
        """
        self.assertEqual(self.text("GET bob"), ["bob has posted nothing yet."])
        self.world.post(self.bob, "older")
        self.world.post(self.bob, "newest")
        self.assertEqual(self.text("get bob"), ["bob: newest"])
        self.world.run(self.world.microblog.update_profile(
            self.bob, name="Bob B", description="Builds things.", location="Paris",
            url="bob.example",
        ))
        self.assertEqual(
            self.text("WHOIS bob"),
            ["bob (Bob B). Builds things. Location: Paris. Web: http://bob.example."],
        )

    def test_remote_names(self) -> None:
        """
        ``name`` may be ``handle@authority`` (an account known here).
        """
        carol = self.world.run(self.world.microblog.remote_account("carol", "s3.test"))
        self.assertEqual(self.text("GET carol@s3.test"), ["carol@s3.test has posted nothing yet."])
        self.assertEqual(self.text("WHOIS @carol@s3.test"), ["carol@s3.test."])
        self.assertEqual(carol.authority, "s3.test")

    def test_help_and_stop(self) -> None:
        """
        ``HELP`` lists the commands; ``STOP`` (or ``QUIT``...) stops and
        answers once.
        """
        self.assertEqual(self.text("help"), [HELP])
        answers = self.text("Quit")
        self.assertEqual(len(answers), 1)
        self.assertIn("Send ON to start again", answers[0])

    def test_stranger(self) -> None:
        """
        From an address no account verified: one answer saying how to add
        it, ever, and no post.
        """
        first = self.text("hello", "sms", BOB_PHONE)
        self.assertEqual(len(first), 1)
        self.assertIn("on no account at s1.test", first[0])
        self.assertEqual(self.text("FOLLOW alice", "sms", BOB_PHONE), [])
        self.assertEqual(self.timeline(self.bob), [])

    def test_suspended(self) -> None:
        """
        A suspended user's texts post nothing.
        """
        self.world.run(self.world.store.set_suspended(self.alice.id, True))
        self.world.run(self.world.microblog.refresh_moderation())
        self.assertEqual(self.text("still here?"), ["User has been suspended."])
        self.assertEqual(self.timeline(self.alice), [])
        self.assertTrue(T0)


class OperatorDeviceCommandTests(SynchronousTestCase):
    """
    ``distwit user devices|add-device|verify-device|remove-device``: the
    operator gives a user an address; its code waits in the devices'
    outbox for the running server to send.
    """

    def test_add_verify_remove(self) -> None:
        """
        An added number is listed as waiting for its code, and its code is
        queued; a wrong code is refused in words; the queued code verifies
        it; removing it forgets it.
        """
        data = os.path.abspath(self.mktemp())

        def cli(*args: str, stdin: str = "", ok: bool = True) -> str:
            done = run_cli(*args, "--data", data, stdin=stdin)
            self.assertNotIn("Traceback", done.stderr)
            self.assertEqual(done.returncode == 0, ok, done.stderr)
            return done.stdout + done.stderr

        cli("adduser", "--create", "alice", stdin="a long password\n")
        self.assertIn("a code is on its way",
                      cli("user", "add-device", "alice", "sms", "+1 555 000 0001"))
        self.assertIn("sms\t+15550000001\twaiting for its code", cli("user", "devices", "alice"))
        with sqlite3.connect(os.path.join(data, "distwit.sqlite3")) as db:
            (text,) = db.execute(
                "SELECT text FROM device_outbox WHERE category = 'code'"
            ).fetchone()
        found = re.search(r"\b(\d{6})\b", text)
        assert found is not None
        code = found.group(1)
        wrong = "000000" if code != "000000" else "111111"
        self.assertIn("That is not the code sent (4 tries left).",
                      cli("user", "verify-device", "alice", "sms", wrong, ok=False))
        self.assertIn("verified", cli("user", "verify-device", "alice", "sms", code))
        self.assertIn("sms\t+15550000001\tverified", cli("user", "devices", "alice"))
        self.assertIn("removed", cli("user", "remove-device", "alice", "sms"))
        self.assertNotIn("+15550000001", cli("user", "devices", "alice"))
        self.assertIn("phone number", cli("user", "add-device", "alice", "sms", "12", ok=False))
