"""
The configurable HTTP SMS channel against a small real twisted.web server
on loopback that plays the provider: it records each request and answers
what the test tells it to.  (The provider is not the point: the settings
that describe one are.)
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface.verify import verifyObject

from distwit.channels.http_sms import HTTPSMSChannel, from_settings, render
from distwit.channels.interfaces import AddressRefused, ChannelError, IChannel
from distwit.config import ConfigError, resolve

from tests.processes import free_port
from tests.test_sms_kannel import _failure

DAVE = "+15550001111"
SID, TOKEN = "AC0123456789", "auth-token"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), strict_parsing=True))

    def basic(self) -> tuple[str, str]:
        kind, _, encoded = self.headers["authorization"].partition(" ")
        assert kind == "Basic", kind
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user, password


class Provider(Resource):
    """
    Records every request; answers ``code`` with ``answer``.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self.code = 201
        self.answer = b'{"sid": "SM1", "status": "queued"}'

    def render(self, request: IRequest) -> bytes:
        uri = request.uri.decode("utf-8")
        self.seen.append(Seen(
            method=request.method.decode("ascii"),
            path=urlsplit(uri).path,
            query=dict(parse_qsl(urlsplit(uri).query)),
            headers={name.decode().lower(): values[0].decode()
                     for name, values in request.requestHeaders.getAllRawHeaders()},
            body=request.content.read(),
        ))
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"application/json")
        return self.answer


class HTTPSMSTests(TestCase):
    def setUp(self) -> None:
        self.provider = Provider()
        site = Site(self.provider)
        site.noisy = False
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.url = f"http://127.0.0.1:{self.port.getHost().port}{PATH}"

    def channel(self, **settings: str) -> HTTPSMSChannel:
        """
        The channel as sms_gateway = http builds it from ``settings``; its
        connections closed at the end of the test.
        """
        given = {"sms_gateway": "http", "sms_http_url": self.url, "sms_from": "+15557770000"}
        given.update(settings)
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            f.write("[sms]\n" + "".join(f"{key} = {value}\n" for key, value in given.items()))
        parts = from_settings(resolve({}, path), reactor)
        assert parts is not None
        for service in parts.services:
            service.startService()
            self.addCleanup(service.stopService)
        channel: HTTPSMSChannel = parts.channel
        return channel

    async def test_twilio_form(self) -> None:
        """
        The defaults speak Twilio's form: a POST of To, From and Body, the
        account SID and token as HTTP Basic; text with &, =, + and
        non-ASCII arrives as written.
        """
        channel = self.channel(sms_http_username=SID, sms_http_password=TOKEN)
        self.assertTrue(verifyObject(IChannel, channel))
        self.assertEqual((channel.kind, channel.name), ("sms", "http-sms"))
        text = "alice: 1+1=2 & café ☃"
        await channel.send(DAVE, text, "")
        [seen] = self.provider.seen
        self.assertEqual((seen.method, seen.path), ("POST", PATH))
        self.assertEqual(seen.headers["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual(seen.form(), {"To": DAVE, "From": "+15557770000", "Body": text})
        self.assertEqual(seen.basic(), (SID, TOKEN))

    async def test_json_and_headers(self) -> None:
        """
        A JSON template gets its fields JSON-escaped (quotes, new lines),
        with the headers of the settings (a bearer token).
        """
        channel = self.channel(
            sms_http_format="json",
            sms_http_method="PUT",
            sms_http_body='{"recipients": ["{to}"], "originator": "{from}", "body": "{text}"}',
            sms_http_headers="Authorization: Bearer abc123\n  X-Api-Version: 2",
        )
        text = 'bob: "quoted"\nand a \\ backslash 雪'
        await channel.send(DAVE, text, "")
        [seen] = self.provider.seen
        self.assertEqual(seen.method, "PUT")
        self.assertEqual(seen.headers["content-type"], "application/json; charset=utf-8")
        self.assertEqual(seen.headers["authorization"], "Bearer abc123")
        self.assertEqual(seen.headers["x-api-version"], "2")
        self.assertEqual(
            json.loads(seen.body),
            {"recipients": [DAVE], "originator": "+15557770000", "body": text},
        )

    async def test_get(self) -> None:
        """
        With GET the filled template is the query string.
        """
        channel = self.channel(sms_http_method="GET",
                               sms_http_body="api_key=k&to={to}&text={text}")
        await channel.send(DAVE, "hi & bye", "")
        [seen] = self.provider.seen
        self.assertEqual(seen.method, "GET")
        self.assertEqual(seen.query, {"api_key": "k", "to": DAVE, "text": "hi & bye"})
        self.assertEqual(seen.body, b"")

    async def test_answers(self) -> None:
        """
        A 4xx refusing the message is AddressRefused, with the provider's
        words; 401, 429 and 5xx are ChannelError (try again); so is no
        answer at all.
        """
        channel = self.channel()
        self.provider.code, self.provider.answer = 400, b'{"message": "not a mobile number"}'
        failure = await _failure(channel.send(DAVE, "x", ""))
        self.assertIsInstance(failure, AddressRefused)
        self.assertIn("not a mobile number", str(failure))
        for code in (401, 429, 500, 503):
            self.provider.code = code
            failure = await _failure(channel.send(DAVE, "x", ""))
            self.assertIs(type(failure), ChannelError, code)
            self.assertIn(str(code), str(failure))
        self.provider.code = 202
        await channel.send(DAVE, "x", "")
        nobody = HTTPSMSChannel(reactor, channel._http, f"http://127.0.0.1:{free_port()}/")
        failure = await _failure(nobody.send(DAVE, "x", ""))
        self.assertIs(type(failure), ChannelError)
        self.assertIn("did not answer", str(failure))


class TemplateTests(SynchronousTestCase):
    def test_render(self) -> None:
        """
        Only {to}, {from} and {text} are replaced, once: a value that
        holds "{text}" stays as it is, and JSON's braces are left alone.
        """
        values = {"to": "+1", "from": "{text}", "text": "a b"}
        self.assertEqual(render("T={to}&F={from}&B={text}", "form", values),
                         "T=%2B1&F=%7Btext%7D&B=a+b")
        self.assertEqual(render('{"b": "{text}", "n": {}}', "json", values),
                         '{"b": "a b", "n": {}}')

    def test_bad_settings(self) -> None:
        """
        A JSON template that is no JSON once filled, a method that is none,
        a header line that is no header, no URL: errors that name the
        setting.
        """
        settings = resolve({"sms_gateway": "http", "sms_http_url": "https://sms.example/send",
                            "sms_http_format": "json", "sms_http_body": '{"to": {to}}'}, None)
        error = self.assertRaises(ConfigError, from_settings, settings, reactor)
        self.assertIn("sms_http_body", str(error))
        for given, key in [({"sms_http_method": "FETCH"}, "sms_http_method"),
                           ({"sms_http_headers": "no colon here"}, "sms_http_headers"),
                           ({"sms_http_url": ""}, "sms_http_url")]:
            settings_given: dict[str, Any] = {"sms_gateway": "http",
                                              "sms_http_url": "https://sms.example/send"}
            settings_given.update(given)
            error = self.assertRaises(ConfigError, resolve, settings_given, None)
            self.assertIn(key, str(error))
