"""
Real Twitter client libraries against real distwit servers on loopback.

Each library runs the same smoke sequence (tests/clients/): verify
credentials, post, reply, timelines with since_id and max_id, show, user
lookups, follow and unfollow of a local and a remote user, id lists
through cursors, delete, and the errors for a 141-character post and for
bad credentials.  A library that shares its module name with another runs
in a virtualenv of its own, made (once) under ``.cache/client-venvs``.
"""

from __future__ import annotations

import os
import subprocess
import venv

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT
from tests.test_federation import Federation, acct

CLIENTS = os.path.join(ROOT, "tests", "clients")
VENVS = os.path.join(ROOT, ".cache", "client-venvs")


def client_venv(name: str, *requirements: str) -> str:
    """
    The python of a virtualenv holding ``requirements``, made if missing.
    """
    folder = os.path.join(VENVS, name)
    python = os.path.join(folder, "bin", "python")
    marker = os.path.join(folder, "requirements.txt")
    wanted = "\n".join(requirements)
    if os.path.exists(marker) and open(marker).read() == wanted:
        return python
    venv.EnvBuilder(clear=True, with_pip=True).create(folder)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        check=True,
        timeout=600,
    )
    with open(marker, "w") as f:
        f.write(wanted)
    return python


class PythonTwitterToolsTests(SynchronousTestCase):
    """
    The ``twitter`` package (Python Twitter Tools 1.19) with HTTP Basic on
    the unversioned paths, as JSON and as 2008 XML.
    """

    def setUp(self) -> None:
        self.python = client_venv("ptt", "twitter==1.19.6")
        federation = Federation(self, pings=1)
        self.remote_server = federation.twitter("s2", ["dave"])
        self.federation = federation

    def run_smoke(self, fmt: str) -> None:
        server = self.federation.twitter(f"s1{fmt}", ["alice", "bob", "carol"])
        done = subprocess.run(
            [self.python,
             os.path.join(CLIENTS, "ptt_smoke.py"),
             server.url.split("//", 1)[1], fmt, acct("dave", self.remote_server)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout.count("ok "), 8, done.stdout)
        self.assertNotIn("Traceback", server.log_text())

    def test_json(self) -> None:
        self.run_smoke("json")

    def test_xml(self) -> None:
        self.run_smoke("xml")
