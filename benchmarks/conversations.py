"""
Conversations across servers (issue 13): how long a mention takes to reach
a user whose server follows nobody on the author's server (a signed notice
from the durable outbox), and how fast a follower's server fills a gap
holding posts, deletes, retweets and profile changes.
"""

from __future__ import annotations

import http.client
import json
import random
import sqlite3
import time
import urllib.parse
from typing import Any

from benchmarks.federation import _federation
from benchmarks.harness import Result, Workspace, basic, median, wait_until
from tests.processes import ServerProcess


class Client:
    """
    One keep-alive connection to one server; errors raise.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        host, _, port = server.url.split("//", 1)[1].partition(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)

    def __call__(self, method: str, path: str, user: str, **data: Any) -> Any:
        headers = {"Authorization": basic(user)}
        body = None
        if data:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw)

    def close(self) -> None:
        self.connection.close()


def _acct(handle: str, server: ServerProcess) -> str:
    return f"{handle}@{server.url.split('//', 1)[1]}"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def mention_latency(workspace: Workspace, quick: bool) -> list[Result]:
    """
    dave on s3, whom nobody on s1 follows, mentions alice on s1: time from
    the post's acknowledgement to the post in alice's mentions_timeline
    (polled with since_id).  Baseline, interleaved in the same run: a post
    of carol (s3, followed by alice) from its acknowledgement to alice's
    home timeline, the path posts take (ping exchange, range feed; polling
    every 1 s).
    """
    count = 20 if quick else 200
    interval = 1.0
    servers = _federation(workspace, "mention", interval, 0.0,
                          {"s1": ["alice"], "s2": ["bob"], "s3": ["dave", "carol"]})
    s1, s3 = servers["s1"], servers["s3"]
    alice, carol = _acct("alice", s1), _acct("carol", s3)
    on1, on3 = Client(s1), Client(s3)
    try:
        on1("POST", "/1.1/friendships/create.json", "alice", screen_name=carol)
        # A first post each way, so both paths are set up (carol copied,
        # dave's server knows where alice lives) before anything is timed.
        on3("POST", "/1.1/statuses/update.json", "carol", status="carol warms up")
        wait_until(lambda: on1("GET", "/1.1/statuses/home_timeline.json?count=1", "alice"),
                   30, step=0.05)
        on3("POST", "/1.1/statuses/update.json", "dave", status=f"@{alice} warms up")
        wait_until(lambda: on1("GET", "/1.1/statuses/mentions_timeline.json?count=1",
                               "alice"), 30, step=0.05)
        since = {
            "mentions": on1("GET", "/1.1/statuses/mentions_timeline.json?count=1",
                            "alice")[0]["id"],
            "home": on1("GET", "/1.1/statuses/home_timeline.json?count=1", "alice")[0]["id"],
        }
        latencies: dict[str, list[float]] = {"mentions": [], "home": []}
        for n in range(count):
            for kind in random.sample(["mentions", "home"], 2):
                # A random moment of s1's polling cycle.
                time.sleep(random.uniform(0, interval))
                if kind == "mentions":
                    author, text = "dave", f"@{alice} mention {n}"
                else:
                    author, text = "carol", f"carol's post {n}"
                on3("POST", "/1.1/statuses/update.json", author, status=text)
                acked = time.perf_counter()
                path = f"/1.1/statuses/{kind}_timeline.json?count=20&since_id={since[kind]}"
                found: list[dict[str, Any]] = []

                def arrived(path: str = path, text: str = text,
                            found: list[dict[str, Any]] = found) -> bool:
                    page = on1("GET", path, "alice")
                    hits = [s for s in page if s["text"] == text]
                    found.extend(hits)
                    return bool(hits)

                wait_until(arrived, 30 + interval)
                latencies[kind].append(time.perf_counter() - acked)
                since[kind] = found[0]["id"]
    finally:
        on1.close()
        on3.close()
    mention, home = latencies["mentions"], latencies["home"]
    return [Result(
        "Mention of an unfollowed author's post: p99", _percentile(mention, 99) * 1000, "ms",
        _percentile(home, 99) * 1000, "p99 of a followed author's post to home (polling 1 s)",
        "p99 ≤ 2,000 ms (two ping intervals)", _percentile(mention, 99) <= 2 * interval,
        extra={"p50_ms": median(mention) * 1000, "home_p50_ms": median(home) * 1000,
               "p50_ratio": median(mention) / median(home), "mentions": count,
               "twitter_servers": 3, "ping_servers": 2},
    )]


def _last_seq(server: ServerProcess, handle: str) -> int:
    db = sqlite3.connect(f"file:{server.data}/distwit.sqlite3?mode=ro", uri=True)
    try:
        row = db.execute("SELECT last_seq FROM accounts WHERE handle_key = ? AND authority = ''",
                         (handle,)).fetchone()
    finally:
        db.close()
    return int(row[0])


def _synced_seq(server: ServerProcess, handle: str) -> int:
    db = sqlite3.connect(f"file:{server.data}/distwit.sqlite3?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT synced_seq FROM accounts WHERE handle_key = ? AND authority <> ''",
            (handle,)).fetchone()
    finally:
        db.close()
    return -1 if row is None or row[0] is None else int(row[0])


def _timeline(client: Client, path: str, user: str) -> list[tuple[str, str]]:
    """
    Every item of a user_timeline, newest first, as (kind, text): a
    retweet by its original's text (its screen name differs by server).
    """
    items: list[tuple[str, str]] = []
    max_id = ""
    while True:
        page = client("GET", f"{path}&count=200{max_id}", user)
        for status in page:
            if status.get("retweeted_status"):
                items.append(("retweet", status["retweeted_status"]["text"]))
            else:
                items.append(("post", status["text"]))
        if not page:
            return items
        max_id = f"&max_id={min(s['id'] for s in page) - 1}"


PROFILE_FIELDS = ("name", "description", "location", "url", "statuses_count")


def _view(client: Client, screen_name: str, viewer: str) -> tuple[Any, ...]:
    user = client("GET", f"/1.1/users/show.json?screen_name={screen_name}", viewer)
    return (tuple(user[k] for k in PROFILE_FIELDS),
            _timeline(client, f"/1.1/statuses/user_timeline.json?screen_name={screen_name}",
                      viewer))


def _difference(seen: tuple[Any, ...], expected: tuple[Any, ...]) -> str:
    """
    How alice's view differs from the author's, in a few words.
    """
    parts = []
    for name, a, b in zip(PROFILE_FIELDS, seen[0], expected[0]):
        if a != b:
            parts.append(f"{name} {a!r} not {b!r}")
    mine, theirs = seen[1], expected[1]
    if mine != theirs:
        at = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b),
                  min(len(mine), len(theirs)))
        parts.append(f"{len(mine)} items not {len(theirs)}, first difference at {at}:"
                     f" {mine[at] if at < len(mine) else None}"
                     f" not {theirs[at] if at < len(theirs) else None}")
    return "; ".join(parts)


def _make_gap(client: Client, author: str, items: int, mixed: bool, originals: list[int],
              rng: random.Random) -> dict[str, int]:
    """
    ``items`` numbered items of ``author``: posts only, or about 60 % posts,
    15 % deletes (of posts and retweets), 15 % retweets (of ``originals``,
    each at most once at a time), 10 % profile changes.
    """
    kinds = {"posts": 0, "deletes": 0, "retweets": 0, "profiles": 0}
    live: list[tuple[str, int, int]] = []  # (kind, status id, original id)
    free = list(originals)
    rng.shuffle(free)
    for n in range(items):
        roll = rng.random() if mixed else 0.0
        if 0.60 <= roll < 0.75 and live:
            kind, status, original = live.pop(rng.randrange(len(live)))
            client("POST", f"/1.1/statuses/destroy/{status}.json", author)
            if kind == "retweet":
                free.append(original)
            kinds["deletes"] += 1
        elif 0.75 <= roll < 0.90 and free:
            original = free.pop()
            made = client("POST", f"/1.1/statuses/retweet/{original}.json", author)
            live.append(("retweet", int(made["id"]), original))
            kinds["retweets"] += 1
        elif roll >= 0.90:
            client("POST", "/1.1/account/update_profile.json", author,
                   name=f"Bob {n}", description=f"bio number {n} of the gap",
                   location=f"place {n % 97}", url=f"https://example.com/{n}")
            kinds["profiles"] += 1
        else:
            made = client("POST", "/1.1/statuses/update.json", author,
                          status=f"gap post {n} {rng.random():.6f}")
            live.append(("post", int(made["id"]), 0))
            kinds["posts"] += 1
    return kinds


def mixed_catch_up(workspace: Workspace, quick: bool) -> list[Result]:
    """
    alice's server (s1) is down while an author on s2 makes K items: time
    from its restart (the process started) until alice's view of the author
    (users/show fields and every item of the user_timeline) is exactly the
    author's own, items/s.  First pat makes K posts (the baseline), then
    bob K mixed items, in the same run.
    """
    items = 200 if quick else 5000
    rng = random.Random()
    servers = _federation(workspace, "mixed", 1.0, 0.0,
                          {"s1": ["alice"], "s2": ["pat", "bob", "cat"]})
    s1, s2 = servers["s1"], servers["s2"]
    authors = {"posts": "pat", "mixed": "bob"}
    on1 = Client(s1)
    for handle in ("pat", "bob", "cat"):
        on1("POST", "/1.1/friendships/create.json", "alice", screen_name=_acct(handle, s2))
    on2 = Client(s2)
    # Originals for bob to retweet: cat's, posted after alice followed her,
    # so alice's server copies them all (a new follow copies only an
    # author's last 20; an original not held is fetched on its own, later).
    originals = [int(on2("POST", "/1.1/statuses/update.json", "cat",
                         status=f"cat's original {n}")["id"])
                 for n in range(max(40, items * 15 // 100 + 10))]
    for handle in ("pat", "bob"):
        on2("POST", "/1.1/statuses/update.json", handle, status="before the gap")
    wait_until(lambda: all(_synced_seq(s1, h) >= _last_seq(s2, h)
                           for h in ("pat", "bob", "cat")), 60, step=0.1)
    on1.close()
    results: dict[str, dict[str, Any]] = {}
    for label, mixed in (("posts", False), ("mixed", True)):
        s1.stop()
        on2.close()
        on2 = Client(s2)
        author = authors[label]
        made = _make_gap(on2, author, items, mixed, originals, rng)
        last = _last_seq(s2, author)
        expected = _view(on2, author, author)
        # The clock starts with the restart: a server fills the gap while
        # it starts (its first ping exchange), before it answers /health.
        start = time.perf_counter()
        s1 = workspace.server("mixed-s1", *s1.options, port=s1.port)
        healthy = time.perf_counter() - start
        wait_until(lambda: _synced_seq(s1, author) >= last, 600, step=0.02)
        synced = time.perf_counter() - start
        on1 = Client(s1)
        try:
            checks = 0
            first_difference = ""
            while True:
                checks += 1
                seen = _view(on1, _acct(author, s2), "alice")
                if seen == expected:
                    break
                if not first_difference:
                    first_difference = _difference(seen, expected)
                    print(f"catch-up-mixed, {label}: {first_difference}", flush=True)
                if time.perf_counter() - start > 600:
                    raise RuntimeError(f"alice's view of {author} differs after 600 s:"
                                       f" {seen[0]} != {expected[0]},"
                                       f" {len(seen[1])} != {len(expected[1])} items")
                time.sleep(0.05)
        finally:
            on1.close()
        elapsed = time.perf_counter() - start
        results[label] = {"seconds": elapsed, "rate": items / elapsed, "synced_s": synced,
                          "healthy_s": healthy, "first_difference": first_difference,
                          "checks": checks, "kinds": made,
                          "timeline": len(expected[1])}
    on2.close()
    mixed_r, posts_r = results["mixed"], results["posts"]
    kinds = mixed_r["kinds"]
    return [Result(
        f"Catch-up of a mixed gap of {items} items (exact view)", mixed_r["rate"], "items/s",
        posts_r["rate"], f"a gap of {items} posts only",
        "≥ 0.5 of posts only", mixed_r["rate"] >= 0.5 * posts_r["rate"],
        extra={"mixed_s": mixed_r["seconds"], "posts_only_s": posts_r["seconds"],
               "mixed_synced_s": mixed_r["synced_s"],
               "posts_synced_s": posts_r["synced_s"],
               "start_to_health_s": f"{posts_r['healthy_s']:.1f} and {mixed_r['healthy_s']:.1f}",
               "checks": f"{posts_r['checks']} then {mixed_r['checks']}",
               "first_difference": mixed_r["first_difference"] or "none",
               "items": ", ".join(f"{k} {v}" for k, v in kinds.items()),
               "timeline_items": mixed_r["timeline"]},
    )]
