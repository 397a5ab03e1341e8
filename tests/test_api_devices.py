"""
Phones, IM and e-mail through the API (docs/design/devices.md, issue 18):
``account/update_delivery_device``, ``notifications/follow|leave``, the
``notifications`` field of user objects, ``account/settings`` and
distwit's ``account/devices/...``.

A real 2008 client (Python Twitter Tools, which names these endpoints
itself) drives real server processes whose SMS channel records what it
sends (tests/device_channels.py): the code it reads there verifies the
phone, and friends' posts, local and remote, arrive as SMS.
"""

from __future__ import annotations

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.device_channels import recording_server
from tests.processes import ROOT
from tests.test_clients import CLIENTS, client_venv
from tests.test_federation import PASSWORD, Federation


class PythonTwitterToolsDeviceTests(SynchronousTestCase):
    """
    The ``twitter`` package (Python Twitter Tools 1.19) with HTTP Basic on
    the unversioned paths, as JSON and as 2008 XML.
    """

    def setUp(self) -> None:
        self.python = client_venv("ptt", "twitter==1.19.6")
        self.federation = Federation(self, pings=1)
        self.remote = self.federation.twitter("s2", ["dave"])

    def run_client(self, fmt: str) -> None:
        base = self.federation.base
        server, sent_log = recording_server(
            os.path.join(base, f"s1{fmt}"), ["alice", "bob", "carol"], ["sms", "im"], PASSWORD,
            "--role", "twitter", "--registry", self.federation.registry.url,
            "--ping-interval", "1", "--long-poll", "0",
        )
        self.addCleanup(server.stop)
        done = subprocess.run(
            [self.python, os.path.join(CLIENTS, "ptt_devices.py"),
             server.url.split("//", 1)[1], fmt, sent_log, self.remote.url.split("//", 1)[1]],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout.count("ok "), 7, done.stdout)
        self.assertNotIn("Traceback", server.log_text())

    def test_json(self) -> None:
        """
        The whole of phones through the API, in JSON: refusals without a
        verified phone, the code, delivery, notifications of a local and a
        remote friend, settings, removal.
        """
        self.run_client("json")

    def test_xml(self) -> None:
        """
        The same, in the 2008 XML.
        """
        self.run_client("xml")
