"""
The XMPP channel (distwit/channels/xmpp.py) against a real Prosody started
by the test, with a second account, driven by a plain Twisted Words client,
playing the user.
"""

from __future__ import annotations

import os
import re
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.words.protocols.jabber import xmlstream
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from distwit.channels.interfaces import AddressRefused, ChannelError, IInboundChannel
from distwit.channels.xmpp import XMPPChannel, bare_jid, from_settings
from distwit.config import ConfigError, resolve
from tests.prosody import DOMAIN, ProsodyServer, UserClient, eventually, prosody_missing

BOT_PASSWORD = "bot password 1"
ALICE_PASSWORD = "alice password 2"


class Received:
    """
    An :data:`~distwit.channels.interfaces.Inbound` that keeps what it is
    given.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []

    async def __call__(self, kind: str, address: str, text: str) -> None:
        self.messages.append((kind, address, text))


class ProsodyTestCase(TestCase):
    """
    A real Prosody with two accounts: the server's (``updates``) and a
    user's (``alice``).
    """

    timeout = 120

    def setUp(self) -> None:
        missing = prosody_missing()
        if missing:
            raise SkipTest(missing)
        self.prosody = ProsodyServer(self.mktemp())
        self.bot = self.prosody.register("updates", BOT_PASSWORD)
        self.alice = self.prosody.register("alice", ALICE_PASSWORD)
        self.prosody.start()
        self.addCleanup(self.prosody.stop)
        with open(self.prosody.ca, "rb") as f:
            self.trust_root = trustRootFromCertificates([Certificate.loadPEM(f.read())])

    def channel(self, **options: Any) -> XMPPChannel:
        """
        The server's channel to the test Prosody, started (stopped at the
        end of the test).
        """
        settings: dict[str, Any] = dict(
            host="127.0.0.1", port=self.prosody.port, trust_root=self.trust_root,
            retry_policy=lambda attempt: 0.2,
        )
        settings.update(options)
        password = settings.pop("password", BOT_PASSWORD)
        channel = XMPPChannel(reactor, self.bot, password, **settings)
        channel.startService()
        self.addCleanup(channel.stopService)
        return channel

    async def user(self) -> UserClient:
        user = UserClient(self.alice, ALICE_PASSWORD, self.prosody.port)
        await user.connect()
        self.addCleanup(user.disconnect)
        return user

    async def connected(self, channel: XMPPChannel) -> None:
        await eventually(
            lambda: channel.connected,
            f"the channel connects ({channel.last_error or 'no error'};"
            f" Prosody's log:\n{self.prosody.tail()})",
        )


class SendTests(ProsodyTestCase):
    async def test_message_arrives(self) -> None:
        """
        What the channel sends arrives at the user's client as a chat
        message from the server's account, whole.
        """
        channel = self.channel()
        user = await self.user()
        await self.connected(channel)
        text = "bob: hello <there> & \u00e9t\u00e9 \U0001f600"
        self.assertIsNone(await channel.send(self.alice, text, ""))
        await eventually(lambda: user.messages, "the message arrives")
        sender, kind, body = user.messages[0]
        self.assertEqual((sender.split("/")[0], kind, body), (self.bot, "chat", text))

    async def test_message_held_for_offline_user(self) -> None:
        """
        A message to a user who is offline is taken by the server and
        reaches them when they sign in.
        """
        channel = self.channel()
        await self.connected(channel)
        await channel.send(self.alice, "carol: while you were away", "")
        user = await self.user()
        await eventually(lambda: user.bodies_from(self.bot), "the held message arrives")
        self.assertEqual(user.bodies_from(self.bot), ["carol: while you were away"])

    async def test_characters_xml_cannot_carry(self) -> None:
        """
        A text with control characters XML cannot carry is sent without
        them, and the connection stays up (the server would close a stream
        that held them).
        """
        channel = self.channel()
        user = await self.user()
        await self.connected(channel)
        await channel.send(self.alice, "bell\x07 and\x00 null", "")
        await channel.send(self.alice, "next", "")
        await eventually(lambda: len(user.messages) == 2, "both messages arrive")
        self.assertEqual([m[2] for m in user.messages], ["bell and null", "next"])
        self.assertTrue(channel.connected)

    async def test_unknown_account_refused(self) -> None:
        """
        A message to an account the server does not have is given up
        (:class:`AddressRefused`, not retried); an address that is no
        Jabber ID is refused before anything is sent.
        """
        channel = self.channel()
        await self.connected(channel)
        failure = await self.failUnlessFailure(
            channel.send(f"nobody@{DOMAIN}", "hello?", ""), AddressRefused
        )
        self.assertIn("service-unavailable", str(failure))
        await self.failUnlessFailure(channel.send("not a jid@@", "x", ""), AddressRefused)
        await self.failUnlessFailure(
            channel.send(f"{self.alice}/phone", "x", ""), AddressRefused
        )
        self.assertTrue(channel.connected)

    async def test_server_down_then_back(self) -> None:
        """
        With Prosody stopped, send fails with :class:`ChannelError` (so the
        outbox tries again), never silently; when Prosody is back the
        channel connects by itself and what it sends arrives.
        """
        channel = self.channel()
        await self.connected(channel)
        self.prosody.stop()
        await eventually(lambda: not channel.connected, "the channel sees the server gone")
        failure = await self.failUnlessFailure(
            channel.send(self.alice, "lost?", ""), ChannelError
        )
        self.assertNotIsInstance(failure, AddressRefused)
        self.assertIn("not connected", str(failure))
        self.prosody.start()
        await self.connected(channel)
        await channel.send(self.alice, "back again", "")
        user = await self.user()
        await eventually(lambda: user.bodies_from(self.bot), "the message arrives")
        self.assertEqual(user.bodies_from(self.bot), ["back again"])


class ReceiveTests(ProsodyTestCase):
    async def test_message_reaches_inbound(self) -> None:
        """
        A chat message from the user reaches the server's rules as
        ``("im", bare JID, text)``, in the order sent.
        """
        received = Received()
        channel = self.channel()
        channel.listen(received)
        await self.connected(channel)
        user = await self.user()
        user.say(self.bot, "FOLLOW bob")
        user.say(self.bot, "  D bob hi there  ")
        user.say(self.bot, "a post", kind="normal")
        await eventually(lambda: len(received.messages) == 3, "three messages arrive")
        self.assertEqual(received.messages, [
            ("im", self.alice, "FOLLOW bob"),
            ("im", self.alice, "D bob hi there"),
            ("im", self.alice, "a post"),
        ])

    async def test_held_until_listening(self) -> None:
        """
        Messages sent while the channel is not listening (connected but
        not yet listening, or not connected at all) are held by the server
        and reach the rules once it listens.
        """
        user = await self.user()
        user.say(self.bot, "while the server was down")
        channel = self.channel()
        await self.connected(channel)
        user.say(self.bot, "while it was not listening")
        received = Received()
        channel.listen(received)
        await eventually(lambda: len(received.messages) == 2, "both held messages arrive")
        self.assertEqual(
            sorted(text for _, _, text in received.messages),
            ["while it was not listening", "while the server was down"],
        )

    async def test_odd_stanzas(self) -> None:
        """
        Typing notifications, errors, headlines, group chat, empty
        bodies, unknown extensions, requests it does not serve and odd
        presences are ignored or answered as XMPP says; none reaches the
        rules, none breaks the connection, and the next message arrives.
        """
        received = Received()
        channel = self.channel()
        channel.listen(received)
        await self.connected(channel)
        user = await self.user()
        user.raw(f"<message to='{self.bot}' type='chat'>"
                 "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
        user.raw(f"<message to='{self.bot}' type='chat'><body>   </body></message>")
        user.raw(f"<message to='{self.bot}' type='error'><body>an error</body>"
                 "<error type='cancel'><item-not-found"
                 " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        user.raw(f"<message to='{self.bot}' type='headline'><body>news</body></message>")
        user.raw(f"<message to='{self.bot}' type='groupchat'><body>room</body></message>")
        user.raw(f"<message to='{self.bot}' type='chat'><x xmlns='urn:odd'><body>deep</body>"
                 "</x><thread>t1</thread></message>")
        user.raw(f"<message to='{self.bot}' type='weird'><body>?</body></message>")
        user.raw(f"<presence to='{self.bot}' type='probe-me'/>")
        user.raw(f"<presence to='{self.bot}'><status>\u2603</status></presence>")
        # A request to the bot's own resource, which it must answer.
        full = channel._stream.authenticator.jid.full()  # type: ignore[union-attr]
        user.raw(f"<iq to='{full}' type='get' id='q1'><query xmlns='urn:odd:query'/></iq>")
        user.raw(f"<iq to='{full}' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        answers: list[tuple[str, str]] = []

        def answered(iq: domish.Element) -> None:
            if iq.getAttribute("id") in ("q1", "p1"):  # not the roster's answer
                answers.append((iq["id"], iq["type"]))

        user.stream.addObserver("/iq", answered)  # type: ignore[union-attr]
        user.say(self.bot, "after the noise")
        await eventually(lambda: received.messages, "the plain message arrives")
        await eventually(lambda: len(answers) == 2, f"both requests are answered ({answers})")
        self.assertEqual(received.messages, [("im", self.alice, "after the noise")])
        self.assertEqual(sorted(answers), [("p1", "result"), ("q1", "error")])
        self.assertTrue(channel.connected)
        await channel.send(self.alice, "still here", "")
        await eventually(lambda: user.bodies_from(self.bot), "the answer arrives")

    async def test_subscription_accepted(self) -> None:
        """
        A user who adds the server's account to their roster is accepted
        at once.
        """
        channel = self.channel()
        channel.listen(Received())
        await self.connected(channel)
        user = await self.user()
        subscribe = domish.Element((None, "presence"))
        subscribe["to"] = self.bot
        subscribe["type"] = "subscribe"
        user.raw(subscribe)
        await eventually(
            lambda: (self.bot, "subscribed") in user.presences, "the subscription is accepted"
        )


class ConnectionTests(ProsodyTestCase):
    async def test_untrusted_certificate(self) -> None:
        """
        A server whose certificate the system does not trust for the
        domain never gets the password: the channel does not connect,
        and says why.
        """
        channel = self.channel(trust_root=None)
        await eventually(lambda: channel.last_error, "the channel gives a reason")
        self.assertFalse(channel.connected)
        self.assertIn("certificate", channel.last_error.lower())
        await self.failUnlessFailure(channel.send(self.alice, "x", ""), ChannelError)
        with open(self.prosody.log, encoding="utf-8") as f:
            self.assertNotIn("Authenticated as", f.read())

    async def test_no_starttls(self) -> None:
        """
        A server that offers no STARTTLS never gets the password, though it
        would take it in clear: the channel does not connect, and says why.
        """
        plain = ProsodyServer(self.mktemp(), tls=False)
        plain.register("updates", BOT_PASSWORD)
        plain.start()
        self.addCleanup(plain.stop)
        channel = self.channel(port=plain.port, tls_verify=False)
        await eventually(lambda: channel.last_error, "the channel gives a reason")
        self.assertIn("no STARTTLS", channel.last_error)
        self.assertFalse(channel.connected)
        with open(plain.log, encoding="utf-8") as f:
            log = f.read()
        self.assertIn("Client connected", log)
        self.assertNotIn("<auth", log)

    async def test_wrong_password(self) -> None:
        """
        A refused password keeps the channel down, with a sentence that
        says so (and it keeps trying, for when the operator fixes it).
        """
        channel = self.channel(password="wrong")
        await eventually(lambda: channel.last_error, "the channel gives a reason")
        self.assertIn("refused the password", channel.last_error)
        self.assertFalse(channel.connected)

    async def test_from_settings_without_verification(self) -> None:
        """
        The ``[im]`` settings make the channel; with ``xmpp_tls_verify =
        false`` it accepts a test server's certificate that no authority
        vouches for.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(
                "[im]\n"
                f"xmpp_jid = {self.bot.upper()}\n"
                f"xmpp_password = {BOT_PASSWORD}\n"
                "xmpp_host = 127.0.0.1\n"
                f"xmpp_port = {self.prosody.port}\n"
                "xmpp_tls_verify = false\n"
            )
        settings = resolve({}, path)
        self.assertEqual(settings.xmpp_jid, self.bot)
        parts = from_settings(settings, reactor)
        assert parts is not None
        self.assertEqual(parts.services, [parts.channel])
        channel = parts.channel
        channel.startService()
        self.addCleanup(channel.stopService)
        await self.connected(channel)
        user = await self.user()
        await channel.send(self.alice, "configured", "")
        await eventually(lambda: user.bodies_from(self.bot), "the message arrives")


