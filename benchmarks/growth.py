"""
Cost growth: CPU seconds (all the federation's processes) per delivered
post as the users on two twitter servers grow; the smallest case is the
baseline (the target is flat).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time

from benchmarks.harness import Result, Workspace, call, insert_accounts, wait_until


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _bulk_local(path: str, prefix: str, count: int) -> list[int]:
    db = sqlite3.connect(path, timeout=30)
    ids = insert_accounts(db, [f"{prefix}{i}" for i in range(count)])
    db.commit()
    db.close()
    return ids


def _bulk_remote_follows(path: str, readers: list[int], handles: list[str],
                         authority: str, home: str) -> None:
    db = sqlite3.connect(path, timeout=30)
    followees = insert_accounts(db, handles, authority, home)
    rng = random.Random(1)
    db.executemany(
        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, 0)",
        [(reader, rng.choice(followees)) for reader in readers],
    )
    db.execute(
        "UPDATE accounts SET friends_count = 1 WHERE id IN (SELECT follower_id FROM follows)"
    )
    db.commit()
    db.close()


def _one(workspace: Workspace, users: int, posts: int) -> float:
    tag = f"growth{users}"
    registry = workspace.server(f"{tag}-registry", "--role", "registry")
    ping = workspace.server(f"{tag}-ping", "--role", "ping", "--registry", registry.url)
    wait_until(lambda: registry.request("GET", "/registry/pings")[1]["pings"], 20)
    twitter = ("--role", "twitter", "--registry", registry.url, "--ping-interval", "1")
    s1 = workspace.server(f"{tag}-s1", *twitter, users=["poster"])
    s2 = workspace.server(f"{tag}-s2", *twitter, users=["reader"])
    for server in (s1, s2):
        server.stop()
    authors = [f"u{i}" for i in range(users)]
    _bulk_local(os.path.join(s1.data, "distwit.sqlite3"), "u", users)
    readers = _bulk_local(os.path.join(s2.data, "distwit.sqlite3"), "r", users)
    authority = s1.url.split("//", 1)[1]
    _bulk_remote_follows(os.path.join(s2.data, "distwit.sqlite3"), readers, authors,
                         authority, s1.url)
    s1 = workspace.server(f"{tag}-s1", *s1.options, port=s1.port)
    s2 = workspace.server(f"{tag}-s2", *s2.options, port=s2.port)
    call(s2, "POST", "/1.1/friendships/create.json", "reader", screen_name=f"poster@{authority}")
    time.sleep(3)  # subscriptions in, first rounds done
    pids = [p.process.pid for p in (registry, ping, s1, s2)]
    before = sum(_cpu_seconds(pid) for pid in pids)
    for n in range(posts):
        text = f"growth {users} {n}"
        call(s1, "POST", "/1.1/statuses/update.json", "poster", status=text)

        def arrived() -> bool:
            timeline = call(s2, "GET", "/1.1/statuses/home_timeline.json?count=1", "reader")
            return bool(timeline) and timeline[0]["text"] == text

        wait_until(arrived, 30, step=0.02)
    after = sum(_cpu_seconds(pid) for pid in pids)
    return (after - before) / posts


def growth(workspace: Workspace, quick: bool) -> list[Result]:
    sizes = (200, 2000) if quick else (1000, 10_000, 100_000)
    posts = 5 if quick else 30
    cost = {}
    for users in sizes:
        cost[users] = _one(workspace, users, posts) * 1000
    base = sizes[0]
    return [
        Result(f"Cost growth: CPU ms per delivered post, {users:,} users a server",
               value, "CPU ms", cost[base], f"{base:,} users", "flat (ratio ≈ 1)",
               value <= 1.5 * cost[base] if users == sizes[-1] else None,
               extra={"posts": posts})
        for users, value in cost.items()
    ]
