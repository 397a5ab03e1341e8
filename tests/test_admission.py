"""
Admission to the registry: who may be listed as a ping server, and so
take a share of the authors' ping slots.
"""

from __future__ import annotations

import io
import os
import time
from argparse import Namespace
from typing import Any, Generator

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from distwit import cli
from distwit.registry.admission import AdmissionError, approve, describe, revoke
from distwit.registry.service import MAX_PENDING, RegistryService
from tests.processes import ServerProcess, run_cli
from tests.test_registry import K1, K2, K3, P1, P2, RegistryTestCase

EVIL = "https://evil.example"


class ApprovalTestCase(RegistryTestCase):
    """
    A registry with ``admission = approval`` whose own URL is P2 with K2
    (as in ``--role=all``).
    """

    admission = "approval"

    def make_service(self) -> RegistryService:
        return RegistryService(
            self.store,
            self.clock,
            heartbeat_interval=self.interval,
            admission=self.admission,
            own_url=P2,
            own_key=K2,
        )

    def approve(self, url: str, key: str | None = None) -> None:
        self.successResultOf(ensureDeferred(approve(self.store, url, key, self.clock.seconds())))
        self.clock.advance(self.interval)  # the next round reads the approvals


class OneEntryPerAuthorityTests(ApprovalTestCase):
    admission = "open"

    def test_twenty_paths_one_entry(self) -> None:
        """
        Twenty registrations from one authority with twenty paths make one
        entry: the first; the others are refused (409).
        """
        self.register(EVIL + "/0", K1)
        for i in range(1, 20):
            url = f"{EVIL}/{i}"
            self.result(self.post(url, {"public_url": url, "public_key": K1}), 409)
        self.assertEqual(self.urls(), [EVIL + "/0"])

    def test_open_lists_all(self) -> None:
        """
        Open admission lists every ping server that signs, one per
        authority, with no approval.
        """
        self.register(P1, K1)
        self.register(EVIL, K3)
        self.assertEqual(self.urls(), [EVIL, P1])


class ApprovalTests(ApprovalTestCase):
    def test_unapproved_not_listed(self) -> None:
        """
        With approval, a ping server that is not approved is told it is
        pending and is not listed, so it takes no author's ping slots;
        twenty paths of its authority add nothing, not even pending rows.
        """
        answer = self.register(EVIL + "/0", K1)
        self.assertEqual(answer["admission"], "pending")
        for i in range(1, 20):
            url = f"{EVIL}/{i}"
            self.result(self.post(url, {"public_url": url, "public_key": K1}), 409)
        self.assertEqual(self.urls(), [])
        lines = self.successResultOf(ensureDeferred(describe(self.store)))
        self.assertEqual(lines, [f"pending\t{EVIL}/0\t{K1}"])

    def test_approve_then_listed_revoke_then_dropped(self) -> None:
        """
        Approved by the operator, a pending server is listed at its next
        heartbeat; revoked, it leaves the list within an interval and is
        pending again if it keeps asking.
        """
        self.register(P1, K1)
        self.approve(P1)
        self.assertEqual(self.register(P1, K1)["admission"], "listed")
        self.assertEqual(self.urls(), [P1])
        self.successResultOf(ensureDeferred(revoke(self.store, P1)))
        self.clock.advance(self.interval)
        self.assertEqual(self.urls(), [])
        self.assertEqual(self.register(P1, K1)["admission"], "pending")

    def test_key_change_back_to_pending(self) -> None:
        """
        An approved server that comes with another key leaves the list and
        is pending with the new key.
        """
        self.register(P1, K1)
        self.approve(P1)
        self.register(P1, K1)
        self.assertEqual(self.register(P1, K3)["admission"], "pending")
        self.assertEqual(self.urls(), [])
        lines = self.successResultOf(ensureDeferred(describe(self.store)))
        self.assertEqual(lines, [f"pending\t{P1}\t{K3}"])

    def test_approve_needs_a_key_or_a_request(self) -> None:
        """
        Approving a server that never asked needs its key; with the key it
        is listed once it registers.
        """
        failure = self.failureResultOf(
            ensureDeferred(approve(self.store, P1, None, 0.0)), AdmissionError
        )
        self.assertIn("--key", str(failure.value))
        self.approve(P1, K1)
        self.assertEqual(self.register(P1, K1)["admission"], "listed")

    def test_own_ping_server_admitted(self) -> None:
        """
        The process's own ping server (its URL, its key) is listed with no
        approval; another key at that URL is not.
        """
        self.assertEqual(self.register(P2, K2)["admission"], "listed")
        self.assertEqual(self.urls(), [P2])

    def test_own_url_other_key_pending(self) -> None:
        """
        Stating the process's URL with another key earns no free pass.
        """
        self.assertEqual(self.register(P2, K1)["admission"], "pending")
        self.assertEqual(self.urls(), [])

    def test_pending_bounded(self) -> None:
        """
        At most MAX_PENDING servers wait; more are refused (429) until
        some fall silent and are forgotten.
        """
        for i in range(MAX_PENDING):
            self.register(f"https://p{i}.example", K1)
        self.result(self.post(EVIL, {"public_url": EVIL, "public_key": K1}), 429)
        self.clock.advance(self.service.stale_after + self.interval)
        self.assertEqual(self.register(EVIL, K1)["admission"], "pending")


