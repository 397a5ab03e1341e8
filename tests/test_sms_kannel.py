"""
The Kannel channel against the real gateway: Debian's bearerbox and smsbox
with the fake SMS centre of kannel-extras (``fakesmsc``), started by the
test on free ports with a configuration made for it.  One ``fakesmsc``
plays the phones (it prints each SMS it is handed); another, started for
each text, plays a phone writing to the server.  .ci/run installs Kannel;
without it the tests say how to install it.

:class:`Kannel` is also what tests/test_sms_end_to_end.py runs.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface.verify import verifyObject

from distwit.channels.interfaces import AddressRefused, ChannelError, IInboundChannel
from distwit.channels.kannel import KannelCallback, KannelChannel, from_settings
from distwit.channels.sms import BadNumber, e164, fits_gsm7
from distwit.config import ConfigError, resolve
from distwit.s2s.client import make_http_client

from tests.processes import free_port

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
KANNEL_SKIP = (
    "Kannel is not installed: apt-get install kannel kannel-extras (.ci/run does)"
)

#: How long the gateway may take to start, deliver, or call us back.
DEADLINE = 60.0

#: The number the server sends from, and the phones' numbers.
SHORT_CODE = "40404"
DAVE = "+15550001111"
ERIN = "+15550002222"

T = TypeVar("T")


def kannel_installed() -> bool:
    return all(os.access(path, os.X_OK) for path in (BEARERBOX, SMSBOX, FAKESMSC))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """
    Poll ``condition`` until it is true (blocking: for before the reactor
    needs to run), or fail saying ``what`` did not happen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


