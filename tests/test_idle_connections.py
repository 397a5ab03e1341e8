"""
20,000 idle connections against a real server: it keeps answering other
clients, and closes every idle one itself, before they exhaust it.

The server (a real ``twistd distwit``) runs with a short idle timeout and
a connection cap.  Helper processes (this module run as a program: one
process can hold fewer sockets than the file limit allows it) open the
idle connections from 127.0.0.2 to 127.0.0.9, so the ephemeral ports of
no one source address run out, and never send a byte; each reports when
its connections are made and, at the end, when the server closed each of
them.  Meanwhile the test asks ``/health`` and posts, as any client
would, from 127.0.0.1.
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlencode

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT, ServerProcess, child_environment, free_port, run_cli

#: Idle connections opened, and the loopback addresses they come from.
IDLE = 20_000
SOURCES = [f"127.0.0.{n}" for n in range(2, 10)]

#: The server's limits in this test.
#: (The idle timeout is longer than the server takes to accept and refuse
#: the whole flood, so the cap is reached once, as an operator would see
#: it under one flood.)
IDLE_TIMEOUT = 5.0
MAX_CONNECTIONS = 5_000

#: The most one helper process opens (it needs a few more descriptors).
PER_HELPER = 5_000

#: Seconds everything may take: the connections made, answers given, idle
#: connections closed (about 15 on a quiet machine of two cores; the
#: deadline is for a busy one).
DEADLINE = 60.0

PASSWORD = "correct horse battery staple"


def helper_plan(hard_limit: int) -> list[list[tuple[str, int]]] | str:
    """
    How the idle connections are shared among helper processes, each a
    list of ``(source address, connections)``; or why it cannot be done
    under a file limit of ``hard_limit``.
    """
    per_helper = min(PER_HELPER, hard_limit - 64)
    if per_helper < 500:
        return (
            f"the hard limit of open files (RLIMIT_NOFILE) is {hard_limit}: too low for "
            f"helpers to hold {IDLE} idle connections in a few processes"
        )
    per_source = IDLE // len(SOURCES)
    plan: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    room = per_helper
    for source in SOURCES:
        left = per_source
        while left:
            take = min(left, room)
            current.append((source, take))
            left -= take
            room -= take
            if not room:
                plan.append(current)
                current, room = [], per_helper
    if current:
        plan.append(current)
    return plan


def hold_idle(
    port: int, plan: list[tuple[str, int]], quiet: float, deadline: float
) -> dict[str, Any]:
    """
    Open the connections of ``plan`` to ``127.0.0.1:port``, say so on
    standard output, and wait until the server has closed them all or
    ``deadline`` (``time.monotonic()``) passes: when each was closed.

    A connection can look open here that the server never had: in a
    flood, the server's kernel completes a handshake with a SYN cookie and
    then drops it when the server's queue of connections to accept is
    full.  So once nothing has been closed for ``quiet`` seconds, one byte
    is sent on each connection still open ("poked"): one the server's
    kernel does not know is reset (or made at last, from the cookie), one
    the server holds is a request that must arrive within its timeout;
    either way the server closes it.
    """
    selector = selectors.DefaultSelector()
    connecting = 0
    failed: list[str] = []
    for source, count in plan:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((source, 0))
            code = s.connect_ex(("127.0.0.1", port))
            if code not in (0, errno.EINPROGRESS):
                failed.append(os.strerror(code))
                s.close()
                continue
            selector.register(s, selectors.EVENT_WRITE)
            connecting += 1
    connected = 0
    closed: list[float] = []
    announced = False
    poked = 0
    last_closed = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        if not connecting and not announced:
            print(json.dumps({"connected": connected, "failed": failed}), flush=True)
            announced = True
            last_closed = max(last_closed, time.monotonic())
        if announced and not poked and time.monotonic() - last_closed > quiet:
            for key in selector.get_map().values():
                poked += 1
                try:
                    key.fileobj.send(b"G")  # type: ignore[union-attr]
                except OSError:
                    pass
        for key, _ in selector.select(timeout=0.2):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if key.events == selectors.EVENT_WRITE:
                connecting -= 1
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    failed.append(os.strerror(code))
                    selector.unregister(s)
                    s.close()
                else:
                    connected += 1
                    selector.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(1)
            except OSError:  # reset: closed too
                data = b""
            if not data:
                last_closed = time.monotonic()
                closed.append(last_closed)
                selector.unregister(s)
                s.close()
    if not announced:
        print(json.dumps({"connected": connected, "failed": failed}), flush=True)
    still_open = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return {"closed": closed, "still_open": still_open, "poked": poked}


class IdleConnectionTests(SynchronousTestCase):
    def setUp(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        plan = helper_plan(hard)
        if isinstance(plan, str):
            self.skipTest(plan)
        self.plan = plan
        # The helpers and the server inherit the raised limit.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.helpers: list[subprocess.Popen[str]] = []
        self.addCleanup(self.stop_helpers)

    def stop_helpers(self) -> None:
        for helper in self.helpers:
            if helper.poll() is None:
                helper.kill()
            helper.wait()
            assert helper.stdout is not None
            helper.stdout.close()

    def start_server(self) -> ServerProcess:
        data = os.path.abspath(self.mktemp())
        os.makedirs(data)
        done = run_cli("adduser", "--create", "alice", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        config = os.path.join(data, "..", "idle.ini")
        with open(config, "w") as f:
            f.write(
                "[server]\n"
                f"idle_timeout = {IDLE_TIMEOUT:g}\n"
                f"max_connections = {MAX_CONNECTIONS}\n"
                "[twitter]\n"
                "rate_limit_address_reads = 100000\n"
                "rate_limit_address_writes = 100000\n"
            )
        port = free_port()
        # A listen queue as deep as the system allows (Twisted's default is
        # 50), so a flood of connections is queued, not dropped and retried.
        server = ServerProcess(
            data, "--config", config, "--listen",
            f"tcp:{port}:interface=127.0.0.1:backlog=4096", port=port,
        )
        self.addCleanup(server.stop)
        return server

    def ask(self, server: ServerProcess, method: str, path: str,
            form: dict[str, str] | None = None) -> tuple[float, int]:
        """
        Ask until answered, as a client whose connection was refused asks
        again: when the answer came, and its status.
        """
        token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        deadline = time.monotonic() + DEADLINE
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                return time.monotonic(), response.status
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                connection.close()

    def test_idle_connections_closed(self) -> None:
        """
        20,000 connections that never send a byte, against a server with
        a 5 s idle timeout and a cap of 5,000 connections: while they are
        held, ``/health`` and a post are answered; the server closes every
        one of them itself, within the deadline; the cap is logged once,
        and the server never runs out of file descriptors.  (Except a few
        the server's kernel may drop when its queue of connections to
        accept overflows: see :func:`hold_idle`.)
        """
        server = self.start_server()
        started = time.monotonic()
        for plan in self.plan:
            spec = ",".join(f"{source}:{count}" for source, count in plan)
            self.helpers.append(subprocess.Popen(
                [sys.executable, "-m", "tests.test_idle_connections",
                 str(server.port), spec, str(3 * IDLE_TIMEOUT), str(DEADLINE)],
                cwd=ROOT, env=child_environment(), stdout=subprocess.PIPE, text=True,
            ))
        made = []
        for helper in self.helpers:
            assert helper.stdout is not None
            line = helper.stdout.readline()
            self.assertTrue(line, "a helper ended before making its connections")
            made.append(json.loads(line))
        self.assertEqual([m["failed"] for m in made], [[]] * len(made))
        self.assertEqual(sum(m["connected"] for m in made), IDLE)

        health_at, health = self.ask(server, "GET", "/health")
        _, posted = self.ask(server, "POST", "/1.1/statuses/update.json",
                             {"status": "still answering"})
        self.assertEqual((health, posted), (200, 200))

        closed: list[float] = []
        poked = still_open = 0
        for helper in self.helpers:
            assert helper.stdout is not None
            result = json.loads(helper.stdout.read())
            self.assertEqual(helper.wait(DEADLINE), 0)
            still_open += result["still_open"]
            poked += result["poked"]
            closed.extend(result["closed"])
        self.assertEqual((still_open, len(closed)), (0, IDLE), f"{poked} poked")
        # Those the server's kernel dropped in the flood (see hold_idle)
        # are a share that grows with the machine's load (about 2% on a
        # quiet one, 5 to 11% with other suites running beside); every
        # other one the server closed while it was idle.  A server that did
        # not close idle connections would leave nearly all of them to be
        # poked: a quarter is far from both.
        self.assertLess(poked, IDLE // 4)
        # Answered while idle connections were still open.
        self.assertTrue(any(t > health_at for t in closed),
                        (health_at - started, max(closed) - started))
        self.assertLess(max(closed) - started, DEADLINE)

        code, body = server.request("GET", "/health")
        self.assertEqual(code, 200)
        log = server.log_text()
        self.assertEqual(log.count("refusing new connections"), 1, log[-3000:])
        self.assertNotIn("Too many open files", log)
        self.assertNotIn("EMFILE", log)


def main(argv: list[str]) -> int:
    port, spec, quiet, seconds = argv
    plan = [(source, int(count)) for source, count in
            (part.split(":") for part in spec.split(","))]
    result = hold_idle(int(port), plan, float(quiet), time.monotonic() + float(seconds))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
