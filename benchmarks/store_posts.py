"""
New posts through the store alone (no HTTP), ``--writers`` at once, each
writer waiting ``--cycle`` seconds between its acknowledgement and its next
post (as a client's round trip would): posts/s, statements a post and
posts a commit (the group committer's own counts, which do not depend on
what else the machine runs).

Usage::

    python -m benchmarks.store_posts sqlite|postgres [--posts N]
        [--writers N] [--cycle SECONDS] [--postgres URL]

``--postgres`` names a database it may wipe (``DISTWIT_TEST_POSTGRES``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

from benchmarks.harness import ROOT  # noqa: F401  (puts the tree on sys.path)
from distwit.store.engines import pool as pool_module
from distwit.store.schema import prepare_database
from distwit.store.sql import SQLStore
from tests.support import PostgresEngine, SQLiteEngine, wipe_postgres


async def run(reactor: Any, args: argparse.Namespace) -> None:
    statements = [0]
    execute = pool_module._WatchedTransaction.execute

    def counting(self: Any, sql: str, *a: Any, **k: Any) -> Any:
        statements[0] += 1
        return execute(self, sql, *a, **k)

    pool_module._WatchedTransaction.execute = counting  # type: ignore[method-assign]
    engine: Any
    if args.engine == "postgres":
        if not args.postgres:
            raise SystemExit("--postgres URL (or DISTWIT_TEST_POSTGRES) is needed")
        wipe_postgres(args.postgres)
        engine = PostgresEngine(args.postgres)
    else:
        engine = SQLiteEngine(os.path.join(tempfile.mkdtemp(), "posts.sqlite3"))
    prepare_database(engine)
    store = SQLStore(engine.make_pool(reactor), engine)
    account = await store.create_user("writer", "writer", "x", 1000)
    await store.create_post(account.id, "warm", "web", None, 2000)
    committer = store.group_committer
    groups_before, statements[0] = committer.groups, 0
    asked = 0

    async def writer(k: int) -> None:
        nonlocal asked
        while asked < args.posts:
            asked += 1
            await store.create_post(account.id, f"post {k} {asked}", "web", None, 3000 + asked)
            if args.cycle:
                await task.deferLater(reactor, args.cycle, lambda: None)

    start = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(writer(k)) for k in range(args.writers)])
    elapsed = time.perf_counter() - start
    groups = committer.groups - groups_before
    print(f"{args.engine}: {asked} posts, {args.writers} writers, cycle {args.cycle * 1000:g} ms:"
          f" {asked / elapsed:.0f} posts/s, {statements[0] / asked:.2f} statements a post,"
          f" {asked / groups:.2f} posts a commit ({groups} groups)")
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=["sqlite", "postgres"])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--cycle", type=float, default=0.0)
    parser.add_argument("--postgres", default=os.environ.get("DISTWIT_TEST_POSTGRES"))
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main()
