"""
SMS through Kannel, the open-source SMS gateway (docs/design/sms.md).

Out: each message is one request to smsbox's HTTP ``sendsms`` interface
(``/cgi-bin/sendsms?username=…&password=…&to=…&text=…``), in UTF-8, as
7-bit SMS when the GSM alphabet has every character of it and as UCS-2
otherwise.  smsbox answers 202 once bearerbox has the message (``0:
Accepted for delivery``, or ``3: Queued for later delivery`` when no SMS
centre is connected: bearerbox keeps it in its store and sends it later);
either way the gateway has it.

In: an ``sms-service`` of Kannel's calls :class:`KannelCallback` (its
``get-url``, at ``/channels/kannel``) for each text from a phone, with
the server's ``sms_inbound_secret`` as HTTP Basic password.  The callback
answers 200 only once the text is safely taken; any other answer makes
smsbox try again (its ``http-request-retry`` and ``http-queue-delay``),
so a text that arrives while the server is busy or starting is not lost.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable
from typing import Any, cast
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from distwit.channels.interfaces import (
    AddressRefused,
    ChannelError,
    ChannelParts,
    IInboundChannel,
    Inbound,
)
from distwit.channels.sms import BadNumber, ClosingService, e164, fits_gsm7, quoted, read_answer
from distwit.config import Settings
from distwit.s2s.client import make_http_client

_log = Logger()

#: Seconds a request to smsbox may take (it answers once bearerbox has
#: the message).
SEND_TIMEOUT = 30.0

#: Kannel's ``coding``: 0 for 7-bit GSM, 2 for UCS-2.
CODING_GSM7 = "0"
CODING_UCS2 = "2"

#: Words of smsbox's refusals that are about our configuration, not the
#: address: the sendsms-user's name or password is wrong; no sender
#: (``sms_from`` empty, and Kannel has no ``global-sender``).
_OUR_CONFIGURATION = {
    b"Authorization failed": "check kannel_username and kannel_password against its"
    " sendsms-user group",
    b"Sender missing": "set sms_from (or Kannel's global-sender)",
}


@implementer(IInboundChannel)
class KannelChannel:
    """
    Sends SMS through Kannel's smsbox, and brings the texts it receives
    (through :class:`KannelCallback`) to the server's rules.

    :param http: a treq ``HTTPClient`` (one pool, closed on stop).
    :param sendsms_url: smsbox's sendsms URL.
    :param sender: the number or short code texts are sent from (``""``:
        Kannel's own ``global-sender`` or the sendsms-user's
        ``default-sender``).
    """

    kind = "sms"
    name = "kannel"

    def __init__(
        self,
        reactor: Any,
        http: Any,
        sendsms_url: str,
        username: str,
        password: str,
        sender: str = "",
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._reactor = reactor
        self._http = http
        self._url = sendsms_url
        self._username = username
        self._password = password
        self._sender = sender
        self._timeout = timeout
        self._inbound: Inbound | None = None

    def send(
        self, address: str, text: str, subject: str = "", unsubscribe: str = ""
    ) -> Deferred[None]:
        return ensureDeferred(self._send(address, text))

    async def _send(self, address: str, text: str) -> None:
        try:
            number = e164(address)
        except BadNumber as e:
            raise AddressRefused(str(e)) from None
        params = {
            "username": self._username,
            "password": self._password,
            "to": number,
            "text": text,
            "charset": "UTF-8",
            "coding": CODING_GSM7 if fits_gsm7(text) else CODING_UCS2,
        }
        if self._sender:
            params["from"] = self._sender
        try:
            response = await self._http.get(self._url, params=params, timeout=self._timeout)
            body = await read_answer(self._reactor, response, timeout=self._timeout)
        except Exception as e:
            raise ChannelError(f"Kannel's smsbox at {self._where()} did not answer: {e}") from None
        code = response.code
        if 200 <= code < 300:
            return
        words = quoted(body)
        for sign, advice in _OUR_CONFIGURATION.items():
            if sign in body:
                _log.error("Kannel refused our request ({words}): {advice}",
                           words=words, advice=advice)
                raise ChannelError(f"Kannel refused our request: {code} {words}")
        if 400 <= code < 500:
            raise AddressRefused(f"Kannel will not send to {number}: {code} {words}")
        raise ChannelError(f"Kannel did not take the message: {code} {words}")

    def _where(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def listen(self, inbound: Inbound) -> None:
        self._inbound = inbound

    def receive(self, number: str, text: str) -> Awaitable[None] | None:
        """
        Hand a text from a phone to the server's rules.

        :return: what :meth:`listen`'s ``inbound`` returns (finished when
            the text is safely taken), or ``None`` when nobody listens yet.
        """
        if self._inbound is None:
            return None
        return self._inbound("sms", number, text)


class KannelCallback(Resource):
    """
    ``/channels/kannel``: Kannel's ``get-url`` (or ``post-url``) for texts
    from phones.  Parameters (in the query, or a form body):

    - ``from``: the sender's number (Kannel's ``%p``);
    - ``text``: the text (``%b``, the message as it is; or ``%a``);
    - ``charset``: how ``text`` is written (``%C``: ``UTF-8``, or
      ``UTF-16BE`` for UCS-2 texts when smsbox's ``mo-recode`` is off);
      UTF-8 when it is not given.

    The gateway proves itself with HTTP Basic, the password being the
    server's ``sms_inbound_secret`` (compared in constant time).
    Answers: 200 and no body once the text is taken; 401 or 403 without
    the secret; 400 with a sentence for a bad number or text; 503 when the
    server cannot take it now (smsbox tries again).
    """

    isLeaf = True

    def __init__(self, channel: KannelChannel, secret: str) -> None:
        super().__init__()
        self._channel = channel
        self._secret = secret.encode("utf-8")

    def render_GET(self, request: IRequest) -> bytes | int:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            number, text = self._message(request)
        except _BadRequest as e:
            return _plain(request, 400, str(e))
        taken = self._channel.receive(number, text)
        if taken is None:
            return _plain(request, 503, "The server is starting: try again in a moment.")
        finished = [False]
        # IRequest leaves out notifyFinish; twisted.web's Request has it.
        gone = cast(http.Request, request).notifyFinish()
        gone.addErrback(lambda _: finished.__setitem__(0, True))

        def answered(_: object) -> None:
            if not finished[0]:
                request.setResponseCode(200)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                request.finish()

        def failed(failure: Failure) -> None:
            _log.failure("a text from {number} was not taken", failure, number=number)
            if not finished[0]:
                request.write(_plain(request, 503, "The server could not take the text now."))
                request.finish()

        ensureDeferred(_awaited(taken)).addCallbacks(answered, failed)
        return NOT_DONE_YET

    render_POST = render_GET

    def _refused(self, request: IRequest) -> bytes | None:
        password = request.getPassword()
        if not password and not request.getUser():
            request.setHeader(b"www-authenticate", b'Basic realm="distwit sms"')
            return _plain(request, 401, "The gateway must give the server's inbound secret.")
        if not hmac.compare_digest(password, self._secret):
            client = getattr(request.getClientAddress(), "host", "?")
            _log.warn("refused a text from the SMS gateway at {client}: wrong secret",
                      client=client)
            return _plain(request, 403, "Wrong inbound secret.")
        return None

    def _message(self, request: IRequest) -> tuple[str, str]:
        args = request.args or {}
        sender = _one(args, b"from")
        if not sender:
            raise _BadRequest("The sender's number (from) is missing.")
        try:
            number = e164(sender.decode("utf-8", "replace"))
        except BadNumber as e:
            raise _BadRequest(str(e)) from None
        raw = _one(args, b"text") or b""
        charset = (_one(args, b"charset") or b"UTF-8").decode("ascii", "replace").strip()
        if _one(args, b"coding") == b"2" and not _one(args, b"charset"):
            charset = "UTF-16BE"
        try:
            text = raw.decode(charset or "UTF-8")
        except LookupError:
            raise _BadRequest(f"Unknown charset {charset!r}.") from None
        except UnicodeDecodeError:
            raise _BadRequest(f"The text is not {charset}.") from None
        return number, text


class _BadRequest(Exception):
    pass


def _one(args: dict[bytes, list[bytes]], name: bytes) -> bytes | None:
    values = args.get(name)
    return values[0] if values else None


def _plain(request: IRequest, code: int, sentence: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return sentence.encode("utf-8") + b"\n"


async def _awaited(taken: Awaitable[None]) -> None:
    await taken


def from_settings(settings: Settings, reactor: Any) -> ChannelParts | None:
    """
    The Kannel channel when ``sms_gateway = kannel``: the channel, its
    callback at ``/channels/kannel`` (when ``sms_inbound_secret`` is set),
    and the service that closes its connections on stop.
    """
    if settings.sms_gateway != "kannel":
        return None
    http = make_http_client(reactor)
    channel = KannelChannel(
        reactor,
        http,
        settings.kannel_sendsms_url,
        settings.kannel_username,
        settings.kannel_password,
        settings.sms_from,
    )
    resources: dict[str, Any] = {}
    if settings.sms_inbound_secret:
        resources["kannel"] = KannelCallback(channel, settings.sms_inbound_secret)
    else:
        _log.info("sms_inbound_secret is empty: texts from phones are not taken")
    return ChannelParts(
        channel=channel, resources=resources, services=[ClosingService("kannel-http", http)]
    )


__all__ = ["KannelCallback", "KannelChannel", "from_settings"]
