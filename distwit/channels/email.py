"""
The e-mail channel: hands each message to an SMTP server (the operator's
relay: their own Postfix, or a provider's submission port) with Twisted's
mail client.

The connection is secured as the operator says (``[email]`` settings):
``smtps://`` is TLS from the first byte; ``smtp://`` uses STARTTLS, which
is required unless ``starttls`` is ``optional`` or ``off``.  The server's
certificate is checked against the system's authorities (or
``smtp_ca_file``'s) and its host name.  AUTH is used when the URL has a
user and password.

What the SMTP server answers decides what the outbox does next: a
recipient refused for good (5xx at ``RCPT``) is :class:`AddressRefused`;
a connection that fails, a 4xx answer or a server that does not answer in
time is :class:`ChannelError` (try again later).

An unsubscribe link given with a message (``send``'s ``unsubscribe``, which
the outbox keeps beside the text) becomes its ``List-Unsubscribe`` header
(RFC 2369).  Never from the text: a post quoted in a mail could name any
link.
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.mail.smtp import ESMTPSenderFactory, SMTPClientError, SMTPDeliveryError
from twisted.python.failure import Failure
from zope.interface import implementer

from distwit.channels.interfaces import AddressRefused, ChannelError, ChannelParts, IChannel
from distwit.config import SMTP_TIMEOUT, Settings
from distwit.s2s.client import trust_root_from

#: The ports of submission with STARTTLS and of TLS from the start.
SUBMISSION_PORT = 587
SUBMISSIONS_PORT = 465


@dataclass(frozen=True)
class SMTPServer:
    """
    Where and how to hand mail over (from ``smtp_url`` and ``starttls``).

    :ivar implicit_tls: ``smtps://``: TLS from the first byte.
    :ivar starttls: ``required``, ``optional`` or ``off`` (``smtp://`` only).
    """

    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "required"
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str, starttls: str = "required") -> SMTPServer:
    """
    The server of an ``smtp://[user:password@]host[:port]`` or
    ``smtps://...`` URL (the settings checked its shape).
    """
    parts = urlsplit(url)
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (SUBMISSIONS_PORT if implicit_tls else SUBMISSION_PORT)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SMTPServer(
        host=parts.hostname or "",
        port=port,
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=username,
        password=password,
    )


def envelope_address(address: str) -> bytes:
    """
    The address as the SMTP envelope carries it: ASCII, the domain in
    IDNA.

    :raise AddressRefused: it is not an address this channel can send to.
    """
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c in address for c in " <>\r\n\t,"):
        raise AddressRefused(f"{address!r} is not an e-mail address")
    try:
        local_bytes = local.encode("ascii")
        domain_bytes = domain.encode("idna")
    except UnicodeError:
        raise AddressRefused(
            f"{address!r} cannot be sent to (this server sends to ASCII mailbox names only)"
        ) from None
    return local_bytes + b"@" + domain_bytes


def compose(
    sender: Address,
    address: str,
    text: str,
    subject: str,
    now: float,
    unsubscribe: str = "",
) -> bytes:
    """
    The whole message: UTF-8 plain text (quoted-printable, so that any
    relay takes it), the subject encoded as RFC 2047 wants, ``Date``,
    ``Message-ID``, ``From``, ``To``, and ``List-Unsubscribe`` when there
    is a link.  Lines end with ``\\n`` (the SMTP client sends ``\\r\\n``).
    """
    message = EmailMessage(policy=default_policy)
    message["From"] = sender
    message["To"] = address
    message["Subject"] = subject
    message["Date"] = format_datetime(
        datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    )
    message["Message-ID"] = make_msgid(domain=sender.domain or None)
    # RFC 3834: written by a program; vacation responders leave it alone.
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=default_policy.clone(linesep="\n"))


def sender_from(setting: str, public_url: str) -> Address:
    """
    The ``From`` of the settings (``distwit <noreply@example.org>``), or
    ``noreply@`` the public URL's host.
    """
    if setting:
        name, address = parseaddr(setting)
    else:
        name, address = "", f"noreply@{urlsplit(public_url).hostname or 'localhost'}"
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


@implementer(IChannel)
class SMTPChannel:
    """
    Sends each message in a connection of its own (mail here is a few a
    minute: verification codes, notifications chosen by the user, resets).

    :param reactor: an ``IReactorTCP``, ``IReactorSSL`` and ``IReactorTime``.
    :param server: where to hand the mail over, and how.
    :param sender: the ``From`` (its address is the envelope sender too).
    :param trust_root: the authorities the server's certificate must come
        from (``None``: the system's).
    :param timeout: seconds to connect, and between two of the server's
        answers.
    """

    kind = "email"
    name = "smtp"
    log = Logger()

    def __init__(
        self,
        reactor: Any,
        server: SMTPServer,
        sender: Address,
        trust_root: Any = None,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        self._reactor = reactor
        self.server = server
        self.sender = sender
        self._trust_root = trust_root
        self._timeout = timeout

    def _tls_options(self) -> Any:
        if self._trust_root is None:
            return optionsForClientTLS(self.server.host)
        return optionsForClientTLS(self.server.host, trustRoot=self._trust_root)

    def send(
        self, address: str, text: str, subject: str, unsubscribe: str = ""
    ) -> Deferred[None]:
        """
        Hand one message to the SMTP server (:meth:`IChannel.send`).

        :param unsubscribe: the link of ``List-Unsubscribe``, if any (an
            e-mail-only addition to ``IChannel.send``; the outbox's sender
            gives it to channels whose ``send`` takes it).
        """
        try:
            recipient = envelope_address(address)
        except AddressRefused as refused:
            return fail(refused)
        data = compose(
            self.sender, address, text, subject, self._reactor.seconds(), unsubscribe
        )
        server = self.server
        use_tls = server.implicit_tls or server.starttls != "off"
        tls = self._tls_options() if use_tls else None
        connector: list[Any] = []

        def cancel(d: Deferred[Any]) -> None:
            # The factory must not answer the Deferred again when the
            # connection it was cancelled with is lost.
            factory.sendFinished = True
            for each in connector:
                each.disconnect()

        result: Deferred[Any] = Deferred(cancel)
        factory = ESMTPSenderFactory(
            server.username.encode() if server.username else None,
            server.password.encode() if server.password is not None else None,
            self.sender.addr_spec,
            [recipient],
            io.BytesIO(data),
            result,
            retries=0,
            timeout=self._timeout,
            contextFactory=None if server.implicit_tls else tls,
            heloFallback=not server.username and server.starttls != "required",
            requireAuthentication=bool(server.username),
            requireTransportSecurity=server.starttls == "required" and not server.implicit_tls,
        )
        # The greeting names this server (the sender's domain), not the
        # machine's name.
        factory.domain = (self.sender.domain or "localhost").encode("idna")
        if server.implicit_tls:
            connector.append(
                self._reactor.connectSSL(
                    server.host, server.port, factory, tls, timeout=self._timeout
                )
            )
        else:
            connector.append(
                self._reactor.connectTCP(server.host, server.port, factory, timeout=self._timeout)
            )

        def sent(_: object) -> None:
            self.log.debug("smtp: sent {subject!r} to {address}", subject=subject,
                           address=address)

        def failed(failure: Failure) -> Failure:
            if failure.check(CancelledError):
                return failure
            error = self._channel_error(address, failure)
            self.log.info("smtp: {address} not sent: {error}", address=address, error=error)
            return Failure(error)

        return result.addCallbacks(sent, failed)

    def _channel_error(self, address: str, failure: Failure) -> ChannelError:
        """
        What the outbox should do about a failed send, in a sentence.
        """
        server = self.server
        error = failure.value
        if isinstance(error, SMTPDeliveryError):
            # (address, code, answer) of each RCPT.
            addresses: Any = error.addresses or []
            refused = [(code, answer) for _, code, answer in addresses if code >= 400]
            answer = _words(error.resp)
            if refused:
                code, text = refused[0]
                if 500 <= code < 600:
                    return AddressRefused(
                        f"{server} refused {address}: {code} {_words(text)}"
                    )
                return ChannelError(f"{server} deferred {address}: {code} {_words(text)}")
            if addresses and 500 <= error.code < 600:
                # Every recipient taken, the message itself refused for good.
                return AddressRefused(
                    f"{server} refused the message to {address}: {error.code} {answer}"
                )
            return ChannelError(f"{server} did not take the message: {error.code} {answer}")
        if isinstance(error, SMTPClientError):
            return ChannelError(f"{server}: {_words(error.resp)}")
        return ChannelError(f"{server}: {error}")


def _words(answer: bytes | str | None) -> str:
    if answer is None:
        return ""
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return " ".join(answer.split())


def from_settings(settings: Settings, reactor: Any) -> ChannelParts | None:
    """
    The e-mail channel of the ``[email]`` settings, or ``None`` when no
    ``smtp_url`` is set.

    :raise SystemExit: ``smtp_ca_file`` cannot be read or holds no
        certificate (one sentence, as every start-up error: the server
        does not start).
    """
    if not settings.smtp_url:
        return None
    trust_root = None
    if settings.smtp_ca_file:
        try:
            trust_root = trust_root_from(settings.smtp_ca_file)
        except OSError as e:
            raise SystemExit(
                f"distwit: cannot read the SMTP CA file {settings.smtp_ca_file}: {e.strerror}"
            ) from None
        except ValueError as e:
            raise SystemExit(
                f"distwit: cannot use the SMTP CA file {settings.smtp_ca_file}: {e}"
            ) from None
    channel = SMTPChannel(
        reactor,
        parse_smtp_url(settings.smtp_url, settings.starttls),
        sender_from(settings.email_from, settings.public_url),
        trust_root=trust_root,
        timeout=settings.smtp_timeout,
    )
    return ChannelParts(channel=channel)


__all__ = [
    "SMTPChannel",
    "SMTPServer",
    "compose",
    "envelope_address",
    "from_settings",
    "parse_smtp_url",
    "sender_from",
]