class SettingsTests(SynchronousTestCase):
    def config(self, text: str) -> Any:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[im]\n" + text)
        return resolve({}, path)

    def test_not_configured(self) -> None:
        """
        Without ``xmpp_jid`` there is no XMPP channel.
        """
        self.assertIsNone(from_settings(resolve({}, None), reactor))

    def test_bad_settings(self) -> None:
        """
        A Jabber ID that is not a bare one, a missing password or a bad
        port is refused with a sentence naming the setting.
        """
        for text, words in [
            ("xmpp_jid = example.org\nxmpp_password = x\n", "xmpp_jid"),
            ("xmpp_jid = a@example.org/res\nxmpp_password = x\n", "bare Jabber ID"),
            ("xmpp_jid = a@@example.org\nxmpp_password = x\n", "xmpp_jid"),
            ("xmpp_jid = a@example.org\n", "xmpp_password"),
            ("xmpp_port = 0\n", "xmpp_port"),
            ("xmpp_host = a b\n", "xmpp_host"),
            ("xmpp_tls_verify = maybe\n", "xmpp_tls_verify"),
        ]:
            error = self.assertRaises(ConfigError, self.config, text)
            self.assertIn(words, str(error))

    def test_defaults(self) -> None:
        """
        The server is the Jabber ID's domain on port 5222, its
        certificate checked.
        """
        settings = self.config("xmpp_jid = Updates@Example.org\nxmpp_password = x\n")
        self.assertEqual(
            (settings.xmpp_jid, settings.xmpp_host, settings.xmpp_port, settings.xmpp_tls_verify),
            ("updates@example.org", "", 5222, True),
        )
        parts = from_settings(settings, reactor)
        assert parts is not None
        self.assertEqual(parts.channel._host, "example.org")

    def test_interface(self) -> None:
        """
        The channel is an inbound channel of kind ``im``; before it is
        connected, send fails with a ChannelError (never a silent drop).
        """
        channel = XMPPChannel(reactor, "updates@example.org", "x")
        verifyObject(IInboundChannel, channel)
        self.assertEqual((channel.kind, channel.name), ("im", "xmpp"))
        failure = self.failureResultOf(channel.send("dave@example.org", "hi", ""), ChannelError)
        self.assertIn("not connected", str(failure.value))

    def test_bare_jid(self) -> None:
        """
        Addresses are kept as bare, lower-cased Jabber IDs.
        """
        self.assertEqual(bare_jid(" Dave@Example.ORG/Phone "), "dave@example.org")
        for bad in ("example.org", "a@@b", ""):
            self.assertRaises(ValueError, bare_jid, bad)


