"""
A channel for the tests of the devices' faces (the API and the pages):
what a real server process sends to phones, Jabber IDs or mailboxes is
written, one JSON object a line, to a file the test reads (the codes to
type in, the friends' posts that arrived); and what a person texts back is
POSTed to ``/channels/test-KIND`` (``address``, ``text``).

The gateways themselves (Kannel, SNS, XMPP, SMTP) are tested beside their
adapters; here they are not the point.  A server process gets these
channels with :func:`recording_server`, which registers them in
:data:`distwit.channels.configured.ADAPTERS` before twistd starts.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from distwit.channels.interfaces import ChannelParts, IInboundChannel, Inbound

from tests.processes import ServerProcess, run_cli


@implementer(IInboundChannel)
class RecordingChannel:
    """
    Takes every message at once and appends it to ``path`` as
    ``{"kind", "address", "text", "subject"}``.
    """

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.name = f"test-{kind}"
        self._path = path
        self.inbound: Inbound | None = None

    def send(
        self, address: str, text: str, subject: str, unsubscribe: str = ""
    ) -> Deferred[None]:
        line = json.dumps({"kind": self.kind, "address": address, "text": text,
                           "subject": subject, "pid": os.getpid()})
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return succeed(None)

    def listen(self, inbound: Inbound) -> None:
        self.inbound = inbound


class InboundResource(Resource):
    """
    ``POST address=...&text=...``: a message from that address; 200 once
    the server took it.
    """

    isLeaf = True

    def __init__(self, channel: RecordingChannel) -> None:
        super().__init__()
        self.channel = channel

    def render_POST(self, request: Any) -> Any:
        args = request.args or {}
        address = args.get(b"address", [b""])[0].decode("utf-8")
        text = args.get(b"text", [b""])[0].decode("utf-8")
        if self.channel.inbound is None:
            request.setResponseCode(503)
            return b"not listening yet"

        def done(_: Any) -> None:
            request.write(b"taken")
            request.finish()

        ensureDeferred(self.channel.inbound(self.channel.kind, address, text)).addCallback(done)
        return NOT_DONE_YET


def install(kinds: list[str], path: str) -> None:
    """
    Register a recording channel of each of ``kinds`` (run in the server
    process, before twistd reads its settings).
    """
    from distwit.channels import configured

    for kind in kinds:
        def adapter(settings: Any, reactor: Any, kind: str = kind) -> ChannelParts:
            channel = RecordingChannel(kind, path)
            return ChannelParts(channel, resources={f"test-{kind}": InboundResource(channel)})

        configured.ADAPTERS.insert(0, adapter)


def recording_server(data: str, users: list[str], kinds: list[str], password: str,
                     *options: str, host: str = "127.0.0.1") -> tuple[ServerProcess, str]:
    """
    A server process with ``users`` and recording channels of ``kinds``;
    and the file its channels write to.
    """
    os.makedirs(data, exist_ok=True)
    for handle in users:
        done = run_cli("adduser", "--create", handle, "--data", data, stdin=password + "\n")
        assert done.returncode == 0, done.stderr
    path = os.path.abspath(data + "-sent.jsonl")
    open(path, "w").close()
    preamble = f"import tests.device_channels as c; c.install({kinds!r}, {path!r})"
    return ServerProcess(data, *options, host=host, preamble=preamble), path


def sent(path: str) -> list[dict[str, Any]]:
    """
    Everything the server's recording channels sent so far.
    """
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


#: A verification code in a message.
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def code_in(message: dict[str, Any]) -> str | None:
    found = CODE.search(message["text"])
    return found.group(1) if found else None