async def eventually(condition: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """
    Wait, with the reactor running, until ``condition()`` is true; its value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await deferLater(reactor, 0.05, lambda: None)


class Kannel:
    """
    bearerbox, smsbox and two fake SMS centres on free loopback ports, in
    ``folder``, calling ``callback_url`` (with its secret in it) for each
    text from a phone.

    :param blocked: a regular expression of numbers smsbox refuses to send
        to (the sendsms-user's ``black-list-regex``).
    """

    USERNAME = "distwit"
    PASSWORD = "sendsms-password"

    def __init__(self, folder: str, callback_url: str, blocked: str = r"^\+1555999") -> None:
        if not kannel_installed():
            raise SkipTest(KANNEL_SKIP)
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.admin_port, self.smsbox_port = free_port(), free_port()
        self.phones_port, self.inject_port = free_port(), free_port()
        self.sendsms_port = free_port()
        self.sendsms_url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"
        self.config = os.path.join(folder, "kannel.conf")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(self._configuration(callback_url, blocked))
        self.bearerbox: subprocess.Popen[bytes] | None = None
        self.smsbox: subprocess.Popen[bytes] | None = None
        self.phones: subprocess.Popen[bytes] | None = None
        self.injector: subprocess.Popen[bytes] | None = None
        #: fakesmsc output files of every run of the phones, in order.
        self._phone_logs: list[str] = []
        self._injections = 0
        self._runs = 0

    def _configuration(self, callback_url: str, blocked: str) -> str:
        folder = self.folder
        return f"""
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = admin-{self.admin_port}
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{folder}/bearerbox.log"
log-level = 0
access-log = "{folder}/access.log"
store-type = file
store-location = "{folder}/store"
sms-resend-freq = 1
sms-resend-retry = -1

# The phones: everything the server sends goes to this fake SMS centre.
group = smsc
smsc = fake
smsc-id = phones
allowed-smsc-id = phones
our-host = 127.0.0.1
port = {self.phones_port}
connect-allow-ip = 127.0.0.1

# A phone writing to the server: a fakesmsc started for each text.
group = smsc
smsc = fake
smsc-id = inject
allowed-smsc-id = inject
our-host = 127.0.0.1
port = {self.inject_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{folder}/smsbox.log"
log-level = 0
access-log = "{folder}/smsbox-access.log"
# A callback that fails is tried again, every second, for a while.
http-request-retry = 30
http-queue-delay = 1
# UCS-2 texts from phones are given to the callback in UTF-8.
mo-recode = true

group = sendsms-user
username = {self.USERNAME}
password = {self.PASSWORD}
forced-smsc = phones
# A text past one SMS (160 GSM characters, 70 in UCS-2) goes as parts the
# phone puts together, not cut.
max-messages = 3
concatenation = true
black-list-regex = "{blocked}"

# Every text from a phone goes to the server; the server answers through
# sendsms (its durable outbox), never in the HTTP reply.
group = sms-service
keyword = default
catch-all = true
max-messages = 0
omit-empty = true
get-url = "{callback_url}?from=%p&text=%b&charset=%C&coding=%c"
"""

    # -- the boxes

    def start(self) -> None:
        """
        Start bearerbox, smsbox and the phones' fake SMS centre, and wait
        until sendsms answers.
        """
        self._runs += 1
        run = self._runs
        self.bearerbox = self._spawn([BEARERBOX, self.config], f"bearerbox-{run}.out")
        _wait_for(lambda: self._alive(self.bearerbox) and _listening(self.smsbox_port)
                  and _listening(self.phones_port), "bearerbox listens")
        self.smsbox = self._spawn([SMSBOX, self.config], f"smsbox-{run}.out")
        _wait_for(lambda: self._alive(self.smsbox) and _listening(self.sendsms_port),
                  "smsbox's sendsms listens")
        log = os.path.join(self.folder, f"phones-{run}.out")
        self._phone_logs.append(log)
        self.phones = self._spawn(
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.phones_port), "-m", "0",
             f"{SHORT_CODE} {SHORT_CODE} text unused"],
            log,
        )
        _wait_for(lambda: re.search(r"phones\[phones\]\s+FAKE:\d+ \(online", self.status()),
                  "the phones' fakesmsc connects")

    def status(self) -> str:
        """
        bearerbox's status page (its SMS centres, online or not).
        """
        url = (f"http://127.0.0.1:{self.admin_port}/status.txt"
               f"?password=admin-{self.admin_port}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(answer.read().decode("utf-8", "replace"))
        except OSError:
            return ""

    def _alive(self, process: subprocess.Popen[bytes] | None) -> bool:
        if process is None or process.poll() is not None:
            raise AssertionError(
                f"a Kannel box stopped: {process and process.args}\n"
                + self._read("bearerbox.log")[-3000:]
            )
        return True

    def _spawn(self, command: list[str], output: str) -> subprocess.Popen[bytes]:
        path = output if os.path.isabs(output) else os.path.join(self.folder, output)
        with open(path, "ab") as out:
            return subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.folder,
            )

    def _read(self, name: str) -> str:
        path = name if os.path.isabs(name) else os.path.join(self.folder, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop_bearerbox(self) -> None:
        """
        Stop bearerbox (as an operator would, or a crash); smsbox and the
        fake SMS centres go with it.
        """
        for process in (self.bearerbox, self.injector, self.smsbox, self.phones):
            _end(process)
        self.bearerbox = self.smsbox = self.phones = self.injector = None

    def stop(self) -> None:
        self.stop_bearerbox()

    # -- the phones

    def phone_messages(self) -> list[tuple[str, str, str]]:
        """
        Every SMS the phones were handed, in order: ``(from, to, text)``.
        """
        found = []
        parts: dict[tuple[str, str, int], dict[int, bytes]] = {}
        for log in self._phone_logs:
            for line in self._read(log).splitlines():
                match = re.search(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$", line)
                if not match:
                    continue
                sender, receiver, kind, data = match.groups()
                if kind != "udh":
                    found.append((sender, receiver, _decoded(kind, data)))
                    continue
                # A part of a concatenated SMS: its UDH says which, of how many.
                udh, _, rest = data.partition(" ")
                header = urllib.parse.unquote_to_bytes(udh)
                _, _, body = rest.partition(" ")
                reference, total, number = header[3], header[4], header[5]
                key = (sender, receiver, reference)
                parts.setdefault(key, {})[number] = _raw(body)
                if len(parts[key]) == total:
                    pieces = parts.pop(key)
                    whole = b"".join(pieces[n] for n in range(1, total + 1))
                    found.append((sender, receiver, _guess_text(whole)))
        return found

    def texts_to(self, number: str) -> list[str]:
        """
        The texts the phone ``number`` was handed, in order.
        """
        return [text for _, to, text in self.phone_messages() if to == number]

    def inject(self, sender: str, text: str, to: str = SHORT_CODE) -> None:
        """
        The phone ``sender`` writes ``text`` to the server: a fakesmsc that
        sends it once (the one before it is stopped first: the fake SMS
        centre takes one client at a time).
        """
        _end(self.injector)
        self._injections += 1
        if fits_gsm7(text) and "\n" not in text:
            line = f"{sender} {to} text {text}"
        else:
            data = urllib.parse.quote(text.encode("utf-16-be"), safe="")
            line = f"{sender} {to} ucs2 {data}"
        log = os.path.join(self.folder, f"inject-{self._injections}.out")
        self.injector = self._spawn(
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.inject_port), "-m", "1", line], log
        )
        _wait_for(lambda: "sent message 1" in self._read(log), "fakesmsc sends the text")

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {name}\n" + self._read(name)[-2000:]
            for name in ("bearerbox.log", "smsbox.log")
        )


def _decoded(kind: str, data: str) -> str:
    """
    A message as fakesmsc prints it: ``text`` as it is; ``data`` and
    ``ucs-2`` URL-encoded (UTF-8 bytes, or UTF-16BE).
    """
    if kind == "text":
        return data
    raw = _raw(data)
    if kind in ("ucs-2", "ucs2"):
        return raw.decode("utf-16-be")
    return raw.decode("utf-8", "replace")


def _raw(data: str) -> bytes:
    return urllib.parse.unquote_to_bytes(data.replace("+", " "))


def _guess_text(data: bytes) -> str:
    """
    The text of a concatenated SMS, whose parts fakesmsc prints as bytes
    without their coding: UTF-8 if they read as text in it, else UTF-16BE
    (UCS-2).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-16-be")
    if any(ord(c) < 32 and c not in "\n\r" for c in text):
        return data.decode("utf-16-be")
    return text


def _end(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


class Recorder:
    """
    What the channel's ``inbound`` was called with; ``fail`` the next
    calls to see the gateway try again.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.failures = 0

    async def __call__(self, kind: str, address: str, text: str) -> None:
        self.calls.append((kind, address, text))
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is away")


SECRET = "kannel-secret"


class KannelTests(TestCase):
    """
    The channel, its callback on a real port, and a real Kannel.
    """

    def setUp(self) -> None:
        if not kannel_installed():
            raise SkipTest(KANNEL_SKIP)
        folder = os.path.abspath(self.mktemp())
        self.http = make_http_client(reactor)
        self.addCleanup(self.http.close)
        self.channel = KannelChannel(
            reactor, self.http, "http://placeholder", Kannel.USERNAME, Kannel.PASSWORD,
            SHORT_CODE,
        )
        root = Resource()
        channels = Resource()
        root.putChild(b"channels", channels)
        channels.putChild(b"kannel", KannelCallback(self.channel, SECRET))
        site = Site(root)
        site.noisy = False
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        port = self.port.getHost().port
        self.callback = f"http://127.0.0.1:{port}/channels/kannel"
        self.kannel = Kannel(
            folder, f"http://kannel:{SECRET}@127.0.0.1:{port}/channels/kannel"
        )
        self.addCleanup(self.kannel.stop)
        self.kannel.start()
        self.channel._url = self.kannel.sendsms_url
        self.inbound = Recorder()

    def test_interface(self) -> None:
        """
        The channel is an inbound SMS channel named kannel.
        """
        self.assertTrue(verifyObject(IInboundChannel, self.channel))
        self.assertEqual((self.channel.kind, self.channel.name), ("sms", "kannel"))

    async def test_send_reaches_the_phone(self) -> None:
        """
        A message sent reaches the phone, from the server's short code.
        """
        await self.channel.send(DAVE, "alice: hello from distwit", "")
        await eventually(lambda: self.kannel.texts_to(DAVE), "the phone gets the SMS")
        self.assertEqual(
            self.kannel.phone_messages(), [(SHORT_CODE, DAVE, "alice: hello from distwit")]
        )

    async def test_send_non_ascii(self) -> None:
        """
        Text in the GSM alphabet (é, ñ, €) and beyond it (a snowman, Japanese,
        an emoji) arrives as it was written.
        """
        texts = ["bob: café, niño, 5€", "carol: snow ☃ 雪 🙂"]
        for text in texts:
            await self.channel.send(ERIN, text, "")
        await eventually(lambda: len(self.kannel.texts_to(ERIN)) == 2, "both SMS arrive")
        self.assertEqual(self.kannel.texts_to(ERIN), texts)

    async def test_send_long(self) -> None:
        """
        A text past one SMS (160 characters with a snowman: three UCS-2
        parts; 160 with € and brackets, which count twice in 7-bit) reaches
        the phone whole.
        """
        texts = ["alice: " + "snow ☃ " * 21 + "end", "bob: [" + "€" * 150 + "]"]
        for text in texts:
            await self.channel.send(ERIN, text, "")
        await eventually(lambda: len(self.kannel.texts_to(ERIN)) == 2, "both SMS arrive")
        self.assertEqual(self.kannel.texts_to(ERIN), texts)

    async def test_phone_writes(self) -> None:
        """
        A text from a phone reaches the server's inbound, from its number in
        E.164, with its spaces; the callback answers only once it is taken.
        """
        self.channel.listen(self.inbound)
        self.kannel.inject(DAVE, "hello  there, world")
        await eventually(lambda: self.inbound.calls, "the text reaches inbound")
        self.assertEqual(self.inbound.calls, [("sms", DAVE, "hello  there, world")])

    async def test_phone_writes_non_ascii(self) -> None:
        """
        Texts from phones in UCS-2 (a snowman, Japanese) and in the GSM
        alphabet (é) arrive as written.
        """
        self.channel.listen(self.inbound)
        self.kannel.inject(ERIN, "snow ☃ 雪")
        await eventually(lambda: len(self.inbound.calls) == 1, "the UCS-2 text arrives")
        self.kannel.inject(ERIN, "café olé")
        await eventually(lambda: len(self.inbound.calls) == 2, "the GSM text arrives")
        self.assertEqual(
            self.inbound.calls, [("sms", ERIN, "snow ☃ 雪"), ("sms", ERIN, "café olé")]
        )

    async def test_gateway_tries_again(self) -> None:
        """
        A text that arrives before the server listens, or that the server
        fails to take, is not lost: the callback answers 503, and Kannel
        brings it again until it is taken.
        """
        self.kannel.inject(DAVE, "are you there")
        await eventually(
            lambda: "Retrying request" in self.kannel._read("smsbox.log"),
            "smsbox tries again after 503",
        )
        self.inbound.failures = 1
        self.channel.listen(self.inbound)
        await eventually(lambda: len(self.inbound.calls) == 2, "the text is brought again")
        self.assertEqual(self.inbound.calls, [("sms", DAVE, "are you there")] * 2)
        # The failure was logged, with the number it came from.
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def test_bad_secret(self) -> None:
        """
        The callback refuses a request without the secret (401) or with
        another (403), and takes nothing from it.
        """
        self.channel.listen(self.inbound)
        query = {"from": DAVE, "text": "forged", "charset": "UTF-8"}
        wrong = await self.http.get(self.callback, params=query, auth=("kannel", "guess"))
        self.assertEqual(wrong.code, 403)
        self.assertIn(b"Wrong inbound secret", await treq.content(wrong))
        missing = await self.http.get(self.callback, params=query)
        self.assertEqual(missing.code, 401)
        await treq.content(missing)
        right = await self.http.get(self.callback, params=query, auth=("kannel", SECRET))
        self.assertEqual(right.code, 200)
        self.assertEqual(await treq.content(right), b"")
        self.assertEqual(self.inbound.calls, [("sms", DAVE, "forged")])

    async def test_bearerbox_stopped(self) -> None:
        """
        With bearerbox stopped (smsbox goes with it), a send fails with
        ChannelError (try again), not AddressRefused; once it runs again
        the message goes.
        """
        self.kannel.stop_bearerbox()
        failure = await _failure(self.channel.send(DAVE, "while down", ""))
        self.assertIs(type(failure), ChannelError)
        self.assertIn("did not answer", str(failure))
        self.kannel.start()
        await self.channel.send(DAVE, "back up", "")
        await eventually(lambda: self.kannel.texts_to(DAVE), "the SMS arrives")
        self.assertEqual(self.kannel.texts_to(DAVE), ["back up"])

    async def test_number_refused(self) -> None:
        """
        A number the gateway will never send to (smsbox's black list
        answers 400) is AddressRefused; no sender, or a wrong sendsms
        password, is our configuration: a ChannelError.
        """
        failure = await _failure(self.channel.send("+15559990000", "no", ""))
        self.assertIsInstance(failure, AddressRefused)
        self.assertIn("denied", str(failure))
        self.channel._sender = ""
        failure = await _failure(self.channel.send(DAVE, "no", ""))
        self.assertIs(type(failure), ChannelError)
        self.assertIn("Sender missing", str(failure))
        self.channel._password = "not the password"
        failure = await _failure(self.channel.send(DAVE, "no", ""))
        self.assertIs(type(failure), ChannelError)
        self.assertIn("Authorization failed", str(failure))
        self.assertEqual(len(self.flushLoggedErrors()), 0)


async def _failure(d: Deferred[Any]) -> BaseException:
    try:
        await d
    except Exception as e:
        return e
    raise AssertionError("it did not fail")


class NumbersTests(SynchronousTestCase):
    def test_e164(self) -> None:
        """
        Numbers as people and gateways write them become E.164; what is no
        number is refused with a sentence.
        """
        for written in ("+1 555 000-1111", "0015550001111", "15550001111", "+1 (555) 000.1111"):
            self.assertEqual(e164(written), "+15550001111", written)
        for bad in ("", "+", "abc", "+0123", "+1234567890123456", "++15550001111"):
            error = self.assertRaises(BadNumber, e164, bad)
            self.assertIn("international form", str(error))

    def test_gsm7(self) -> None:
        """
        The GSM alphabet and its extension fit 7-bit SMS; anything else
        needs UCS-2.
        """
        self.assertTrue(fits_gsm7("Hello @ £5 é ñ Ä {x} [y] €"))
        self.assertFalse(fits_gsm7("snow ☃"))
        self.assertFalse(fits_gsm7("ç"))  # only the capital Ç is GSM


class CallbackTests(SynchronousTestCase):
    """
    The callback in memory (StubTreq): what it answers to bad input.
    """

    def setUp(self) -> None:
        from treq.testing import StubTreq

        self.inbound = Recorder()
        self.channel = KannelChannel(reactor, None, "http://kannel", "u", "p")
        self.channel.listen(self.inbound)
        self.treq = StubTreq(KannelCallback(self.channel, SECRET))

    def get(self, query: str, secret: str = SECRET) -> tuple[int, str]:
        auth = base64.b64encode(f"kannel:{secret}".encode()).decode()
        response = self.successResultOf(
            self.treq.get(f"http://x/channels/kannel?{query}",
                          headers={"Authorization": f"Basic {auth}"})
        )
        body = self.successResultOf(self.treq.content(response))
        return response.code, body.decode("utf-8")

    def test_bad_input(self) -> None:
        """
        No sender, a sender that is no number, text that is not in its
        charset, an unknown charset: 400 with a sentence, nothing taken.
        """
        cases = [
            ("text=hi", "(from) is missing"),
            ("from=hello&text=hi", "international form"),
            ("from=%2B15550001111&text=%FF&charset=UTF-8", "not UTF-8"),
            ("from=%2B15550001111&text=hi&charset=KLINGON", "Unknown charset"),
        ]
        for query, words in cases:
            code, body = self.get(query)
            self.assertEqual((code, words in body), (400, True), (query, body))
        self.assertEqual(self.inbound.calls, [])

    def test_charsets(self) -> None:
        """
        UCS-2 texts in UTF-16BE (smsbox without mo-recode) are read as
        such; a sender written 0015... is +15...
        """
        data = urllib.parse.quote("☃ ok".encode("utf-16-be"))
        self.assertEqual(self.get(f"from=0015550001111&text={data}&charset=UTF-16BE")[0], 200)
        self.assertEqual(self.get(f"from=0015550001111&text={data}&coding=2")[0], 200)
        self.assertEqual(self.inbound.calls, [("sms", "+15550001111", "☃ ok")] * 2)

    def test_not_listening(self) -> None:
        """
        Before the server listens, the callback answers 503 so that Kannel
        tries again.
        """
        channel = KannelChannel(reactor, None, "http://kannel", "u", "p")
        from treq.testing import StubTreq

        stub = StubTreq(KannelCallback(channel, SECRET))
        auth = base64.b64encode(f"k:{SECRET}".encode()).decode()
        response = self.successResultOf(
            stub.get("http://x/?from=%2B15550001111&text=hi",
                     headers={"Authorization": f"Basic {auth}"})
        )
        self.assertEqual(response.code, 503)


class SettingsTests(SynchronousTestCase):
    def test_from_settings(self) -> None:
        """
        sms_gateway = kannel builds the channel, its callback at
        /channels/kannel and the service that closes its connections;
        without the inbound secret, no callback; another gateway, nothing.
        """
        settings = resolve({"sms_gateway": "kannel",
                            "kannel_sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
                            "sms_inbound_secret": "s"}, None)
        parts = from_settings(settings, reactor)
        assert parts is not None
        self.assertIsInstance(parts.channel, KannelChannel)
        self.assertEqual(list(parts.resources), ["kannel"])
        self.assertEqual(len(parts.services), 1)
        settings = resolve({"sms_gateway": "kannel",
                            "kannel_sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms"},
                           None)
        parts = from_settings(settings, reactor)
        assert parts is not None
        self.assertEqual(parts.resources, {})
        self.assertIsNone(from_settings(resolve({}, None), reactor))

    def test_needs_url(self) -> None:
        """
        sms_gateway = kannel without kannel_sendsms_url is a configuration
        error that names it; a gateway that does not exist too.
        """
        error = self.assertRaises(ConfigError, resolve, {"sms_gateway": "kannel"}, None)
        self.assertIn("kannel_sendsms_url", str(error))
        error = self.assertRaises(ConfigError, resolve, {"sms_gateway": "pigeon"}, None)
        self.assertIn("kannel", str(error))

