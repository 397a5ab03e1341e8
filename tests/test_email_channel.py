"""
The e-mail channel against a real SMTP server (aiosmtpd in a process of
its own, :mod:`tests.smtp_capture`): what arrives, over which security,
and what the outbox is told when the server refuses or is away.
"""

from __future__ import annotations

import os
from email.headerregistry import Address
from typing import Any

import trustme
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from distwit.channels.configured import build_channels
from distwit.channels.email import (
    SMTPChannel,
    SMTPServer,
    compose,
    envelope_address,
    from_settings,
    parse_smtp_url,
    sender_from,
)
from distwit.channels.interfaces import AddressRefused, ChannelError, IChannel
from distwit.config import ConfigError, resolve
from distwit.s2s.client import trust_root_from
from tests.processes import free_port
from tests.smtp_capture import SMTPCapture

SENDER = Address(display_name="distwit on s1", username="noreply", domain="s1.example")
TEXT = "Grüße aus Köln: alice mentioned you.\n\n@dave ça va ? ☕\n"
SUBJECT = "alice mentioned you — über alles"


class Certificates:
    """
    A CA made for one test and a certificate for 127.0.0.1 from it, in
    PEM files.
    """

    def __init__(self, folder: str) -> None:
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = os.path.join(folder, "ca.pem")
        self.certificate = os.path.join(folder, "cert.pem")
        self.key = os.path.join(folder, "key.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        issued.cert_chain_pems[0].write_to_path(self.certificate)
        issued.private_key_pem.write_to_path(self.key)


class SMTPChannelTests(TestCase):
    """
    Messages handed to a real SMTP server.
    """

    timeout = 120

    def capture(self, **options: Any) -> SMTPCapture:
        folder = self.mktemp()
        server = SMTPCapture(folder, **options)
        self.addCleanup(server.stop)
        return server

    def certificates(self) -> Certificates:
        folder = self.mktemp()
        os.makedirs(folder)
        return Certificates(folder)

    def channel(self, port: int, *, ca_file: str | None = None, timeout: float = 30.0,
                **server: Any) -> SMTPChannel:
        return SMTPChannel(
            reactor,
            SMTPServer("127.0.0.1", port, **server),
            SENDER,
            trust_root=trust_root_from(ca_file) if ca_file else None,
            timeout=timeout,
        )

    async def test_message_arrives_whole(self) -> None:
        """
        Without TLS (``starttls = off``) the message arrives with its
        envelope, a UTF-8 body and subject, ``Date``, ``Message-ID``,
        ``From``, ``To``, and ``List-Unsubscribe`` from the link given.
        """
        server = self.capture()
        channel = self.channel(server.port, starttls="off")
        verifyObject(IChannel, channel)
        text = TEXT + "\nTo get no more: https://s1.example/account/unsubscribe/tok3n\n"
        await channel.send(
            "Dave@Example.org", text, SUBJECT,
            unsubscribe="https://s1.example/account/unsubscribe/tok3n",
        )
        [got] = server.messages()
        self.assertEqual(got.mail_from, "noreply@s1.example")
        self.assertEqual(got.rcpt_tos, ["Dave@Example.org"])
        self.assertFalse(got.tls)
        message = got.message
        self.assertEqual(message["Subject"], SUBJECT)
        self.assertEqual(message["From"].addresses[0].addr_spec, "noreply@s1.example")
        self.assertEqual(message["From"].addresses[0].display_name, "distwit on s1")
        self.assertEqual(message["To"], "Dave@Example.org")
        self.assertIsNotNone(message["Date"].datetime)
        self.assertTrue(message["Message-ID"].endswith("@s1.example>"))
        self.assertEqual(
            message["List-Unsubscribe"], "<https://s1.example/account/unsubscribe/tok3n>"
        )
        self.assertEqual(message.get_content_type(), "text/plain")
        self.assertEqual(message.get_content_charset(), "utf-8")
        self.assertEqual(got.body, text)
        # The raw message is 7-bit: any relay takes it.
        got.raw.decode("ascii")

    async def test_starttls_and_auth(self) -> None:
        """
        With STARTTLS required and a user in the URL, the message goes over
        TLS to a server whose certificate comes from the CA the channel
        trusts, after AUTH.
        """
        certificates = self.certificates()
        server = self.capture(
            certificate=(certificates.certificate, certificates.key),
            require_starttls=True,
            credentials=("mailer", "s3cret pass"),
        )
        channel = self.channel(
            server.port, ca_file=certificates.ca_file, starttls="required",
            username="mailer", password="s3cret pass",
        )
        await channel.send("dave@example.org", TEXT, SUBJECT)
        [got] = server.messages()
        self.assertTrue(got.tls)
        self.assertEqual(got.authenticated_as, "mailer")
        self.assertEqual(got.body, TEXT)

    async def test_implicit_tls(self) -> None:
        """
        ``smtps://``: TLS from the first byte.
        """
        certificates = self.certificates()
        server = self.capture(
            certificate=(certificates.certificate, certificates.key), implicit_tls=True
        )
        channel = self.channel(server.port, ca_file=certificates.ca_file, implicit_tls=True)
        await channel.send("dave@example.org", TEXT, SUBJECT)
        [got] = server.messages()
        self.assertTrue(got.tls)

    async def test_starttls_required_but_not_offered(self) -> None:
        """
        A server that offers no STARTTLS gets nothing when it is required:
        :class:`ChannelError`, and no message arrives.
        """
        server = self.capture()
        channel = self.channel(server.port, starttls="required")
        with self.assertRaises(ChannelError) as caught:
            await channel.send("dave@example.org", TEXT, SUBJECT)
        self.assertNotIsInstance(caught.exception, AddressRefused)
        self.assertIn("TLS", str(caught.exception))
        self.assertEqual(server.messages(), [])

    async def test_untrusted_certificate(self) -> None:
        """
        A certificate from an authority the channel does not trust stops
        the message (:class:`ChannelError`), even with STARTTLS optional.
        """
        certificates = self.certificates()
        other = self.certificates()
        server = self.capture(certificate=(certificates.certificate, certificates.key))
        channel = self.channel(server.port, ca_file=other.ca_file, starttls="optional")
        with self.assertRaises(ChannelError) as caught:
            await channel.send("dave@example.org", TEXT, SUBJECT)
        self.assertIn("certificate verify failed", str(caught.exception))
        self.assertEqual(server.messages(), [])

    async def test_starttls_optional_uses_it(self) -> None:
        """
        With STARTTLS optional, a server that offers it gets the message
        over TLS.
        """
        certificates = self.certificates()
        server = self.capture(certificate=(certificates.certificate, certificates.key))
        channel = self.channel(server.port, ca_file=certificates.ca_file, starttls="optional")
        await channel.send("dave@example.org", TEXT, SUBJECT)
        [got] = server.messages()
        self.assertTrue(got.tls)

    async def test_server_down(self) -> None:
        """
        Nothing listening: :class:`ChannelError` (try again), not
        :class:`AddressRefused`.
        """
        channel = self.channel(free_port(), starttls="off")
        with self.assertRaises(ChannelError) as caught:
            await channel.send("dave@example.org", TEXT, SUBJECT)
        self.assertNotIsInstance(caught.exception, AddressRefused)

    async def test_refused_recipient(self) -> None:
        """
        A recipient the server refuses for good (550 at RCPT) is
        :class:`AddressRefused`, with the server's answer in the sentence.
        """
        server = self.capture(refuse=("nobody@example.org",))
        channel = self.channel(server.port, starttls="off")
        with self.assertRaises(AddressRefused) as caught:
            await channel.send("nobody@example.org", TEXT, SUBJECT)
        self.assertIn("550", str(caught.exception))
        self.assertIn("nobody@example.org", str(caught.exception))
        self.assertEqual(server.messages(), [])

    async def test_deferred_recipient(self) -> None:
        """
        A recipient the server defers (451 at RCPT) is a
        :class:`ChannelError` to try again, not a refusal.
        """
        server = self.capture(defer=("busy@example.org",))
        channel = self.channel(server.port, starttls="off")
        with self.assertRaises(ChannelError) as caught:
            await channel.send("busy@example.org", TEXT, SUBJECT)
        self.assertNotIsInstance(caught.exception, AddressRefused)
        self.assertIn("451", str(caught.exception))

    async def test_silent_server_times_out(self) -> None:
        """
        A server that takes the connection and never answers: after the
        timeout, :class:`ChannelError`.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        channel = self.channel(port.getHost().port, starttls="off", timeout=0.5)
        with self.assertRaises(ChannelError) as caught:
            await channel.send("dave@example.org", TEXT, SUBJECT)
        self.assertIn("Timeout", str(caught.exception))


class ComposeTests(SynchronousTestCase):
    """
    The message and the envelope, without a server.
    """

    def test_unsubscribe_only_as_given(self) -> None:
        """
        A link given by the caller is the ``List-Unsubscribe``; without one
        there is none, whatever links the text has.
        """
        given = compose(SENDER, "d@example.org", "hi", "s", 0, "https://x.example/u/1")
        self.assertIn(b"List-Unsubscribe: <https://x.example/u/1>", given)
        text = "Unsubscribe: https://evil.example/\nList-Unsubscribe: <https://evil.example/>\n"
        head = compose(SENDER, "d@example.org", text, "s", 0).partition(b"\n\n")[0]
        self.assertNotIn(b"List-Unsubscribe", head)
        self.assertIn(b"From: ", head)

    def test_envelope_address(self) -> None:
        """
        Domains go in IDNA; an address that is none, or whose mailbox name
        is not ASCII, is refused for good.
        """
        self.assertEqual(envelope_address("dave@bücher.example"), b"dave@xn--bcher-kva.example")
        for bad in ("dave", "@example.org", "a b@example.org", "jürgen@example.org",
                    "a@b\r\nRCPT TO:<x@y>"):
            with self.assertRaises(AddressRefused):
                envelope_address(bad)

    def test_refused_before_connecting(self) -> None:
        """
        :meth:`SMTPChannel.send` refuses such an address without a
        connection.
        """
        channel = SMTPChannel(reactor, SMTPServer("127.0.0.1", 1), SENDER)
        self.failureResultOf(channel.send("not an address", "t", "s"), AddressRefused)


class SettingsTests(SynchronousTestCase):
    """
    The ``[email]`` settings and the channel they make.
    """

    def settings(self, **values: str) -> Any:
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write("[email]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
        return resolve({}, path)

    def test_not_configured(self) -> None:
        """
        Without ``smtp_url``, no e-mail channel.
        """
        settings = self.settings()
        self.assertIsNone(from_settings(settings, reactor))
        self.assertNotIn("email", build_channels(settings, reactor))

    def test_configured(self) -> None:
        """
        ``smtp_url``, ``starttls`` and ``from`` make the channel, found by
        :func:`build_channels` as the ``email`` kind.
        """
        settings = self.settings(
            smtp_url="smtp://mailer:p%40ss@mail.example.org", starttls="optional",
            **{"from": "s1 <robot@s1.example>"},
        )
        channel = build_channels(settings, reactor)["email"].channel
        self.assertEqual(
            channel.server,
            SMTPServer("mail.example.org", 587, False, "optional", "mailer", "p@ss"),
        )
        self.assertEqual(channel.sender.addr_spec, "robot@s1.example")
        self.assertEqual(channel.sender.display_name, "s1")

    def test_smtps_and_default_sender(self) -> None:
        """
        ``smtps://`` is TLS from the start on port 465; without ``from`` the
        sender is ``noreply@`` the public URL's host.
        """
        self.assertEqual(
            parse_smtp_url("smtps://mail.example.org"),
            SMTPServer("mail.example.org", 465, True),
        )
        self.assertEqual(
            sender_from("", "https://s1.example:8443").addr_spec, "noreply@s1.example"
        )

    def test_bad_ca_file(self) -> None:
        """
        An SMTP CA file that cannot be read, or holds no certificate, stops
        the start with one sentence naming it.
        """
        missing = os.path.abspath(self.mktemp())
        empty = os.path.abspath(self.mktemp())
        with open(empty, "w") as f:
            f.write("nothing here\n")
        for path, why in ((missing, "cannot read"), (empty, "no PEM certificate")):
            settings = self.settings(smtp_url="smtp://mail.example.org", smtp_ca_file=path)
            with self.assertRaises(SystemExit) as caught:
                from_settings(settings, reactor)
            self.assertIn(why, str(caught.exception))
            self.assertIn(path, str(caught.exception))

    def test_bad_settings(self) -> None:
        """
        A wrong URL, mode or sender is an error that names the setting.
        """
        for key, value in (
            ("smtp_url", "http://mail.example.org"),
            ("smtp_url", "smtp://mail.example.org:x"),
            ("starttls", "maybe"),
            ("from", "nobody"),
            ("password_reset_ttl", "5"),
        ):
            with self.assertRaises(ConfigError) as caught:
                self.settings(**{key: value})
            self.assertIn(key, str(caught.exception))
