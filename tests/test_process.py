"""
End to end: real ``twistd -n distwit`` processes on 127.0.0.1, the
``distwit`` command beside them, a kill -9 in the middle.
"""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli
from tests.support import POSTGRES_SKIP, postgres_url, wipe_postgres

PASSWORD = "correct horse battery"


class RoleTests(SynchronousTestCase):
    def test_each_role_alone(self) -> None:
        """
        --role=ping, --role=registry and --role=twitter each start alone and
        answer /health naming their role.
        """
        for role in ("ping", "registry", "twitter"):
            server = ServerProcess(self.mktemp(), "--role", role)
            try:
                code, body = server.request("GET", "/health")
                self.assertEqual((code, body["role"], body["roles"]), (200, role, [role]))
            finally:
                server.stop()
            # twistd re-raises the SIGTERM it stopped for, once shut down.
            self.assertIn(server.process.returncode, (0, -15), server.log_text())
            self.assertIn("Server Shut Down.", server.log_text())
            self.assertNotIn("Traceback", server.log_text())


class AddUserTests(SynchronousTestCase):
    def test_adduser(self) -> None:
        """
        distwit adduser takes the password from a file or standard input,
        and refuses a taken handle, a bad handle and a short password with a
        message and exit status 1.
        """
        data = self.mktemp()
        password_file = self.mktemp()
        with open(password_file, "w") as f:
            f.write(PASSWORD + "\n")
        done = run_cli(
            "adduser", "--create", "alice", "--data", data, "--password-file", password_file
        )
        database = os.path.join(os.path.abspath(data), "distwit.sqlite3")
        self.assertEqual(
            (done.returncode, done.stdout), (0, f"created user alice (id 1) in {database}\n")
        )
        done = run_cli("adduser", "--create", "bob", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        for args, stdin, message in [
            (["Alice"], PASSWORD, "taken"),
            (["no-dashes"], PASSWORD, "letters, digits or underscores"),
            (["carol"], "short", "at least 8 characters"),
            (["carol", "--database", "oracle://x"], PASSWORD, "oracle://x"),
            (["carol", "--password-file", "/nonexistent"], "", "/nonexistent"),
        ]:
            done = run_cli("adduser", "--create", *args, "--data", data, stdin=stdin + "\n")
            self.assertEqual(done.returncode, 1, (args, done.stdout, done.stderr))
            self.assertIn(message, done.stderr)
            self.assertNotIn("Traceback", done.stderr)


class DurabilityTestsMixin:
    """
    kill -9 in the middle of posting, on one engine.
    """

    def database_options(self) -> list[str]:
        return []

    def stored_sequence(self, data: str) -> list[int]:
        raise NotImplementedError()

    def test_kill_and_restart(self) -> None:
        """
        Every post acknowledged before a kill -9 is there after a restart,
        and new posts continue the author's sequence without a gap.
        """
        data = os.path.abspath(self.mktemp())
        options = self.database_options()
        done = run_cli(
            "adduser", "--create", "alice", "--data", data, *options, stdin=PASSWORD + "\n"
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        server = ServerProcess(data, *options)
        auth = ("alice", PASSWORD)

        def post(i: int) -> int | None:
            code, body = server.request(
                "POST", "/1.1/statuses/update.json", auth, {"status": f"post number {i}"}
            )
            return body["id"] if code == 200 else None

        try:
            with ThreadPoolExecutor(8) as pool:
                acknowledged = [i for i in pool.map(post, range(60)) if i is not None]
        finally:
            server.kill()
        self.assertEqual(len(acknowledged), 60)

        server = ServerProcess(data, *options)
        try:
            code, timeline = server.request(
                "GET", "/1.1/statuses/user_timeline.json?screen_name=alice&count=200"
            )
            self.assertEqual(code, 200)
            self.assertEqual(sorted(s["id"] for s in timeline), sorted(acknowledged))
            code, after = server.request(
                "POST", "/1.1/statuses/update.json", auth, {"status": "after the crash"}
            )
            self.assertEqual(code, 200)
            self.assertGreater(after["id"], max(acknowledged))
        finally:
            server.stop()
        self.assertEqual(self.stored_sequence(data), list(range(1, 62)))


class SQLiteDurabilityTests(DurabilityTestsMixin, SynchronousTestCase):
    def stored_sequence(self, data: str) -> list[int]:
        with sqlite3.connect(os.path.join(data, "distwit.sqlite3")) as db:
            return [row[0] for row in db.execute("SELECT seq FROM posts ORDER BY id")]


class PostgresDurabilityTests(DurabilityTestsMixin, SynchronousTestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def database_options(self) -> list[str]:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return ["--database", url]

    def stored_sequence(self, data: str) -> list[int]:
        import psycopg

        with psycopg.connect(postgres_url()) as db:
            return [row[0] for row in db.execute("SELECT seq FROM posts ORDER BY id")]


class TourTests(SynchronousTestCase):
    def test_readme_tour(self) -> None:
        """
        The README's tour with a real server: post, read home, user and
        public timelines, follow, unfollow, delete; a 141-character post
        gets 186 and stores nothing.
        """
        data = os.path.abspath(self.mktemp())
        for handle in ("alice", "bob"):
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.assertEqual(done.returncode, 0, done.stderr)
        server = ServerProcess(data)
        alice, bob = ("alice", PASSWORD), ("bob", PASSWORD)
        try:
            code, hello = server.request(
                "POST", "/1.1/statuses/update.json", alice, {"status": "Hello, world"}
            )
            self.assertEqual(code, 200)
            code, body = server.request(
                "POST", "/1.1/friendships/create.json", bob, {"screen_name": "alice"}
            )
            self.assertEqual((code, body["followers_count"]), (200, 1))
            code, home = server.request("GET", "/1.1/statuses/home_timeline.json", bob)
            self.assertEqual([s["text"] for s in home], ["Hello, world"])
            code, user = server.request("GET", "/statuses/user_timeline.json?screen_name=alice")
            self.assertEqual([s["id"] for s in user], [hello["id"]])
            code, public = server.request("GET", "/api/statuses/public_timeline.json")
            self.assertEqual([s["id"] for s in public], [hello["id"]])
            code, body = server.request(
                "POST", "/1.1/statuses/update.json", alice, {"status": "x" * 141}
            )
            self.assertEqual((code, body["errors"][0]["code"]), (403, 186))
            code, body = server.request(
                "POST", "/1.1/friendships/destroy.json", bob, {"screen_name": "alice"}
            )
            self.assertEqual((code, body["followers_count"]), (200, 0))
            code, home = server.request("GET", "/1.1/statuses/home_timeline.json", bob)
            self.assertEqual(home, [])
            code, _ = server.request(
                "POST", f"/1.1/statuses/destroy/{hello['id']}.json", alice
            )
            self.assertEqual(code, 200)
            code, public = server.request("GET", "/1.1/statuses/public_timeline.json")
            self.assertEqual(public, [])
            code, me = server.request("GET", "/1.1/account/verify_credentials.json", alice)
            self.assertEqual(me["statuses_count"], 0)
            self.assertNotIn("Traceback", server.log_text())
        finally:
            server.stop()
