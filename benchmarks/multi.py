"""
Several twitter processes behind the front (docs/design/several-processes.md):
home_timeline reads through nginx with two workers against nginx with one,
the same PostgreSQL database, the same Redis, the same load generator.
"""

from __future__ import annotations

import os
import secrets

from benchmarks.api import twitter_role
from benchmarks.harness import Result, Workspace, basic, call, load
from tests.processes import ServerProcess, free_port


def two_workers(workspace: Workspace, quick: bool, postgres: str | None) -> list[Result]:
    """
    home_timeline.json?count=20 requests/s through the front, Basic, two
    workers against one (reads on PostgreSQL).
    """
    from tests.support import wipe_postgres
    from tests.test_multi_process import Front, nginx_binary, redis_answers, redis_forget, redis_url

    redis = redis_url()
    if postgres is None or nginx_binary() is None or not redis_answers(redis):
        print("two-workers: not measured: it needs --postgres (or DISTWIT_TEST_POSTGRES),"
              " nginx and a Redis (DISTWIT_TEST_REDIS, default the machine's)", flush=True)
        return []
    wipe_postgres(postgres)
    prefix = f"distwit-bench-{secrets.token_hex(4)}:"
    front_port = free_port()
    public_url = f"http://127.0.0.1:{front_port}"
    authors = [f"author{i}" for i in range(10)]
    options = (
        *twitter_role(workspace, "multi"),
        "--database", postgres,
        "--redis", redis + ("&" if "?" in redis else "?") + "prefix=" + prefix,
        "--public-url", public_url,
    )
    first = workspace.server("multi", *options, users=["reader", *authors])
    # The second shares the first's data folder (the server's keys).
    config = os.path.join(first.data, "bench.ini")
    second = ServerProcess(first.data, *options, "--config", config)
    workspace.processes.append(second)
    try:
        for author in authors:
            call(first, "POST", "/1.1/friendships/create.json", "reader", screen_name=author)
            for n in range(20 if not quick else 3):
                call(second, "POST", "/1.1/statuses/update.json", author,
                     status=f"{author} {n}")
        one = Front(workspace.path("front-one"), free_port(), [first.port])
        two = Front(workspace.path("front-two"), front_port, [first.port, second.port])
        try:
            path = "/1.1/statuses/home_timeline.json?count=20"
            headers = {"Authorization": basic("reader")}
            duration = 2.0 if quick else 10.0
            load(two.url, "GET", path, headers, duration=1.0)  # warm up both
            alone = load(one.url, "GET", path, headers, duration=duration, connections=4)
            both = load(two.url, "GET", path, headers, duration=duration, connections=4)
        finally:
            one.stop()
            two.stop()
    finally:
        redis_forget(redis, prefix)
    ratio = both.rate / alone.rate
    return [
        Result("Two workers behind the front, home_timeline (PostgreSQL)", both.rate,
               "requests/s", alone.rate, "one worker behind the same front",
               "≥ 1.6× on two cores", ratio >= 1.6,
               extra={"p50_ms": both.percentile(50) * 1000,
                      "p99_ms": both.percentile(99) * 1000,
                      "one_p99_ms": alone.percentile(99) * 1000,
                      "cores": os.cpu_count()}),
    ]
