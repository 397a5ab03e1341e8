"""
The outbound policy, end to end: a server on the internet's defaults is
no port scanner for strangers.

Real processes and a real listening port on loopback, because the point is
which connections are made.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request

from twisted.trial.unittest import TestCase

from distwit.s2s import paths
from distwit.s2s.keys import ServerKey
from distwit.s2s.signatures import sign_request
from tests.processes import ServerProcess, free_port


class Listener:
    """
    A TCP port on loopback that notes whether anyone connected to it (the
    kernel queues connections in the backlog even if nobody accepts).
    """

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                connection, _ = self.socket.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def close(self) -> None:
        self.socket.close()


class StrangersTests(TestCase):
    """
    A twitter server with the defaults (no ``--peers-allow-private``).
    """

    def setUp(self) -> None:
        self.server = ServerProcess(self.mktemp(), "--role", "twitter", lab=False)
        self.addCleanup(self.server.stop)
        self.listener = Listener()
        self.addCleanup(self.listener.close)
        self.closed_port = free_port()

    def same_answers(self, open_answer: tuple[int, str], closed_answer: tuple[int, str]) -> None:
        """
        The two answers differ in nothing but the port named.
        """
        code, text = open_answer
        self.assertEqual(
            (code, text.replace(str(self.listener.port), "PORT")),
            (closed_answer[0], closed_answer[1].replace(str(self.closed_port), "PORT")),
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.server.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post_signed(self, key_id: str) -> tuple[int, str]:
        url = paths.follow_url(self.server.url)
        body = b'{"type":"follow"}'
        headers = sign_request(
            ServerKey.generate(), key_id, "POST", url, body, time.time(),
            os.urandom(8).hex(),
        )
        headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_users_show_of_a_loopback_acct(self) -> None:
        """
        ``users/show`` of ``x@127.0.0.1:PORT``, asked by anyone, connects to
        nothing, and answers alike whether the port is open or closed.
        """
        open_answer = self.get(
            f"/1.1/users/show.json?screen_name=x@127.0.0.1:{self.listener.port}"
        )
        closed_answer = self.get(
            f"/1.1/users/show.json?screen_name=x@127.0.0.1:{self.closed_port}"
        )
        self.assertEqual(self.listener.connections(), 0)
        self.assertEqual(open_answer[0], 502, open_answer)
        self.same_answers(open_answer, closed_answer)

    def test_keyid_at_a_loopback_port(self) -> None:
        """
        A request signed with a ``keyid`` on a loopback port makes the
        verifier connect to nothing, and the 401 is the same for an open
        and a closed port, saying nothing of either.
        """
        open_answer = self.post_signed(f"http://127.0.0.1:{self.listener.port}")
        closed_answer = self.post_signed(f"http://127.0.0.1:{self.closed_port}")
        self.assertEqual(self.listener.connections(), 0)
        self.assertEqual(open_answer[0], 401, open_answer)
        self.same_answers(open_answer, closed_answer)
        self.assertEqual(
            json.loads(open_answer[1]),
            {"error": f"cannot get the key of http://127.0.0.1:{self.listener.port}"},
        )
