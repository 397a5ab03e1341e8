"""
Start-up errors of ``twistd distwit`` (issue 17): a port in use, a bad
``--listen``, an unusable key, a database that cannot be opened: each one
sentence on standard error, a non-zero exit status, no traceback, and
nothing created in the data folder.  And ``distwit adduser`` makes a new
database only with ``--create``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import child_environment, run_cli

PASSWORD = "correct horse battery staple"


def twistd(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "-n", "--pidfile=", "distwit", *args],
        capture_output=True, text=True, cwd=cwd, env=child_environment(), timeout=120,
    )


class StartupErrorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.data = os.path.join(self.base, "data")

    def refused(self, *args: str, says: str, data: str | None = None) -> None:
        """
        The server does not start: status non-zero, one line on stderr that
        says ``says``, no traceback, nothing on stdout, and no data folder
        (or, for one that was there, nothing new in it).
        """
        data = data or self.data
        before = sorted(os.listdir(data)) if os.path.exists(data) else None
        done = twistd("--data", data, *args, cwd=self.base)
        self.assertNotEqual(done.returncode, 0, done.stdout + done.stderr)
        lines = done.stderr.splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertTrue(lines[0].startswith("distwit: "), lines[0])
        self.assertIn(says, lines[0])
        self.assertNotIn("Traceback", done.stderr + done.stdout)
        after = sorted(os.listdir(data)) if os.path.exists(data) else None
        self.assertEqual(after, before)

    def test_port_in_use(self) -> None:
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            self.refused("--listen", f"tcp:{port}:interface=127.0.0.1", says="in use")

    def test_bad_listen(self) -> None:
        self.refused("--listen", "tcp:notaport", says="cannot listen on 'tcp:notaport'")
        self.refused("--listen", "carrier-pigeon:80", says="cannot listen on")

    def test_unusable_key(self) -> None:
        os.makedirs(self.data)
        with open(os.path.join(self.data, "server-key.pem"), "w") as f:
            f.write("not a key\n")
        self.refused("--listen", "tcp:0", says="cannot use the server key")

    def test_key_is_a_folder(self) -> None:
        os.makedirs(os.path.join(self.data, "server-key.pem"))
        self.refused("--listen", "tcp:0", says="server key")

    def test_config_with_a_database_that_cannot_be_opened(self) -> None:
        config = os.path.join(self.base, "server.ini")
        with open(config, "w") as f:
            f.write("[server]\ndatabase = sqlite:/nonexistent/folder/db.sqlite3\n")
        self.refused("--config", config, "--listen", "tcp:0", says="/nonexistent/folder")

    def test_postgresql_database_missing(self) -> None:
        # Nothing answers on this port: the database cannot be opened.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.refused(
            "--listen", "tcp:0",
            "--database", f"postgresql://nobody@127.0.0.1:{port}/nothing",
            says="cannot open the PostgreSQL database",
        )

    def test_bad_database_setting(self) -> None:
        self.refused("--listen", "tcp:0", "--database", "oracle://x", says="oracle://x")


class AddUserDatabaseTests(SynchronousTestCase):
    def test_create_needed(self) -> None:
        """
        ``distwit adduser`` without ``--create`` refuses a missing database
        (naming it) and creates nothing; with it, it creates the database and
        says which; then it adds to that database without ``--create``.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        data = os.path.join(base, "data")
        database = os.path.join(data, "distwit.sqlite3")
        done = run_cli("adduser", "zed", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"no distwit database at {database}", done.stderr)
        self.assertIn("--create", done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertFalse(os.path.exists(data))
        done = run_cli("adduser", "zed", "--create", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, f"created user zed (id 1) in {database}\n")
        done = run_cli("adduser", "amy", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.stdout, f"created user amy (id 2) in {database}\n")

    def test_config_paths_relative_to_the_file(self) -> None:
        """
        The issue's case: ``distwit adduser zed --config conf/twitter1.ini``
        run from another folder writes into the database the config file
        names (its relative data folder is the file's folder's), not into a
        new empty one.
        """
        base = os.path.abspath(self.mktemp())
        conf = os.path.join(base, "conf")
        os.makedirs(conf)
        with open(os.path.join(conf, "twitter1.ini"), "w") as f:
            f.write("[server]\nrole = twitter\ndata = ../state/twitter1\n")
        done = run_cli("adduser", "amy", "--create", "--config", "conf/twitter1.ini",
                       stdin=PASSWORD + "\n", cwd=base)
        self.assertEqual(done.returncode, 0, done.stderr)
        database = os.path.join(base, "state", "twitter1", "distwit.sqlite3")
        self.assertIn(f"in {database}", done.stdout)
        elsewhere = os.path.join(base, "elsewhere")
        os.makedirs(elsewhere)
        done = run_cli("adduser", "zed", "--config", "../conf/twitter1.ini",
                       stdin=PASSWORD + "\n", cwd=elsewhere)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, f"created user zed (id 2) in {database}\n")
        self.assertEqual(os.listdir(elsewhere), [])
