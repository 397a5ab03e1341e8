"""
Instant messages over XMPP (Jabber): the server's own account (say
``updates@example.org``) connected to its XMPP server as a client, with
Twisted Words.

It sends each message as a ``<message type='chat'>`` to the user's bare
Jabber ID, and brings every chat message people send it to the server's
rules (:meth:`XMPPChannel.listen`).  Users add it to their roster: it
accepts every subscription request.

XMPP has no receipt for a message the server took, so :meth:`send` follows
each message with a ping (XEP-0199) to the server: the server handles a
client's stanzas in order, so its answer to the ping (a result or an error,
either will do) says the message was routed or stored.  An error the server
bounces for the message itself (no such user, a malformed address) comes
before that answer, and gives the message up (:class:`AddressRefused`).

The connection is kept up by a :class:`ClientService`: after a failure
(the server down, a refused password, a certificate that does not check)
it tries again after a delay that grows to :data:`MAX_RETRY_DELAY`.  STARTTLS
is required, so the password never crosses the network in clear; the
certificate is checked for the domain of the Jabber ID unless the operator
says ``xmpp_tls_verify = false``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet import ssl
from twisted.internet.defer import Deferred, TimeoutError, ensureDeferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import client, error, sasl, xmlstream
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish
from zope.interface import implementer

from distwit.channels.interfaces import (
    AddressRefused,
    ChannelError,
    ChannelParts,
    IInboundChannel,
    Inbound,
)
from distwit.config import XMPP_PORT, ConfigError, Settings

NS_CLIENT = "jabber:client"
NS_PING = "urn:xmpp:ping"

#: Seconds the server has to answer the ping that follows a message.
ACCEPT_TIMEOUT = 30.0
#: Seconds a connection has to get from TCP to an authenticated session.
SESSION_TIMEOUT = 60.0
#: Seconds between pings on an idle connection, so that a connection the
#: network dropped without a word is noticed (and replaced).
KEEPALIVE = 60.0
#: The longest wait between two connection attempts.
MAX_RETRY_DELAY = 120.0

#: The errors a server bounces a message with that will never pass: the
#: message is given up.  Any other (``resource-constraint``,
#: ``policy-violation`` for a rate limit, ``remote-server-not-found`` while
#: another server is down, ``internal-server-error``...), or any error of
#: type ``wait``, is tried again later.
REFUSING_CONDITIONS = frozenset({
    "bad-request",
    "forbidden",
    "gone",
    "item-not-found",
    "jid-malformed",
    "not-acceptable",
    "not-allowed",
    "redirect",
    "registration-required",
    "service-unavailable",
    "subscription-required",
})

# Characters XML 1.0 cannot carry: a post holding one would make the server
# close the stream, so they are taken out of what is sent.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

#: Message types a person writes (RFC 6121: a missing type is ``normal``).
_PERSON_TYPES = ("chat", "normal")


def _jid(text: str) -> JID:
    # Not internJID: its cache keeps every address it ever saw.
    if not text:
        raise InvalidFormat("empty")
    return JID(text)


def bare_jid(address: str) -> str:
    """
    ``address`` written as the store keeps IM addresses: a bare Jabber ID,
    lower-cased (``dave@example.org``).

    :raise ValueError: it is not a Jabber ID with a local part (a resource
        is dropped).
    """
    try:
        parsed = _jid(address.strip())
    except InvalidFormat as e:
        raise ValueError(f"{address!r} is not a Jabber ID: {e}") from None
    if not parsed.user:
        raise ValueError(f"{address!r} is not a person's Jabber ID (name@domain)")
    return str(parsed.userhost()).lower()


#: The answer to a message the server's rules could not take (a database
#: outage): XMPP does not bring a message again, so the person must.
NOT_TAKEN = (
    "Sorry, that did not get through (a problem on this server). Send it again in a minute."
)


@implementer(IInboundChannel)
class XMPPChannel(Service):
    """
    The server's XMPP account, connected, as an :class:`IInboundChannel`
    and a service (start it to connect).

    :param reactor: the reactor (TCP, TLS and the clock).
    :param jid: the account's bare Jabber ID.
    :param password: its password.
    :param host: the server to connect to (default: the JID's domain).
    :param port: its client port.
    :param tls_verify: check the server's certificate for the JID's domain.
    :param trust_root: the authorities to check it against (default: the
        system's).
    :param retry_policy: seconds to wait before attempt n (n from 1) after
        failures in a row.
    """

    kind = "im"
    name = "xmpp"
    log = Logger()

    def __init__(
        self,
        reactor: Any,
        jid: str,
        password: str,
        *,
        host: str = "",
        port: int = XMPP_PORT,
        tls_verify: bool = True,
        trust_root: Any = None,
        retry_policy: Callable[[int], float] | None = None,
        accept_timeout: float = ACCEPT_TIMEOUT,
        session_timeout: float = SESSION_TIMEOUT,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self._reactor = reactor
        self.jid = _jid(jid)
        self._password = password
        self._host = host or self.jid.host
        self._port = port
        self._accept_timeout = accept_timeout
        self._session_timeout = session_timeout
        self._keepalive = keepalive
        self._policy = retry_policy or backoffPolicy(maxDelay=MAX_RETRY_DELAY)
        tls: Any
        if tls_verify:
            tls = ssl.optionsForClientTLS(self.jid.host, trustRoot=trust_root)
        else:
            tls = ssl.CertificateOptions(verify=False)
        self._factory = client.XMPPClientFactory(
            JID(tuple=(self.jid.user, self.jid.host, None)), password, tls
        )
        self._factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._connected)
        self._connection: ClientService | None = None
        # The stream with a session, or None: what send() writes to.
        self._stream: xmlstream.XmlStream | None = None
        self._inbound: Inbound | None = None
        self._inbound_tail: Deferred[None] = succeed(None)
        # Messages sent and not yet known taken, by stanza id.
        self._unconfirmed: dict[str, Deferred[None]] = {}
        # Connections in a row that ended without a session: the backoff's
        # count (ClientService's own restarts at each TCP connection made).
        self._failures = 0
        self._keepalive_call: Any = None
        #: Why the last connection attempt failed (for logs and tests).
        self.last_error = ""

    # -- IChannel -----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """
        Whether a session is up, so that :meth:`send` can hand messages on.
        """
        return self._stream is not None

    def send(
        self, address: str, text: str, subject: str = "", unsubscribe: str = ""
    ) -> Deferred[None]:
        """
        Send ``text`` to the bare Jabber ID ``address`` as a chat message.
        """
        try:
            recipient = _jid(address)
        except InvalidFormat:
            return fail(AddressRefused(f"{address!r} is not a Jabber ID"))
        if not recipient.user or recipient.resource:
            return fail(AddressRefused(f"{address!r} is not a bare Jabber ID (name@domain)"))
        stream = self._stream
        if stream is None:
            return fail(ChannelError(
                f"not connected to the XMPP server {self._host}:{self._port}"
                + (f" ({self.last_error})" if self.last_error else "")
            ))
        stanza_id = uuid.uuid4().hex
        message = domish.Element((NS_CLIENT, "message"))
        message["to"] = recipient.userhost()
        message["type"] = "chat"
        message["id"] = stanza_id
        message.addElement("body", content=_NOT_XML.sub("", text))
        taken: Deferred[None] = Deferred()
        self._unconfirmed[stanza_id] = taken
        stream.send(message)
        self._ping(stream).addBoth(self._ping_answered, taken)
        taken.addTimeout(self._accept_timeout, self._reactor)

        def settled(result: Any) -> Any:
            self._unconfirmed.pop(stanza_id, None)
            if isinstance(result, Failure) and result.check(TimeoutError):
                return Failure(ChannelError(
                    f"the XMPP server did not answer in {self._accept_timeout:g} seconds"
                ))
            return result

        return taken.addBoth(settled)

    def _ping_answered(self, result: Any, taken: Deferred[None]) -> None:
        if taken.called:
            return
        if isinstance(result, Failure) and not result.check(error.StanzaError):
            # The connection ended before the answer: the message may or
            # may not have been taken; sent again later.
            taken.errback(ChannelError(
                f"the connection to the XMPP server ended: {result.getErrorMessage()}"
            ))
            return
        taken.callback(None)

    # -- IInboundChannel ----------------------------------------------------

    def listen(self, inbound: Inbound) -> None:
        """
        Hand each chat message received from now on to ``inbound``.  Until
        this is called the account is not *available* (no presence sent),
        so the server keeps what people send it offline.
        """
        self._inbound = inbound
        if self._stream is not None:
            self._send_presence(self._stream)

    # -- the service --------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        endpoint = HostnameEndpoint(self._reactor, self._host, self._port, timeout=30)
        self._connection = ClientService(
            endpoint, self._factory, retryPolicy=self._retry_delay, clock=self._reactor
        )
        self._connection.startService()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        connection, self._connection = self._connection, None
        stopped: Deferred[Any] = (
            connection.stopService() if connection is not None else succeed(None)
        )
        # Then let the messages already received finish their way in.
        stopped.addCallback(lambda _: self._inbound_tail)
        return stopped.addCallback(lambda _: None)

    def _retry_delay(self, attempt: int) -> float:
        return self._policy(max(attempt, self._failures))

    # -- the stream's events --------------------------------------------------

    def _connected(self, stream: xmlstream.XmlStream) -> None:
        # One connection at a time (ClientService): what happens to it is
        # followed with observers of its own.
        opening = self._reactor.callLater(self._session_timeout, self._no_session, stream)
        failed: list[str] = []

        def init_failed(reason: Failure) -> None:
            if reason.check(xmlstream.FeatureNotAdvertized) and not getattr(
                stream.transport, "TLS", False
            ):
                # The first step is STARTTLS, required (client.XMPPAuthenticator).
                reason = Failure(xmlstream.TLSNotSupported())
            failed.append(_describe(reason))
            self._init_failed(stream, failed[-1])

        def ended(reason: Failure) -> None:
            self._disconnected(stream, opening, failed[-1] if failed else _describe(reason))

        stream.addOnetimeObserver(
            xmlstream.STREAM_AUTHD_EVENT, lambda _: self._authenticated(stream, opening)
        )
        stream.addOnetimeObserver(xmlstream.INIT_FAILED_EVENT, init_failed)
        stream.addOnetimeObserver(xmlstream.STREAM_END_EVENT, ended)

    def _no_session(self, stream: xmlstream.XmlStream) -> None:
        self.last_error = f"no session after {self._session_timeout:g} seconds"
        self.log.warn("XMPP: {error}; connecting again", error=self.last_error)
        _close(stream, abort=True)

    def _authenticated(self, stream: xmlstream.XmlStream, opening: Any) -> None:
        if opening.active():
            opening.cancel()
        self._failures = 0
        self.last_error = ""
        stream.addObserver("/message", self._guarded(self._on_message, stream))
        stream.addObserver("/presence", self._guarded(self._on_presence, stream))
        stream.addObserver("/iq", self._guarded(self._on_iq, stream), priority=-1)
        self._stream = stream
        self.log.info(
            "XMPP: connected as {jid} to {host}:{port}",
            jid=stream.authenticator.jid.full(), host=self._host, port=self._port,
        )
        if self._inbound is not None:
            self._send_presence(stream)
        self._keepalive_call = self._reactor.callLater(
            self._keepalive, self._keep_alive, stream
        )

    def _init_failed(self, stream: xmlstream.XmlStream, why: str) -> None:
        self.last_error = why
        self.log.warn(
            "XMPP: could not open a session as {jid} on {host}:{port}: {error}",
            jid=self.jid.full(), host=self._host, port=self._port, error=self.last_error,
        )
        # The authenticator leaves the stream open: end it, and ClientService
        # tries again after its delay.
        _close(stream)

    def _disconnected(self, stream: xmlstream.XmlStream, opening: Any, why: str) -> None:
        if opening.active():
            opening.cancel()
        if stream is not self._stream:
            # A connection that ended before its session.
            self._failures += 1
            if opening.called and self.last_error.startswith("no session"):
                return
            self.last_error = f"the connection ended before a session: {why}"
            self.log.warn("XMPP: {error}", error=self.last_error)
            return
        self._stream = None
        if self._keepalive_call is not None and self._keepalive_call.active():
            self._keepalive_call.cancel()
        self._keepalive_call = None
        self.log.info("XMPP: disconnected from {host}:{port}", host=self._host, port=self._port)

    def _keep_alive(self, stream: xmlstream.XmlStream) -> None:
        self._keepalive_call = None
        if stream is not self._stream:
            return
        answered = self._ping(stream)
        answered.addTimeout(self._accept_timeout, self._reactor)

        def done(result: Any) -> None:
            if stream is not self._stream:
                return
            if isinstance(result, Failure) and result.check(TimeoutError):
                self.last_error = "the server stopped answering pings"
                self.log.warn("XMPP: {error}; connecting again", error=self.last_error)
                _close(stream, abort=True)
                return
            self._keepalive_call = self._reactor.callLater(
                self._keepalive, self._keep_alive, stream
            )

        answered.addBoth(done)

    def _ping(self, stream: xmlstream.XmlStream) -> Deferred[Any]:
        ping = xmlstream.IQ(stream, "get")
        ping.addElement((NS_PING, "ping"))
        try:
            return ping.send(self.jid.host)
        except Exception:  # the transport is gone
            return fail(ConnectionLost())

    def _send_presence(self, stream: xmlstream.XmlStream) -> None:
        stream.send(domish.Element((NS_CLIENT, "presence")))

    # -- stanzas --------------------------------------------------------------

    def _guarded(
        self, handler: Callable[[xmlstream.XmlStream, domish.Element], None],
        stream: xmlstream.XmlStream,
    ) -> Callable[[domish.Element], None]:
        def observe(element: domish.Element) -> None:
            try:
                handler(stream, element)
            except Exception:
                self.log.failure("XMPP: a stanza could not be handled: {stanza}",
                                 stanza=_short(element))
        return observe

    def _on_message(self, stream: xmlstream.XmlStream, message: domish.Element) -> None:
        kind = message.getAttribute("type", "normal")
        if kind == "error":
            self._bounced(message)
            return
        if kind not in _PERSON_TYPES:
            return  # groupchat, headline: not a person writing to us
        body = _body(message)
        if body is None or not body.strip():
            return  # typing notifications, receipts, empty messages
        try:
            sender = bare_jid(message.getAttribute("from", ""))
        except ValueError:
            return  # from the server itself, a component, or nobody
        if sender == self.jid.userhost().lower():
            return  # our own echo (carbons, another resource)
        if self._inbound is None:
            self.log.warn("XMPP: a message from {sender} before listen(); dropped",
                          sender=sender)
            return
        self._receive(sender, body.strip())

    def _receive(self, sender: str, text: str) -> None:
        inbound = self._inbound
        assert inbound is not None

        def deliver(_: Any) -> Deferred[Any]:
            return ensureDeferred(inbound(self.kind, sender, text))  # type: ignore[arg-type]

        def failed(reason: Failure) -> None:
            self.log.failure("XMPP: the message from {sender} was not taken",
                             reason, sender=sender)
            # XMPP never brings it again: say so, straight back (the
            # outbox may be what failed), so that the person sends it again.
            self.send(sender, NOT_TAKEN).addErrback(lambda _: None)

        # One after the other, so that `FOLLOW bob` then `D bob hi` keep
        # their order.
        self._inbound_tail = self._inbound_tail.addCallback(deliver).addErrback(failed)

    def _bounced(self, message: domish.Element) -> None:
        waiting = self._unconfirmed.get(message.getAttribute("id", ""))
        problem = error.exceptionFromStanza(message)
        condition = getattr(problem, "condition", "undefined-condition")
        if waiting is None or waiting.called:
            self.log.info("XMPP: a message to {to} bounced later: {condition}",
                          to=message.getAttribute("from", "?"), condition=condition)
            return
        sentence = f"the XMPP server refused the message: {condition}"
        if problem.text:
            sentence += f" ({problem.text})"
        if condition in REFUSING_CONDITIONS and getattr(problem, "type", "") != "wait":
            waiting.errback(AddressRefused(sentence))
        else:
            waiting.errback(ChannelError(sentence))

    def _on_presence(self, stream: xmlstream.XmlStream, presence: domish.Element) -> None:
        if presence.getAttribute("type") != "subscribe":
            return
        try:
            sender = bare_jid(presence.getAttribute("from", ""))
        except ValueError:
            return
        answer = domish.Element((NS_CLIENT, "presence"))
        answer["to"] = sender
        answer["type"] = "subscribed"
        stream.send(answer)
        self.log.info("XMPP: {sender} added us to their roster", sender=sender)

    def _on_iq(self, stream: xmlstream.XmlStream, iq: domish.Element) -> None:
        if getattr(iq, "handled", False) or iq.getAttribute("type") not in ("get", "set"):
            return
        iq.handled = True  # type: ignore[attr-defined]
        if iq.getAttribute("type") == "get" and any(
            child.uri == NS_PING and child.name == "ping" for child in iq.elements()
        ):
            stream.send(xmlstream.toResponse(iq, "result"))
            return
        # RFC 6120 8.2.3: every get or set is answered.
        stream.send(error.StanzaError("service-unavailable").toResponse(iq))


def _close(stream: xmlstream.XmlStream, abort: bool = False) -> None:
    transport: Any = stream.transport
    if transport is None:
        return
    if abort:
        transport.abortConnection()
    else:
        transport.loseConnection()


def _body(message: domish.Element) -> str | None:
    for child in message.elements():
        if child.name == "body" and child.uri in (NS_CLIENT, None, ""):
            return str(child)
    return None


def _short(element: domish.Element) -> str:
    try:
        return str(element.toXml())[:200]
    except Exception:
        return "?"


def _describe(reason: Failure) -> str:
    if reason.check(sasl.SASLNoAcceptableMechanism):
        return "the server offers no sign-in Twisted speaks (PLAIN after STARTTLS)"
    if reason.check(sasl.SASLAuthError):
        return f"the server refused the password ({reason.value})"
    if reason.check(xmlstream.TLSNotSupported, xmlstream.TLSRequired):
        return "the server offers no STARTTLS, and the password is never sent in clear"
    if reason.check(xmlstream.TLSFailed):
        return "the server could not start TLS"
    if reason.check(SSL.Error) and reason.value is not None:
        errors = reason.value.args[0] if reason.value.args else []
        details = "; ".join(
            str(entry[-1]) for entry in errors if isinstance(entry, tuple) and entry
        ) if isinstance(errors, list) else str(errors)
        return f"TLS failed: {details or reason.value}"
    return reason.getErrorMessage() or repr(reason.value)


def from_settings(settings: Settings, reactor: Any) -> ChannelParts | None:
    """
    The XMPP channel, from the ``[im]`` settings, or ``None`` when no
    ``xmpp_jid`` is set.
    """
    if not settings.xmpp_jid:
        return None
    if not settings.xmpp_password:
        raise ConfigError("xmpp_password: xmpp_jid is set, so its password is needed too")
    channel = XMPPChannel(
        reactor,
        settings.xmpp_jid,
        settings.xmpp_password,
        host=settings.xmpp_host,
        port=settings.xmpp_port,
        tls_verify=settings.xmpp_tls_verify,
    )
    return ChannelParts(channel=channel, services=[channel])


__all__ = ["XMPPChannel", "bare_jid", "from_settings"]
