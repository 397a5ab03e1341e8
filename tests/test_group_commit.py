"""
Group commit (distwit/store/sql/group_commit.py, docs/design/group-commit.md):
posts that arrive together share one transaction, each in its own
savepoint, each answered after the commit; a refused one fails alone; a
kill -9 loses no acknowledged post.  On SQLite and on PostgreSQL
(``DISTWIT_TEST_POSTGRES``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import replace
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from distwit.store.interfaces import DuplicatePost, NoSuchAccount
from distwit.store.schema import prepare_database
from distwit.store.sql import SQLStore
from distwit.store.sql.group_commit import GroupCommitter
from tests.processes import ServerProcess, run_cli
from tests.support import (
    POSTGRES_SKIP,
    PostgresEngine,
    SQLiteEngine,
    postgres_url,
    wipe_postgres,
)

PASSWORD = "correct horse battery"


class GroupCommitStoreMixin:
    """
    The store's posts through the group committer, on a real pool.
    """

    store: SQLStore

    def make_engine(self) -> Any:
        raise NotImplementedError()

    def setUp(self) -> None:
        self.engine = self.make_engine()
        prepare_database(self.engine)
        self.store = SQLStore(self.engine.make_pool(reactor), self.engine)
        self.addCleanup(self.store.close)

    async def users(self, *handles: str) -> list[int]:
        ids = []
        for handle in handles:
            account = await self.store.create_user(handle, handle, "x", 1000)
            ids.append(account.id)
        return ids

    async def test_concurrent_posts_grouped(self) -> None:
        """
        Posts asked for at once are all acknowledged, all stored with
        distinct ids, each author's numbers dense, in fewer transactions
        than posts.
        """
        authors = await self.users("ann", "bob", "cy", "dee")
        asked = [
            self.store.create_post(author, f"post {n} of {author}", "web", None, 2000 + n)
            for n in range(15) for author in authors
        ]
        posts = await gatherResults(asked)
        self.assertEqual(len({p.id for p in posts}), 60)
        for author in authors:
            seqs = [p.seq for p in posts if p.author.id == author]
            self.assertEqual(seqs, list(range(1, 16)))
            timeline = await self.store.user_timeline(author, 100, None, None)
            self.assertEqual(len(timeline), 15)
        # In the order asked: ids rise with it.
        self.assertEqual([p.id for p in posts], sorted(p.id for p in posts))
        committer = self.store.group_committer
        self.assertEqual(committer.writes, 60)
        self.assertLess(committer.groups, 60)
        # None failed: no group needed its savepoints.
        self.assertEqual(committer.retried, 0)

    async def test_answered_as_stored(self) -> None:
        """
        The post a write answers is the post read back: its author as
        after the post, its reply, its mentions.
        """
        ann, bob = await self.users("ann", "bob")
        first = await self.store.create_post(bob, "first", "web", None, 2000)
        self.assertEqual(first, await self.store.get_post(first.id))
        posts = await gatherResults([
            self.store.create_post(ann, "hi @bob and @nobody, @bob", "x" * 300, first.id, 2001),
            self.store.create_post(ann, "plain", "web", None, 2002),
            self.store.create_post(bob, "to a lost one", "web", 10**15, 2003),
        ])
        for post in posts:
            stored = await self.store.get_post(post.id)
            assert stored is not None
            if post is posts[0]:
                # Its author and the account it mentions have posted
                # since: their counts moved on.
                self.assertEqual(post.author.statuses_count, 1)
                self.assertEqual([(m[0].id, m[1], m[2]) for m in post.mentions],
                                 [(m[0].id, m[1], m[2]) for m in stored.mentions])
                post = replace(post, author=stored.author, mentions=stored.mentions)
            self.assertEqual(post, stored)
        self.assertEqual([m[0].handle for m in posts[0].mentions], ["bob", "bob"])
        self.assertEqual((posts[0].in_reply_to_screen_name, posts[0].in_reply_to_seq),
                         ("bob", 1))
        self.assertEqual(posts[1].author.statuses_count, 2)

    async def test_refused_post_fails_alone(self) -> None:
        """
        In one group, a duplicate (of a post earlier in the same group) and
        a post by nobody fail with their own errors; the others of the
        group are committed and the refused ones take no number.
        """
        ann, bob = await self.users("ann", "bob")
        committer = self.store.group_committer
        # The first post runs alone; the next ones queue up behind it and
        # go together into the second transaction.
        first = self.store.create_post(bob, "first", "web", None, 2000)
        group = [
            self.store.create_post(ann, "hello", "web", None, 2001),
            self.store.create_post(ann, "hello", "web", None, 2002),
            self.store.create_post(999999, "nobody's", "web", None, 2003),
            self.store.create_post(bob, "second", "web", None, 2004),
            self.store.create_post(ann, "world", "web", None, 2005),
        ]
        results = await DeferredList([first, *group], consumeErrors=True)
        self.assertEqual(committer.groups, 2)
        # The group ran without savepoints, then again with them.
        self.assertEqual(committer.retried, 1)
        oks = [ok for ok, _ in results]
        self.assertEqual(oks, [True, True, False, False, True, True])
        results[2][1].trap(DuplicatePost)
        results[3][1].trap(NoSuchAccount)
        self.assertEqual([results[i][1].seq for i in (1, 5)], [1, 2])
        self.assertEqual(results[4][1].seq, 2)
        ann_posts = await self.store.user_timeline(ann, 10, None, None)
        self.assertEqual([p.text for p in ann_posts], ["world", "hello"])
        account = await self.store.get_account(ann)
        self.assertEqual((account.last_seq, account.statuses_count), (2, 2))

    async def test_failed_transaction_fails_its_group(self) -> None:
        """
        When a group's transaction fails as a whole, every write of it
        fails (none was committed), and the next group goes on.
        """
        calls = [0]

        def begin(txn: Any) -> None:
            self.engine.begin_group(txn)
            calls[0] += 1
            if calls[0] == 2:
                raise RuntimeError("the transaction failed")

        committer = GroupCommitter(self.store._run, begin)

        def write(txn: Any, text: str) -> str:
            txn.execute(self.engine.convert("UPDATE id_clock SET last_id = last_id + 1"))
            return text

        first = committer.submit(write, "first")
        second = [committer.submit(write, "a"), committer.submit(write, "b")]
        self.assertEqual(await first, "first")
        third = committer.submit(write, "c")
        results = await DeferredList(second, consumeErrors=True)
        for ok, failure in results:
            self.assertFalse(ok)
            failure.trap(RuntimeError)
        self.assertEqual(await third, "c")
        self.assertEqual(committer.groups, 2)


class GatherTests(SynchronousTestCase):
    """
    With ``gather``, the next group waits (a little) for the writers the
    last group answered; never without load.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.runs: list[tuple[list[str], Deferred[None]]] = []

        def run(interaction: Any, group: Any, careful: bool) -> Deferred[None]:
            done: Deferred[None] = Deferred()
            self.runs.append(([p.args[0] for p in group], done))
            return done

        self.committer = GroupCommitter(run, lambda txn: None, gather=0.002, clock=self.clock)

    def commit(self) -> None:
        self.runs[-1][1].callback(None)

    def test_gather(self) -> None:
        """
        A lone write starts at once.  Under load, once a group commits, the
        next waits until as many writes are queued as writers were busy,
        or ``gather`` seconds at most; once the load is gone, a lone write
        waits that long once, then starts at once again.
        """
        write = self.committer.submit
        first = write(None, "a")
        self.assertEqual([names for names, _ in self.runs], [["a"]])
        write(None, "b")
        write(None, "c")
        self.commit()
        self.assertEqual(self.successResultOf(first), None)
        # Three writers were busy (a, b, c): b and c wait for a's next.
        self.assertEqual(len(self.runs), 1)
        write(None, "d")
        self.assertEqual(self.runs[-1][0], ["b", "c", "d"])
        self.commit()
        # b, c and d were answered; only two come back: after 2 ms.
        write(None, "e")
        write(None, "f")
        self.assertEqual(len(self.runs), 2)
        self.clock.advance(0.002)
        self.assertEqual(self.runs[-1][0], ["e", "f"])
        self.commit()
        # The load ends: the next write waits for its company once, then
        # a lone write starts at once.
        write(None, "g")
        self.assertEqual(len(self.runs), 3)
        self.clock.advance(0.002)
        self.assertEqual(self.runs[-1][0], ["g"])
        self.commit()
        write(None, "h")
        self.assertEqual(self.runs[-1][0], ["h"])


