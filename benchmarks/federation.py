"""
Federation: how long a post takes from one server's API to another's
(polling and long-poll), and how fast a server fills a gap.
"""

from __future__ import annotations

import random
import sqlite3
import time

from benchmarks.harness import Result, Workspace, call, load, median, wait_until
from tests.processes import ServerProcess


def _federation(workspace: Workspace, tag: str, interval: float, long_poll: float,
                users: dict[str, list[str]]) -> dict[str, ServerProcess]:
    registry = workspace.server(f"{tag}-registry", "--role", "registry")
    for i in range(2):
        workspace.server(f"{tag}-ping{i}", "--role", "ping", "--registry", registry.url)
    wait_until(lambda: len(registry.request("GET", "/registry/pings")[1]["pings"]) == 2, 20)
    servers = {}
    for name, handles in users.items():
        servers[name] = workspace.server(
            f"{tag}-{name}", "--role", "twitter", "--registry", registry.url,
            "--ping-interval", str(interval), "--long-poll", str(long_poll), users=handles,
        )
    return servers


def latency(workspace: Workspace, quick: bool) -> list[Result]:
    """
    Post on s1 -> visible through s2's API: p50 and p99, in polling mode
    (interval 1 s) and long-poll mode; baseline: the same post read back
    through s1's own API.
    """
    count = 20 if quick else 200
    results = []
    for mode, interval, long_poll, target_ms in (
        ("polling", 1.0, 0.0, 1200.0), ("long-poll", 30.0, 25.0, 250.0)
    ):
        servers = _federation(workspace, mode, interval, long_poll,
                              {"s1": ["alice"], "s2": ["bob"], "s3": ["carol"]})
        s1, s2 = servers["s1"], servers["s2"]
        alice = "alice@" + s1.url.split("//", 1)[1]
        call(s2, "POST", "/1.1/friendships/create.json", "bob", screen_name=alice)
        time.sleep(2 * min(interval, 2))
        remote, local = [], []
        for n in range(count):
            # Post at a random moment of s2's polling cycle, not right
            # after the poll that brought the last post.
            time.sleep(random.uniform(0, interval if long_poll == 0 else 0.05))
            text = f"{mode} {n}"
            start = time.perf_counter()
            posted = call(s1, "POST", "/1.1/statuses/update.json", "alice", status=text)
            local.append(time.perf_counter() - start)

            def arrived() -> bool:
                timeline = call(s2, "GET", "/1.1/statuses/home_timeline.json?count=1", "bob")
                return bool(timeline) and timeline[0]["text"] == text

            wait_until(arrived, 10 + interval)
            remote.append(time.perf_counter() - start)
            del posted
        remote.sort()
        p99 = remote[min(len(remote) - 1, int(0.99 * len(remote)))]
        results.append(Result(
            f"Federation latency, {mode}: p99", p99 * 1000, "ms",
            median(local) * 1000, "p50 of the post read back on s1",
            f"p99 ≤ {target_ms:.0f} ms" + (" (interval + 200 ms)" if mode == "polling" else ""),
            p99 * 1000 <= target_ms,
            extra={"p50_ms": median(remote) * 1000, "posts": count,
                   "users": 3, "ping_servers": 2, "twitter_servers": 3},
        ))
    return results


def catch_up(workspace: Workspace, quick: bool) -> list[Result]:
    """
    A server that was down while bob made N posts comes back: messages
    stored per second until it holds them all; baseline: fetching the same
    range feeds over HTTP without storing them.
    """
    gap = 2000 if quick else 20000
    servers = _federation(workspace, "catchup", 1.0, 0.0, {"s1": ["alice"], "s2": ["bob"]})
    s1, s2 = servers["s1"], servers["s2"]
    bob = "bob@" + s2.url.split("//", 1)[1]
    call(s1, "POST", "/1.1/friendships/create.json", "alice", screen_name=bob)
    s1.stop()
    headers = {"Authorization": "Basic " + __import__("base64").b64encode(
        b"bob:correct horse battery").decode()}
    while True:
        made = load(s2.url, "POST", "/1.1/statuses/update.json", headers, post=True,
                    duration=60, limit=gap // 4, connections=4)
        if made.requests >= gap:
            break
    total = call(s2, "GET", "/1.1/account/verify_credentials.json", "bob")["statuses_count"]
    # Baseline: the same pages fetched over HTTP, not stored.
    host = s2.url
    import urllib.request

    start = time.perf_counter()
    first = 1
    while first <= total:
        last = min(total, first + 199)
        with urllib.request.urlopen(f"{host}/s2s/feed/bob.rss?from={first}&to={last}") as r:
            r.read()
        first = last + 1
    fetch_only = total / (time.perf_counter() - start)

    s1 = workspace.server("catchup-s1", *s1.options)  # same data folder, new port is fine
    db_path = s1.data + "/distwit.sqlite3"

    def synced() -> bool:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT synced_seq FROM accounts WHERE handle_key = 'bob' AND authority <> ''"
            ).fetchone()
        finally:
            db.close()
        return row is not None and row[0] >= total

    start = time.perf_counter()
    wait_until(synced, 600, step=0.05)
    rate = total / (time.perf_counter() - start)
    return [Result(
        "Catch-up: filling a gap from one peer", rate, "messages/s", fetch_only,
        "the same range feeds fetched without storing", "≥ 5,000 messages/s",
        rate >= 5000, extra={"gap": total},
    )]
