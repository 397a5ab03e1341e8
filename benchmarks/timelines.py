"""
Timeline scaling: home_timeline's p50 as the reader follows 10, 100,
1,000 and 5,000 accounts, with many posts stored; the 10 case is the
baseline.
"""

from __future__ import annotations

import http.client
import os
import sqlite3
import time

from benchmarks.harness import Result, Workspace, basic, insert_accounts, median


def _fill(path: str, authors: int, posts: int) -> None:
    """
    Write authors and posts straight into the SQLite file (the schema is
    already there): posts go round the authors, ids ascending like the
    server's time-ordered ids.
    """
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    now = int(time.time() * 1000)
    first = insert_accounts(db, [f"a{i}" for i in range(authors)])[0]
    base = 1 << 40
    batch = []
    for n in range(posts):
        author = first + n % authors
        batch.append((base + n, author, n // authors + 1, f"post {n} of a{n % authors}", now))
        if len(batch) == 50_000:
            db.executemany(
                "INSERT INTO posts (id, author_id, seq, text, created_at) VALUES (?, ?, ?, ?, ?)",
                batch,
            )
            batch = []
    if batch:
        db.executemany(
            "INSERT INTO posts (id, author_id, seq, text, created_at) VALUES (?, ?, ?, ?, ?)",
            batch,
        )
    per_author = posts // authors
    db.execute(
        "UPDATE accounts SET last_seq = ?, statuses_count = ? WHERE id >= ?",
        (per_author, per_author, first),
    )
    db.execute("UPDATE id_clock SET last_id = ?", (base + posts,))
    # Posts from before the outbox: its sweep (mention and reply notices)
    # starts after them, as the migration does on an upgrade, instead of
    # reading a backlog of 100,000s posts while the timelines are measured.
    db.execute("UPDATE outbox_cursors SET position = ? WHERE name = 'posts'",
               (base + posts,))
    db.commit()
    db.close()


def _follow(path: str, reader_id: int, first: int, count: int) -> None:
    db = sqlite3.connect(path, timeout=30)
    db.execute("DELETE FROM follows WHERE follower_id = ?", (reader_id,))
    db.executemany(
        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
        [(reader_id, first + i) for i in range(count)],
    )
    db.execute("UPDATE accounts SET friends_count = ? WHERE id = ?", (count, reader_id))
    db.commit()
    db.close()


def scaling(workspace: Workspace, quick: bool) -> list[Result]:
    authors, posts = (5000, 100_000) if quick else (5000, 1_000_000)
    requests = 50 if quick else 300
    server = workspace.server("timelines", "--role", "twitter", users=["reader"])
    server.stop()
    path = os.path.join(server.data, "distwit.sqlite3")
    _fill(path, authors, posts)
    server = workspace.server("timelines", *server.options)
    host, _, port = server.url.split("//", 1)[1].partition(":")
    headers = {"Authorization": basic("reader")}
    p50 = {}
    for follows in (10, 100, 1000, 5000):
        _follow(path, 1, 2, follows)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        times = []
        for _ in range(requests + 5):
            start = time.perf_counter()
            connection.request("GET", "/1.1/statuses/home_timeline.json?count=20",
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            times.append(time.perf_counter() - start)
            if response.status != 200 or body.count(b'"id_str"') < 20:
                raise RuntimeError(f"home_timeline: {response.status} {body[:200]!r}")
        connection.close()
        p50[follows] = median(times[5:]) * 1000
    return [
        Result(f"Timeline scaling: home_timeline p50, following {n:,} ({posts:,} posts)",
               value, "ms", p50[10], "following 10", "≤ 1.5× the 10 case",
               value <= 1.5 * p50[10] if n == 5000 else None)
        for n, value in p50.items()
    ]
