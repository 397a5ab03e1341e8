"""
Instant messages end to end (issue 18): a real ``twistd distwit`` process
whose ``[im]`` settings name an account on a real Prosody started by the
test, and a second Prosody account, driven by a plain Twisted Words client,
that is Alice's Jabber client.  Alice adds her Jabber ID through the API,
types in the code that arrives in her client, and from then on gets her
friends' posts as messages and posts, follows and writes direct messages by
messaging the server's account.
"""

from __future__ import annotations

import os
import re
from typing import Any

from twisted.trial.unittest import SkipTest, TestCase

from tests.processes import ServerProcess, run_cli
from tests.prosody import ProsodyServer, UserClient, eventually, prosody_missing

PASSWORD = "correct horse battery"
BOT_PASSWORD = "the server's own password"
JABBER_PASSWORD = "alice's jabber password"

#: A verification code in a message.
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")

#: How long anything may take to go through the outbox and Prosody.
DEADLINE = 60.0


class XMPPEndToEndTests(TestCase):
    timeout = 300

    def setUp(self) -> None:
        missing = prosody_missing()
        if missing:
            raise SkipTest(missing)
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.prosody = ProsodyServer(os.path.join(base, "prosody"))
        self.bot = self.prosody.register("updates", BOT_PASSWORD)
        self.jabber = self.prosody.register("alice.jabber", JABBER_PASSWORD)
        self.prosody.start()
        self.addCleanup(self.prosody.stop)
        data = os.path.join(base, "server")
        os.makedirs(data)
        for handle in ("alice", "bob", "carol"):
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.assertEqual(done.returncode, 0, done.stderr)
        config = os.path.join(base, "distwit.ini")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                "[im]\n"
                f"xmpp_jid = {self.bot}\n"
                f"xmpp_password = {BOT_PASSWORD}\n"
                "xmpp_host = 127.0.0.1\n"
                f"xmpp_port = {self.prosody.port}\n"
                # The test's Prosody has a certificate no system authority
                # signed (tests/test_xmpp_channel.py checks verification).
                "xmpp_tls_verify = false\n"
            )
        self.server = ServerProcess(data, "--config", config)
        self.addCleanup(self.server.stop)

    def call(self, method: str, path: str, user: str, **data: Any) -> Any:
        code, body = self.server.request(
            method, path, auth=(user, PASSWORD), data=data if method == "POST" else None
        )
        self.assertEqual(code, 200, f"{method} {path} as {user}: {body}")
        return body

    async def alice_client(self) -> UserClient:
        client = UserClient(self.jabber, JABBER_PASSWORD, self.prosody.port)
        await client.connect()
        self.addCleanup(client.disconnect)
        return client

    async def from_server(self, client: UserClient, pattern: str) -> str:
        """
        The first message from the server's account that matches
        ``pattern``, once it has arrived.
        """
        def found() -> str | None:
            return next(
                (body for body in client.bodies_from(self.bot) if re.search(pattern, body)),
                None,
            )

        return await eventually(  # type: ignore[no-any-return]
            found,
            f"a message matching {pattern!r} from {self.bot} (got"
            f" {client.bodies_from(self.bot)}; server log:\n{self.server.log_text()[-3000:]})",
            timeout=DEADLINE,
        )

    async def verified_alice(self) -> UserClient:
        """
        Alice's Jabber client, her Jabber ID added and verified through the
        API with the code that arrived in it, and chosen as her delivery
        device.
        """
        client = await self.alice_client()
        added = self.call("POST", "/1.1/account/devices/add.json", "alice",
                          kind="im", address=self.jabber.upper())
        self.assertEqual((added["address"], added["verified"]), (self.jabber, False))
        message = await self.from_server(client, CODE.pattern)
        code = CODE.search(message)
        assert code is not None
        verified = self.call("POST", "/1.1/account/devices/verify.json", "alice",
                             kind="im", code=code.group(1))
        self.assertTrue(verified["verified"])
        me = self.call("POST", "/account/update_delivery_device.json", "alice", device="im")
        self.assertEqual(me["screen_name"], "alice")
        return client

    def relationship(self, user: str, other: str) -> dict[str, Any]:
        """
        Whether ``user`` follows ``other``, and has their posts sent to
        their device, as the API tells ``user``.
        """
        following = self.call(
            "GET", f"/1.1/friendships/exists.json?user_a={user}&user_b={other}", user
        )
        shown = self.call("GET", f"/1.1/users/show.json?screen_name={other}", user)
        return {"following": following, "notifications": shown["notifications"]}

    async def test_follow_then_friends_post_arrives(self) -> None:
        """
        ``FOLLOW bob`` from Alice's Jabber client follows Bob (seen through
        the API, his notifications on), and Bob's next post arrives in her
        client as ``bob: text``; Carol, whom she does not follow, does not
        reach her.
        """
        client = await self.verified_alice()
        self.assertEqual(self.relationship("alice", "bob")["following"], False)
        client.say(self.bot, "FOLLOW bob")
        await eventually(
            lambda: self.relationship("alice", "bob")["following"],
            "alice follows bob", timeout=DEADLINE,
        )
        self.assertEqual(self.relationship("alice", "bob"),
                         {"following": True, "notifications": True})
        self.call("POST", "/1.1/statuses/update.json", "carol", status="carol's post")
        self.call("POST", "/1.1/statuses/update.json", "bob", status="bob's post <&>")
        arrived = await self.from_server(client, "^bob: ")
        self.assertEqual(arrived, "bob: bob's post <&>")
        self.assertNotIn("carol: carol's post", client.bodies_from(self.bot))

    async def test_message_becomes_post(self) -> None:
        """
        Any other text Alice sends from her Jabber client is a post of
        hers, seen through the API with the source ``im``.
        """
        client = await self.verified_alice()
        client.say(self.bot, "posting from my Jabber client \u2603")

        def posted() -> Any:
            timeline = self.call(
                "GET", "/1.1/statuses/user_timeline.json?screen_name=alice", "alice"
            )
            return timeline[0] if timeline else None

        status = await eventually(posted, "alice's post appears", timeout=DEADLINE)
        self.assertEqual(status["text"], "posting from my Jabber client \u2603")
        self.assertIn("im", status["source"])

    async def test_direct_message(self) -> None:
        """
        ``D bob text`` from Alice's Jabber client is a direct message Bob
        reads through the API (Bob follows Alice, so she may write him).
        """
        client = await self.verified_alice()
        self.call("POST", "/1.1/friendships/create.json", "bob", screen_name="alice")
        client.say(self.bot, "D bob meet me at noon")

        def received() -> Any:
            return self.call("GET", "/1.1/direct_messages.json", "bob")

        messages = await eventually(received, "bob's direct message arrives",
                                    timeout=DEADLINE)
        self.assertEqual(
            [(m["sender_screen_name"], m["text"]) for m in messages],
            [("alice", "meet me at noon")],
        )

    async def test_unknown_jabber_id_is_told_how(self) -> None:
        """
        A Jabber ID no account has verified gets one answer saying how to
        add it, and what it sent is not posted anywhere.
        """
        client = await self.alice_client()
        client.say(self.bot, "hello, who are you?")
        answer = await self.from_server(client, "Jabber ID")
        self.assertIn("is on no account", answer)
        self.assertIn("settings page", answer)
        timeline = self.call(
            "GET", "/1.1/statuses/user_timeline.json?screen_name=alice", "alice"
        )
        self.assertEqual(timeline, [])

    async def test_xmpp_server_outage(self) -> None:
        """
        A friend posts while the XMPP server is down: the post waits in
        the outbox, and arrives once, when the server is back; the next
        post arrives after it, and nothing twice.
        """
        client = await self.verified_alice()
        client.say(self.bot, "FOLLOW bob")
        await eventually(
            lambda: self.relationship("alice", "bob")["following"],
            "alice follows bob", timeout=DEADLINE,
        )
        await client.disconnect()
        self.prosody.stop()
        before = len(self.server.log_text())
        self.call("POST", "/1.1/statuses/update.json", "bob", status="during the outage")
        # The outbox tried to send it, and the channel said it could not.
        await eventually(
            lambda: "not connected to the XMPP server" in self.server.log_text()[before:],
            "the server tries and fails while Prosody is down", timeout=DEADLINE,
        )
        self.prosody.start()
        client = await self.alice_client()
        await self.from_server(client, "^bob: during the outage$")
        self.call("POST", "/1.1/statuses/update.json", "bob", status="after the outage")
        await self.from_server(client, "^bob: after the outage$")
        self.assertEqual(
            [body for body in client.bodies_from(self.bot) if body.startswith("bob: ")],
            ["bob: during the outage", "bob: after the outage"],
        )