class OpenWarningTests(SynchronousTestCase):
    def test_open_warns(self) -> None:
        """
        A registry started with open admission says so in a warning.
        """
        from twisted.internet.task import Clock

        from distwit.registry.store import MemoryRegistryStore

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service = RegistryService(MemoryRegistryStore(), Clock(), admission="open")
        service.startService()
        self.addCleanup(service.stopService)
        warnings = [e for e in events if "OPEN" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)


class CLITests(TestCase):
    @inlineCallbacks
    def test_approve_list_revoke(self) -> Generator[Deferred[Any], Any, None]:
        """
        ``distwit registry approve --key``, ``list`` and ``revoke`` work on
        the registry's database in the data folder.
        """
        data = self.mktemp()

        def run(*words: str, **more: Any) -> str:
            out = io.StringIO()
            args = Namespace(
                config=None, data=data, database=None, registry_command=words[0], **more
            )
            return_d = ensureDeferred(cli.registry_command(reactor, args, out))
            return return_d.addCallback(lambda _: out.getvalue())  # type: ignore[return-value]

        said = yield run("approve", url=P1 + "/", key=K1)
        self.assertIn(f"approved {P1} with key {K1}", said)
        said = yield run("list")
        self.assertEqual(said, f"approved\t{P1}\t{K1}\n")
        said = yield run("revoke", url=P1)
        self.assertIn(f"revoked {P1}", said)
        said = yield run("list")
        self.assertEqual(said, "")


class EndToEndTests(TestCase):
    timeout = 180

    def test_approve_lists(self) -> None:
        """
        A registry in approval mode does not list a ping server that
        registers until its operator runs ``distwit registry approve``.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        registry_data = os.path.join(base, "registry")
        # Loopback peers allowed (the ping server is one), admission by
        # approval (the default of a server on the internet).
        registry = ServerProcess(
            registry_data, "--role", "registry", "--peers-allow-private", lab=False
        )
        self.addCleanup(registry.stop)
        ping = ServerProcess(
            os.path.join(base, "ping"),
            "--role", "ping", "--registry", registry.url, "--peers-allow-private",
            lab=False,
        )
        self.addCleanup(ping.stop)

        def listed() -> list[str]:
            code, body = registry.request("GET", "/registry/pings")
            self.assertEqual(code, 200)
            return [p["url"] for p in body["pings"]]

        deadline = time.monotonic() + 60
        while True:
            result = run_cli("registry", "list", "--data", registry_data)
            if ping.url in result.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertIn(f"pending\t{ping.url}", result.stdout)
        self.assertEqual(listed(), [])
        result = run_cli("registry", "approve", ping.url, "--data", registry_data)
        self.assertEqual(result.returncode, 0, result.stderr)
        while ping.url not in listed() and time.monotonic() < deadline + 60:
            time.sleep(0.5)
        self.assertEqual(listed(), [ping.url])