class SQLiteGroupCommitTests(GroupCommitStoreMixin, TestCase):
    def make_engine(self) -> SQLiteEngine:
        return SQLiteEngine(self.mktemp() + ".sqlite3")


class PostgresGroupCommitTests(GroupCommitStoreMixin, TestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def make_engine(self) -> PostgresEngine:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return PostgresEngine(url)


class KillDuringPostsMixin:
    """
    kill -9 of a server in the middle of a stream of concurrent posts: every
    acknowledged post is there after the restart.
    """

    def database_options(self) -> list[str]:
        return []

    def stored(self, data: str) -> list[tuple[int, int, int]]:
        """
        (author id, number, status id) of every stored post.
        """
        raise NotImplementedError()

    def test_kill_during_posts(self) -> None:
        data = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        options = self.database_options()
        handles = ["ann", "bob", "cy", "dee"]
        for handle in handles:
            done = run_cli("adduser", "--create", handle, "--data", data, *options,
                           stdin=PASSWORD + "\n")
            assert done.returncode == 0, done.stderr
        server = ServerProcess(data, *options)
        acknowledged: list[tuple[str, int]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def poster(n: int) -> None:
            handle = handles[n % len(handles)]
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    code, body = server.request(
                        "POST", "/1.1/statuses/update.json", (handle, PASSWORD),
                        {"status": f"thread {n} post {i}"},
                    )
                except OSError:
                    return
                if code == 200:
                    with lock:
                        acknowledged.append((handle, body["id"]))

        threads = [threading.Thread(target=poster, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(acknowledged) < 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            with lock:
                before_kill = len(acknowledged)
            server.kill()
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
            server.kill()
        self.assertGreaterEqual(before_kill, 200)  # type: ignore[attr-defined]
        server = ServerProcess(data, *options)
        try:
            for handle in handles:
                code, timeline = server.request(
                    "GET", f"/1.1/statuses/user_timeline.json?screen_name={handle}&count=200"
                )
                assert code == 200, timeline
                shown = {s["id"] for s in timeline}
                mine = {i for h, i in acknowledged if h == handle}
                self.assertEqual(mine - shown, set())  # type: ignore[attr-defined]
        finally:
            server.stop()
        stored = self.stored(data)
        ids = {post_id for _, _, post_id in stored}
        self.assertEqual({i for _, i in acknowledged} - ids, set())  # type: ignore[attr-defined]
        by_author: dict[int, list[int]] = {}
        for author, seq, _ in stored:
            by_author.setdefault(author, []).append(seq)
        for seqs in by_author.values():
            self.assertEqual(sorted(seqs), list(range(1, len(seqs) + 1)))  # type: ignore[attr-defined]


class SQLiteKillDuringPostsTests(KillDuringPostsMixin, SynchronousTestCase):
    def stored(self, data: str) -> list[tuple[int, int, int]]:
        with sqlite3.connect(os.path.join(data, "distwit.sqlite3")) as db:
            return [tuple(row) for row in db.execute("SELECT author_id, seq, id FROM posts")]


class PostgresKillDuringPostsTests(KillDuringPostsMixin, SynchronousTestCase):
    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def database_options(self) -> list[str]:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return ["--database", url]

    def stored(self, data: str) -> list[tuple[int, int, int]]:
        import psycopg

        with psycopg.connect(postgres_url()) as db:
            return [tuple(row) for row in db.execute("SELECT author_id, seq, id FROM posts")]

