"""
SMS through a provider's HTTP API, described by the settings rather than
written for one provider (docs/design/sms.md): a URL, a method, a body
template with ``{to}``, ``{from}`` and ``{text}`` in it, written as a form
or as JSON, HTTP Basic credentials and more headers.  The default is
Twilio's form (``To={to}&From={from}&Body={text}``, the account SID and
auth token as Basic credentials); others (Vonage, Plivo, MessageBird,
Sinch, a carrier's own) fit the same few settings.

A 2xx answer means the provider took the message.  401, 403, 407, 408 and
429 are ours or passing (credentials, rate): try again.  Any other 4xx is
the provider refusing this message for good (a number it cannot send to),
and 5xx or no answer, try again.

Send only: replies from phones come back through a provider's webhook,
which differs from one to the next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from twisted.internet.defer import Deferred, ensureDeferred
from zope.interface import implementer

from distwit.channels.interfaces import AddressRefused, ChannelError, ChannelParts, IChannel
from distwit.channels.sms import BadNumber, ClosingService, e164, quoted, read_answer
from distwit.config import SMS_HTTP_BODY, ConfigError, Settings
from distwit.s2s.client import make_http_client

#: Seconds a request to the provider may take.
SEND_TIMEOUT = 30.0

#: The answers that say "not now" rather than "never".
_PASSING = frozenset({401, 403, 407, 408, 425, 429})

_FIELD = re.compile(r"\{(to|from|text)\}")

#: How each format writes a value into the template.
_ESCAPES: dict[str, Callable[[str], str]] = {
    "form": quote_plus,
    "json": lambda value: json.dumps(value, ensure_ascii=False)[1:-1],
}
_CONTENT_TYPES = {
    "form": "application/x-www-form-urlencoded",
    "json": "application/json; charset=utf-8",
}


def render(template: str, body_format: str, values: dict[str, str]) -> str:
    """
    The template with ``{to}``, ``{from}`` and ``{text}`` replaced by
    ``values``, each escaped as ``body_format`` (``form`` or ``json``)
    writes it; nothing else of the template changes (JSON's own braces
    included).
    """
    escape = _ESCAPES[body_format]
    return _FIELD.sub(lambda match: escape(values[match.group(1)]), template)


@implementer(IChannel)
class HTTPSMSChannel:
    """
    Sends each SMS as one HTTP request to a provider.

    :param http: a treq ``HTTPClient`` (one pool, closed on stop).
    :param auth: HTTP Basic ``(user, password)``, or ``None``.
    :param headers: more request headers, ``(name, value)``.
    """

    kind = "sms"
    name = "http-sms"

    def __init__(
        self,
        reactor: Any,
        http: Any,
        url: str,
        *,
        method: str = "POST",
        template: str = SMS_HTTP_BODY,
        body_format: str = "form",
        sender: str = "",
        auth: tuple[str, str] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._reactor = reactor
        self._http = http
        self._url = url
        self._method = method
        self._template = template
        self._format = body_format
        self._sender = sender
        self._auth = auth
        self._headers = headers
        self._timeout = timeout

    def send(
        self, address: str, text: str, subject: str = "", unsubscribe: str = ""
    ) -> Deferred[None]:
        return ensureDeferred(self._send(address, text))

    async def _send(self, address: str, text: str) -> None:
        try:
            number = e164(address)
        except BadNumber as e:
            raise AddressRefused(str(e)) from None
        body = render(self._template, self._format,
                      {"to": number, "from": self._sender, "text": text})
        headers: dict[str, list[str]] = {}
        url = self._url
        data: bytes | None = None
        if self._method == "GET":
            url += ("&" if "?" in url else "?") + body
        else:
            data = body.encode("utf-8")
            headers["Content-Type"] = [_CONTENT_TYPES[self._format]]
        for name, value in self._headers:
            headers[name] = [value]
        try:
            response = await self._http.request(
                self._method, url, data=data, headers=headers, auth=self._auth,
                timeout=self._timeout,
            )
            answer = await read_answer(self._reactor, response, timeout=self._timeout)
        except Exception as e:
            raise ChannelError(f"the SMS provider did not answer: {e}") from None
        code = response.code
        if 200 <= code < 300:
            return
        words = quoted(answer)
        if 400 <= code < 500 and code not in _PASSING:
            raise AddressRefused(f"the SMS provider will not send to {number}: {code} {words}")
        raise ChannelError(f"the SMS provider did not take the message: {code} {words}")


def from_settings(settings: Settings, reactor: Any) -> ChannelParts | None:
    """
    The HTTP SMS channel when ``sms_gateway = http``, with the service that
    closes its connections on stop.

    :raise ConfigError: ``sms_http_format = json`` and the template, its
        fields filled, is not JSON.
    """
    if settings.sms_gateway != "http":
        return None
    if settings.sms_http_format == "json":
        sample = render(settings.sms_http_body, "json",
                        {"to": "+15550001111", "from": "x", "text": 'a "text"\n'})
        try:
            json.loads(sample)
        except ValueError as e:
            raise ConfigError(
                f"sms_http_body: with sms_http_format = json it must be JSON once filled"
                f" ({e}); put the fields inside quotes: \"{{text}}\""
            ) from None
    http = make_http_client(reactor)
    auth = None
    if settings.sms_http_username or settings.sms_http_password:
        auth = (settings.sms_http_username, settings.sms_http_password)
    channel = HTTPSMSChannel(
        reactor,
        http,
        settings.sms_http_url,
        method=settings.sms_http_method,
        template=settings.sms_http_body,
        body_format=settings.sms_http_format,
        sender=settings.sms_from,
        auth=auth,
        headers=settings.sms_http_headers,
    )
    return ChannelParts(channel=channel, services=[ClosingService("http-sms-http", http)])


__all__ = ["HTTPSMSChannel", "from_settings", "render"]