class InMemoryTests(SynchronousTestCase):
    """
    The channel's handling of one stream, in memory: a stream built by its
    own factory on a StringTransport, the test's clock, stanzas dispatched
    as the server would send them.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.channel = XMPPChannel(
            self.clock, "updates@example.org", "pw", accept_timeout=30, keepalive=60
        )
        self.received = Received()
        self.stream = self.open_stream()

    def open_stream(self) -> Any:
        stream = self.channel._factory.buildProtocol(None)
        self.transport = StringTransport()
        stream.makeConnection(self.transport)
        stream.authenticator.jid = JID("updates@example.org/r1")
        stream.dispatch(stream, xmlstream.STREAM_AUTHD_EVENT)
        self.transport.clear()
        return stream

    def stanza(self, xml: str) -> None:
        """
        Dispatch one stanza as if the server had sent it.
        """
        found: list[domish.Element] = []
        parser = domish.elementStream()
        parser.DocumentStartEvent = lambda root: None
        parser.ElementEvent = found.append
        parser.DocumentEndEvent = lambda: None
        parser.parse(b"<stream xmlns='jabber:client'>" + xml.encode() + b"</stream>")
        for element in found:
            self.stream.dispatch(element)

    def written(self) -> str:
        text = self.transport.value().decode()
        self.transport.clear()
        return text

    def pending(self) -> tuple[str, str]:
        """
        The ids of the message and of the ping written after it.
        """
        text = self.written()
        message = re.search(r"<message[^>]* id='([0-9a-f]+)'", text)
        ping = re.search(r"<iq[^>]* id='([^']+)'[^>]*><ping", text)
        assert message and ping, text
        return message.group(1), ping.group(1)

    def test_taken_once_the_server_answers(self) -> None:
        """
        send fires once the server answered the ping that follows the
        message (a result, or an error: either says it was handled), not
        before.
        """
        for answer in ("result", "error"):
            sent = self.channel.send("dave@example.org", "hi", "")
            _, ping = self.pending()
            self.assertNoResult(sent)
            self.stanza(f"<iq type='{answer}' id='{ping}' from='example.org'/>")
            self.assertIsNone(self.successResultOf(sent))

    def test_bounces(self) -> None:
        """
        A bounce for the message before the server's answer gives it up
        when the error will never pass, and tries again when it may.
        """
        for condition, kind, expected in [
            ("item-not-found", "cancel", AddressRefused),
            ("service-unavailable", "cancel", AddressRefused),
            ("resource-constraint", "wait", ChannelError),
            ("remote-server-not-found", "cancel", ChannelError),
        ]:
            sent = self.channel.send("dave@example.org", "hi", "")
            message, ping = self.pending()
            self.stanza(
                f"<message type='error' id='{message}' from='dave@example.org'>"
                f"<error type='{kind}'><{condition}"
                " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
            )
            self.stanza(f"<iq type='result' id='{ping}' from='example.org'/>")
            failure = self.failureResultOf(sent, ChannelError)
            self.assertIs(failure.type, expected, condition)
            self.assertIn(condition, str(failure.value))

    def test_no_answer_or_connection_lost(self) -> None:
        """
        No answer within the accept timeout, or the connection lost before
        it, fail with ChannelError (the outbox tries again); after the
        loss, send fails at once.
        """
        sent = self.channel.send("dave@example.org", "hi", "")
        self.clock.advance(30)
        self.assertIn("did not answer", str(self.failureResultOf(sent, ChannelError).value))
        sent = self.channel.send("dave@example.org", "hi", "")
        self.stream.connectionLost(Failure(ConnectionDone()))
        self.assertIn("ended", str(self.failureResultOf(sent, ChannelError).value))
        self.assertFalse(self.channel.connected)
        self.failureResultOf(self.channel.send("dave@example.org", "hi", ""), ChannelError)

    def test_what_reaches_the_rules(self) -> None:
        """
        Only chat (or normal) messages with a body from a person's Jabber
        ID reach the rules, as a bare lower-cased ID; the server's own
        messages, our echoes, bad addresses and bodiless ones do not.
        """
        self.channel.listen(self.received)
        self.assertIn("<presence", self.written())
        for xml in [
            "<message type='chat'><body>no sender</body></message>",
            "<message type='chat' from='example.org'><body>from the server</body></message>",
            "<message type='chat' from='@@@'><body>bad sender</body></message>",
            "<message type='chat' from='Updates@example.org/other'><body>echo</body></message>",
            "<message type='chat' from='dave@example.org/x'><body/></message>",
            "<message type='chat' from='dave@example.org/x'><body xmlns='urn:odd'>ns</body>"
            "</message>",
            "<message type='headline' from='dave@example.org'><body>news</body></message>",
            "<message type='chat' from='Dave@Example.org/Phone'><body> ON bob </body></message>",
        ]:
            self.stanza(xml)
        self.assertEqual(self.received.messages, [("im", "dave@example.org", "ON bob")])

    def test_rules_failing(self) -> None:
        """
        A message the rules fail to take is logged, its sender is told to
        send it again (XMPP never brings it again), and the next one still
        goes in.
        """
        calls: list[str] = []

        async def flaky(kind: str, address: str, text: str) -> None:
            calls.append(text)
            if text == "first":
                raise RuntimeError("database down")

        self.channel.listen(flaky)
        self.stanza("<message type='chat' from='dave@example.org'><body>first</body></message>")
        told = self.written()
        self.assertIn("to='dave@example.org'", told)
        self.assertIn("Send it again in a minute.", told)
        self.stanza("<message type='chat' from='dave@example.org'><body>second</body></message>")
        self.assertEqual(calls, ["first", "second"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_keepalive(self) -> None:
        """
        An idle connection is pinged; a server that stops answering is
        dropped (and ClientService connects again).
        """
        self.clock.advance(60)
        self.assertIn("urn:xmpp:ping", self.written())
        self.clock.advance(30)
        self.assertTrue(self.transport.disconnecting)
        self.assertIn("stopped answering", self.channel.last_error)

    def test_backoff_counts_sessions_not_connections(self) -> None:
        """
        Connections that open but never reach a session (a refused
        password) make the delay before the next attempt grow, though
        each TCP connection succeeded.
        """
        channel = XMPPChannel(self.clock, "updates@example.org", "pw",
                              retry_policy=lambda attempt: float(attempt))
        delays = []
        for _ in range(3):
            stream = channel._factory.buildProtocol(None)
            stream.makeConnection(StringTransport())
            stream.dispatch(Failure(RuntimeError("refused")), xmlstream.INIT_FAILED_EVENT)
            stream.connectionLost(Failure(ConnectionDone()))
            delays.append(channel._retry_delay(1))
        self.assertEqual(delays, [1.0, 2.0, 3.0])
        self.assertIn("refused", channel.last_error)
