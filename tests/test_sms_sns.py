"""
The Amazon SNS channel against moto's server mode (moto emulates SNS on
loopback): a process started by the test on a free port, recording every
request it is sent; what it took is read back from its ``/moto-api/``
(the SMS it "sent") and from the recording (the attributes of each
``Publish``).  moto is in the test extras (setup.cfg).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface.verify import verifyObject

from distwit.channels.interfaces import AddressRefused, ChannelError, IChannel
from distwit.channels.sns import SNSChannel, from_settings
from distwit.config import resolve

from tests.processes import free_port
from tests.test_sms_kannel import _failure

DAVE = "+15550001111"


class Moto:
    """
    ``moto_server`` on a free loopback port, recording requests to a file.
    """

    def __init__(self, folder: str) -> None:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise SkipTest("moto is not installed: pip install 'moto[server]' (the test extras)")
        os.makedirs(folder, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = os.path.join(folder, "recording.jsonl")
        env = dict(os.environ, MOTO_ENABLE_RECORDING="True",
                   MOTO_RECORDER_FILEPATH=self.recording)
        self.log = open(os.path.join(folder, "moto.log"), "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError("moto_server stopped")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("moto_server does not answer within 60 s") from None
                time.sleep(0.1)

    def sms(self) -> list[tuple[str, str]]:
        """
        The SMS moto's SNS "sent": ``(phone number, message)``, in order.
        """
        with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=10) as answer:
            data = json.load(answer)
        return [(sms["phone_number"], sms["message"]) for sms in data["sns"].get("SMS", [])]

    def publishes(self) -> list[dict[str, Any]]:
        """
        The recorded ``Publish`` requests: their headers and parameters.
        """
        found = []
        with open(self.recording, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                body = entry.get("body") or ""
                if entry.get("body_encoded"):
                    body = base64.b64decode(body).decode("utf-8")
                params = dict(urllib.parse.parse_qsl(body))
                if params.get("Action") == "Publish":
                    found.append({"headers": entry["headers"], "params": params})
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


def attributes(params: dict[str, str]) -> dict[str, str]:
    """
    A Publish's message attributes, by name (the query protocol writes
    them as ``MessageAttributes.entry.N.Name`` / ``.Value.StringValue``).
    """
    found = {}
    n = 1
    while f"MessageAttributes.entry.{n}.Name" in params:
        found[params[f"MessageAttributes.entry.{n}.Name"]] = params[
            f"MessageAttributes.entry.{n}.Value.StringValue"
        ]
        n += 1
    return found


class SNSTests(TestCase):
    def setUp(self) -> None:
        self.moto = Moto(os.path.abspath(self.mktemp()))
        self.addCleanup(self.moto.stop)

    def channel(self, **settings: str) -> SNSChannel:
        """
        The channel as sms_gateway = sns builds it, on moto, its thread
        pool started (and stopped at the end of the test).
        """
        given = {"sms_gateway": "sns", "sns_endpoint": self.moto.url,
                 "sns_region": "eu-west-1", "sns_access_key_id": "AKIDTEST",
                 "sns_secret_access_key": "secret"}
        given.update(settings)
        parts = from_settings(resolve(given, None), reactor)
        assert parts is not None
        for service in parts.services:
            service.startService()
            self.addCleanup(service.stopService)
        self.assertEqual(parts.resources, {})
        channel: SNSChannel = parts.channel
        return channel

    async def test_publish(self) -> None:
        """
        A message is published to the number as a transactional SMS from
        the sender ID, signed with the configured key; non-ASCII text
        arrives as written.
        """
        channel = self.channel(sms_from="distwit")
        self.assertTrue(verifyObject(IChannel, channel))
        self.assertEqual((channel.kind, channel.name), ("sms", "sns"))
        await channel.send(DAVE, "alice: hello", "")
        await channel.send(DAVE, "bob: snow ☃ 雪 café", "")
        self.assertEqual(self.moto.sms(), [(DAVE, "alice: hello"), (DAVE, "bob: snow ☃ 雪 café")])
        publish = self.moto.publishes()[0]
        self.assertEqual(
            attributes(publish["params"]),
            {"AWS.SNS.SMS.SMSType": "Transactional", "AWS.SNS.SMS.SenderID": "distwit"},
        )
        self.assertIn("Credential=AKIDTEST/", publish["headers"]["Authorization"])
        self.assertIn("/eu-west-1/sns/aws4_request", publish["headers"]["Authorization"])

    async def test_origination_number(self) -> None:
        """
        A sender that is a number goes as the origination number.
        """
        channel = self.channel(sms_from="+15557770000")
        await channel.send(DAVE, "hi", "")
        self.assertEqual(
            attributes(self.moto.publishes()[0]["params"]),
            {"AWS.SNS.SMS.SMSType": "Transactional",
             "AWS.MM.SMS.OriginationNumber": "+15557770000"},
        )

    async def test_credentials_from_environment(self) -> None:
        """
        Without credentials in the settings, the usual AWS environment
        variables are used.
        """
        self.patch(os, "environ", dict(os.environ, AWS_ACCESS_KEY_ID="AKIDFROMENV",
                                       AWS_SECRET_ACCESS_KEY="env-secret"))
        channel = self.channel(sns_access_key_id="", sns_secret_access_key="")
        await channel.send(DAVE, "hi", "")
        self.assertIn("Credential=AKIDFROMENV/",
                      self.moto.publishes()[0]["headers"]["Authorization"])

    async def test_refused(self) -> None:
        """
        What SNS will never take (a text past its 1,600 bytes, a number that
        is none) is AddressRefused; nothing is sent.
        """
        channel = self.channel()
        failure = await _failure(channel.send(DAVE, "x" * 1601, ""))
        self.assertIsInstance(failure, AddressRefused)
        self.assertIn("1600", str(failure))
        failure = await _failure(channel.send("not a number", "hi", ""))
        self.assertIsInstance(failure, AddressRefused)
        self.assertEqual(self.moto.sms(), [])

    async def test_unreachable(self) -> None:
        """
        With SNS out of reach, a send fails with ChannelError (try again).
        """
        channel = self.channel()
        self.moto.stop()
        failure = await _failure(channel.send(DAVE, "hi", ""))
        self.assertIs(type(failure), ChannelError)
        self.assertIn("did not answer", str(failure))
