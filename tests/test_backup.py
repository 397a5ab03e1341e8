"""
``distwit backup`` and ``distwit restore`` with real servers in real
processes: a backup taken while a client posts without pause holds every
post acknowledged before it began, the keys come back the same, and a
server started on the restored folder works.  With ``DISTWIT_TEST_POSTGRES``
the same on PostgreSQL (``pg_dump``/``pg_restore``), into a database of its
own.  And what restore refuses, in one sentence each.
"""

from __future__ import annotations

import hashlib
import json
import io
import os
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from distwit.store.schema import TWITTER
from distwit.backup import Progress, copy_sqlite, newest_version

from tests.processes import ServerProcess, run_cli
from tests.support import POSTGRES_SKIP, postgres_url, wipe_postgres

PASSWORD = "correct horse battery"

#: No limit of the API's in the way of a client posting without pause.
UNLIMITED = """\
[twitter]
daily_post_limit = 1000000
rate_limit_writes = 1000000
rate_limit_reads = 1000000
rate_limit_address_writes = 1000000
rate_limit_address_reads = 1000000
"""


class Writer(threading.Thread):
    """
    A client posting as fast as the server answers, keeping the id of every
    post acknowledged, with the time the acknowledgement arrived.
    """

    def __init__(self, server: ServerProcess, user: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.user = user
        self.acknowledged: list[tuple[float, int, str]] = []
        self.failures: list[Any] = []
        self.finish = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.finish.is_set():
            n += 1
            text = f"under load {n}"
            try:
                code, body = self.server.request(
                    "POST", "/1.1/statuses/update.json", auth=(self.user, PASSWORD),
                    data={"status": text},
                )
            except OSError as e:
                self.failures.append(e)
                continue
            if code == 200:
                self.acknowledged.append((time.monotonic(), int(body["id"]), text))
            else:
                self.failures.append((code, body))

    def count(self) -> int:
        return len(self.acknowledged)

    def stop(self) -> None:
        self.finish.set()
        self.join(60)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def cli_ok(case: SynchronousTestCase, *args: str, stdin: str = "") -> str:
    done = run_cli(*args, stdin=stdin)
    case.assertEqual(done.returncode, 0, f"distwit {' '.join(args)}: {done.stderr}")
    return done.stdout


def timeline_ids(server: ServerProcess, user: str) -> set[int]:
    """
    The ids of every post of ``user``, read page by page as a client would.
    """
    ids: set[int] = set()
    max_id = ""
    while True:
        code, page = server.request(
            "GET",
            f"/1.1/statuses/user_timeline.json?screen_name={user}&count=200{max_id}",
            auth=(user, PASSWORD),
        )
        assert code == 200, (code, page)
        fresh = {int(status["id"]) for status in page} - ids
        if not fresh:
            return ids
        ids |= fresh
        max_id = f"&max_id={min(fresh) - 1}"


def keys_of(server: ServerProcess) -> tuple[Any, Any]:
    """
    What other servers and relying parties know this server by: its
    signing key (the metadata document) and its ID-token keys (JWKS).
    """
    code, metadata = server.request("GET", "/.well-known/distwit")
    assert code == 200, metadata
    code, jwks = server.request("GET", "/oidc/jwks")
    assert code == 200, jwks
    return metadata["public_key"], jwks


class BackupUnderLoad:
    """
    The scenario, for either engine: ``database`` is the source server's
    ``--database`` (``None``: SQLite), ``restored_database`` the restored
    one's.
    """

    database: str | None = None
    restored_database: str | None = None

    def database_options(self, url: str | None) -> tuple[str, ...]:
        return () if url is None else ("--database", url)

    def test_backup_under_load_restored(self) -> None:
        """
        While a client posts without pause, ``distwit backup`` copies the
        running server; restored into a fresh data folder, a server started
        on it shows every post acknowledged before the backup began, has
        the same server key and ID-token keys, and takes and shows a new
        post.
        """
        case: Any = self
        base = os.path.abspath(case.mktemp())
        os.makedirs(base)
        config = os.path.join(base, "unlimited.ini")
        with open(config, "w") as f:
            f.write(UNLIMITED)
        source = os.path.join(base, "source")
        options = ("--config", config, *self.database_options(self.database))
        server = ServerProcess(source, *options)
        case.addCleanup(server.stop)
        cli_ok(case, "adduser", "--create", "alice", "--data", source,
               *self.database_options(self.database), stdin=PASSWORD + "\n")
        keys = keys_of(server)

        writer = Writer(server, "alice")
        writer.start()
        case.addCleanup(writer.stop)
        wait_until(lambda: writer.count() >= 20, 60, "20 posts acknowledged")
        started = time.monotonic()
        before = {post_id for at, post_id, _ in writer.acknowledged if at < started}
        destination = os.path.join(base, "backup.tar.gz")
        out = cli_ok(case, "backup", destination, "--data", source,
                     *self.database_options(self.database))
        finished = time.monotonic()
        written_during = writer.count() - len(before)
        wait_until(lambda: any(at > finished for at, _, _ in writer.acknowledged), 60,
                   "a post acknowledged after the backup")
        writer.stop()
        server.stop()
        case.assertEqual(writer.failures, [])
        case.assertIn("backed up to", out)
        # It holds the server's private keys: its owner's only.
        case.assertEqual(os.stat(destination).st_mode & 0o777, 0o600)
        case.assertGreater(written_during, 0, "no post was written while the backup ran")

        restored = os.path.join(base, "restored")
        out = cli_ok(case, "restore", destination, "--data", restored,
                     *self.database_options(self.restored_database))
        case.assertIn("restored into", out)
        again = ServerProcess(restored, "--config", config,
                              *self.database_options(self.restored_database))
        case.addCleanup(again.stop)
        held = timeline_ids(again, "alice")
        missing = before - held
        case.assertEqual(missing, set(), f"{len(missing)} acknowledged posts lost")
        # Nothing the backup holds was made up: every post is one a client
        # was (or was about to be) told of.
        every = {post_id for _, post_id, _ in writer.acknowledged}
        case.assertLessEqual(len(held - every), 1)
        case.assertEqual(keys_of(again), keys)

        code, body = again.request(
            "POST", "/1.1/statuses/update.json", auth=("alice", PASSWORD),
            data={"status": "after the restore"},
        )
        case.assertEqual(code, 200, body)
        code, shown = again.request("GET", f"/1.1/statuses/show/{body['id']}.json")
        case.assertEqual((code, shown["text"]), (200, "after the restore"))


class SQLiteBackupTests(BackupUnderLoad, SynchronousTestCase):
    """
    The default engine: SQLite in the data folder, copied online.
    """


class PostgresBackupTests(BackupUnderLoad, SynchronousTestCase):
    """
    PostgreSQL: the database of ``DISTWIT_TEST_POSTGRES`` backed up with
    pg_dump, restored with pg_restore into a database of its own (that
    name with ``_restored``), made and dropped here.
    """

    def setUp(self) -> None:
        url = postgres_url()
        if url is None:
            raise SkipTest(POSTGRES_SKIP)
        import psycopg

        wipe_postgres(url)
        parts = urlsplit(url)
        name = parts.path.lstrip("/") + "_restored"
        self.database = url
        self.restored_database = urlunsplit(parts._replace(path="/" + name))
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        self.addCleanup(drop)


class RestoreRefusalTests(SynchronousTestCase):
    """
    What ``distwit restore`` refuses: exit status 1, one line naming the
    problem, and the target untouched.
    """

    def setUp(self) -> None:
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.base = base
        source = os.path.join(base, "source")
        server = ServerProcess(source)
        self.addCleanup(server.stop)
        cli_ok(self, "adduser", "--create", "alice", "--data", source, stdin=PASSWORD + "\n")
        code, _ = server.request("POST", "/1.1/statuses/update.json",
                                 auth=("alice", PASSWORD), data={"status": "kept"})
        self.assertEqual(code, 200)
        self.backup = os.path.join(base, "backup")
        cli_ok(self, "backup", self.backup, "--data", source)

    def refused(self, *args: str) -> str:
        done = run_cli(*args)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        return lines[0]

    def test_non_empty_folder(self) -> None:
        """
        A data folder that holds anything is refused without ``--force``
        and left as it was; with ``--force`` the backup replaces it.
        """
        target = os.path.join(self.base, "busy")
        os.makedirs(target)
        with open(os.path.join(target, "server-key.pem"), "w") as f:
            f.write("someone else's key\n")
        line = self.refused("restore", self.backup, "--data", target)
        self.assertEqual(
            line,
            f"distwit: the data folder {os.path.abspath(target)} is not empty: restore into"
            " an empty folder, or add --force to replace what it holds (stop the server"
            " first)",
        )
        self.assertEqual(os.listdir(target), ["server-key.pem"])
        cli_ok(self, "restore", self.backup, "--data", target, "--force")
        with open(os.path.join(target, "server-key.pem")) as f:
            self.assertIn("PRIVATE KEY", f.read())

    def test_newer_schema(self) -> None:
        """
        A backup of a database a newer distwit has migrated is refused,
        saying which version it is and which this distwit knows.
        """
        newer = newest_version(TWITTER) + 1
        database = os.path.join(self.backup, "distwit.sqlite3")
        connection = sqlite3.connect(database)
        connection.execute(
            "INSERT INTO schema_version (version, name) VALUES (?, 'later.sql')", (newer,)
        )
        connection.commit()
        connection.close()
        manifest_path = os.path.join(self.backup, "manifest.json")
        with open(manifest_path) as f:
            manifest = json.load(f)
        manifest["schema_versions"]["twitter"] = newer
        manifest["distwit_version"] = "9.0"
        with open(database, "rb") as f:
            manifest["files"]["distwit.sqlite3"]["sha256"] = hashlib.sha256(f.read()).hexdigest()
        with open(manifest_path, "w") as f:
            json.dump(manifest, f)
        target = os.path.join(self.base, "fresh")
        line = self.refused("restore", self.backup, "--data", target)
        self.assertEqual(
            line,
            f"distwit: the backup is at version {newer} of the twitter role's schema, newer"
            f" than this distwit (version {newer - 1}, distwit 0.1.0) knows: restore it with"
            " distwit 9.0 or newer",
        )
        self.assertFalse(os.path.exists(target))

    def test_damaged_or_not_a_backup(self) -> None:
        """
        A file of the backup that changed since it was taken, a folder that
        is no backup, an existing destination and one inside the data folder
        are refused.
        """
        with open(os.path.join(self.backup, "data", "web-secret"), "ab") as f:
            f.write(b"x")
        self.assertEqual(
            self.refused("restore", self.backup, "--data", os.path.join(self.base, "a")),
            "distwit: data/web-secret is damaged (its SHA-256 differs from the manifest's)",
        )
        empty = os.path.join(self.base, "empty")
        os.makedirs(empty)
        self.assertEqual(
            self.refused("restore", empty, "--data", os.path.join(self.base, "b")),
            "distwit: there is no manifest.json in it: it is not a distwit backup",
        )
        self.assertEqual(
            self.refused("backup", self.backup, "--data", os.path.join(self.base, "source")),
            f"distwit: {os.path.abspath(self.backup)} already exists: name a new folder or"
            " .tar.gz file",
        )
        source = os.path.join(self.base, "source")
        self.assertEqual(
            self.refused("backup", os.path.join(source, "b.tar.gz"), "--data", source),
            f"distwit: {source}/b.tar.gz is inside the data folder {source}: put the backup"
            " elsewhere",
        )


#: A process committing one row after another into the database it is
#: given, until killed.
WRITER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("PRAGMA busy_timeout=10000")
while True:
    connection.execute("INSERT INTO t (payload) VALUES (randomblob(2000))")
"""


class OnlineCopyTests(SynchronousTestCase):
    def test_copy_is_one_snapshot_while_another_process_writes(self) -> None:
        """
        While another process commits rows without pause, the online copy
        of a database of some 2,000 pages, 50 pages a step, goes through
        in one pass (SQLite restarts a copy whenever another connection
        commits, unless the copy's read transaction holds one snapshot), and
        the copy is whole: every row there before it began, and its
        progress ends at 100%.
        """
        path = os.path.abspath(self.mktemp())
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
        connection.execute("BEGIN")
        for _ in range(3000):
            connection.execute("INSERT INTO t (payload) VALUES (randomblob(2000))")
        connection.execute("COMMIT")
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        self.assertGreater(pages, 1500)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, path])
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)

        def rows() -> int:
            return int(connection.execute("SELECT COUNT(*) FROM t").fetchone()[0])

        wait_until(lambda: rows() > 3100, 60, "the writer committing")
        before = rows()
        out = io.StringIO()
        steps: list[int] = []

        class Counting(Progress):
            def step(self, what: str, done: int, total: int) -> None:
                steps.append(done)
                super().step(what, done, total)

        target = os.path.join(os.path.dirname(path), "copy.sqlite3")
        copy_sqlite(path, target, Counting(out, interval=0), "the test database",
                    pages_per_step=50)
        after = rows()
        self.assertGreater(after, before, "the writer stopped during the copy")
        copied = sqlite3.connect(target)
        self.addCleanup(copied.close)
        held = int(copied.execute("SELECT COUNT(*) FROM t").fetchone()[0])
        self.assertTrue(before <= held <= after, (before, held, after))
        self.assertEqual(copied.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        # One pass: the pages done only ever grow.
        self.assertEqual(steps, sorted(steps))
        self.assertLessEqual(len(steps), pages // 50 + 20)
        self.assertTrue(out.getvalue().endswith(f"of {steps[-1]:,})\n"), out.getvalue())
        self.assertIn("copying the test database: 100%", out.getvalue())
