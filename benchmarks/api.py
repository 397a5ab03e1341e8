"""
API read and write: distwit against a bare twisted.web resource in the
same kind of process, measured by the same load generator.
"""

from __future__ import annotations

import http.client
import os
import sqlite3
import time

from benchmarks.harness import Result, Workspace, basic, call, load, wait_until


def twitter_role(workspace: Workspace, name: str) -> tuple[str, ...]:
    """
    Options for a twitter server as deployed: its own process, beside a
    registry and a ping server (so each post is reported, as in real use).
    """
    registry = workspace.server(f"{name}-registry", "--role", "registry")
    workspace.server(f"{name}-ping", "--role", "ping", "--registry", registry.url)
    wait_until(lambda: registry.request("GET", "/registry/pings")[1]["pings"], 20)
    return ("--role", "twitter", "--registry", registry.url)


def api_read(workspace: Workspace, quick: bool) -> list[Result]:
    """
    home_timeline.json?count=20 requests/s, HTTP Basic, with the reader
    following 10 accounts of 20 posts each.
    """
    authors = [f"author{i}" for i in range(10)]
    server = workspace.server("read", *twitter_role(workspace, "read"),
                              users=["reader", *authors])
    for author in authors:
        call(server, "POST", "/1.1/friendships/create.json", "reader", screen_name=author)
        for n in range(20 if not quick else 3):
            call(server, "POST", "/1.1/statuses/update.json", author, status=f"{author} {n}")
    path = "/1.1/statuses/home_timeline.json?count=20"
    headers = {"Authorization": basic("reader")}
    host, _, port = server.url.split("//", 1)[1].partition(":")
    connection = http.client.HTTPConnection(host, int(port))
    connection.request("GET", path, headers=headers)
    body = connection.getresponse().read()
    bare = workspace.bare(body)
    duration = 2.0 if quick else 10.0
    rss_before = _rss_kb(server)
    load(server.url, "GET", path, headers, duration=1.0)  # warm up
    real = load(server.url, "GET", path, headers, duration=duration)
    baseline = load(bare, "GET", path, headers, duration=duration)
    ratio = real.rate / baseline.rate
    # OAuth 1.0a: the same request signed (HMAC-SHA1) by oauthlib, with
    # the bare resource receiving the same signed requests.
    oauth = _oauth_credentials(server, "reader")
    load(server.url, "GET", path, {}, duration=1.0, oauth=oauth)
    signed = load(server.url, "GET", path, {}, duration=duration, oauth=oauth)
    signed_bare = load(bare, "GET", path, {}, duration=duration, oauth=oauth)
    signed_ratio = signed.rate / signed_bare.rate
    return [
        Result("API read: home_timeline (OAuth 1.0a)", signed.rate, "requests/s",
               signed_bare.rate, "bare resource, the same signed requests",
               "≥ 0.5 of the bare resource", signed_ratio >= 0.5,
               extra={"p50_ms": signed.percentile(50) * 1000,
                      "p99_ms": signed.percentile(99) * 1000}),
        Result("API read: home_timeline (Basic)", real.rate, "requests/s",
               baseline.rate, "bare twisted.web resource, same bytes",
               "≥ 0.5 of the bare resource", ratio >= 0.5,
               extra={"p50_ms": real.percentile(50) * 1000,
                      "p99_ms": real.percentile(99) * 1000,
                      "bare_p50_ms": baseline.percentile(50) * 1000,
                      "bytes": len(body),
                      # The caches' memory: the server's resident size
                      # grown over the reads (issue 16).
                      "rss_growth_kb": _rss_kb(server) - rss_before}),
    ]


def _rss_kb(server: "object") -> int:
    """
    The server process's resident memory (kB), 0 where /proc has none.
    """
    pid = server.process.pid  # type: ignore[attr-defined]
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _oauth_credentials(server: "object", handle: str) -> dict[str, str]:
    from benchmarks.harness import run_cli

    data = server.data  # type: ignore[attr-defined]
    done = run_cli("app", "create", "Benchmark", "--owner", handle, "--data", data)
    app = dict(line.split("=", 1) for line in done.stdout.splitlines())
    done = run_cli("token", "create", "--consumer-key", app["consumer_key"], "--user", handle,
                   "--data", data)
    token = dict(line.split("=", 1) for line in done.stdout.splitlines())
    return {"key": app["consumer_key"], "secret": app["consumer_secret"],
            "token": token["access_token"], "token_secret": token["access_token_secret"],
            "public_url": server.url}  # type: ignore[attr-defined]


def api_write(workspace: Workspace, quick: bool, postgres: str | None) -> list[Result]:
    """
    statuses/update.json posts/s, acknowledged once committed (survives a
    kill -9), on SQLite and on PostgreSQL, against the bare resource
    answering the same POST.
    """
    results = []
    duration = 2.0 if quick else 10.0
    bare = workspace.bare(b'{"ok":true}')
    path = "/1.1/statuses/update.json"
    headers = {"Authorization": basic("writer")}
    baseline = load(bare, "POST", path, headers, post=True, duration=duration)
    engines: list[tuple[str, tuple[str, ...]]] = [("SQLite", ())]
    if postgres:
        engines.append(("PostgreSQL", ("--database", postgres)))
    role = twitter_role(workspace, "write")
    for name, options in engines:
        server = workspace.server(f"write-{name}", *role, *options, users=["writer"])
        load(server.url, "POST", path, headers, post=True, duration=0.5)
        real = load(server.url, "POST", path, headers, post=True, duration=duration)
        # The same with 16 clients: how far the server goes when more posts
        # share a commit (with 4, each waits for a commit of its own group:
        # on PostgreSQL a flush of the WAL, milliseconds).
        more = load(server.url, "POST", path, headers, post=True, duration=duration,
                    connections=16)
        # Both engines (issue 16), posts written by group commit.
        results.append(Result(
            f"API write: statuses/update on {name}", real.rate, "posts/s",
            baseline.rate, "bare resource answering the POST", "≥ 1,000 posts/s",
            real.rate >= 1000,
            extra={"p50_ms": real.percentile(50) * 1000,
                   "p99_ms": real.percentile(99) * 1000,
                   "clients_16_per_s": more.rate},
        ))
    # The storage floor: sqlite3 alone, one committed insert per post, WAL
    # and synchronous=NORMAL as distwit uses it.
    path_db = workspace.path("floor.sqlite3")
    db = sqlite3.connect(path_db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, seq INTEGER, text TEXT)")
    count = 2000 if quick else 20000
    start = time.perf_counter()
    for n in range(count):
        db.execute("BEGIN")
        db.execute("INSERT INTO posts (seq, text) VALUES (?, ?)", (n, f"post {n}"))
        db.execute("COMMIT")
    floor = count / (time.perf_counter() - start)
    db.close()
    os.remove(path_db)
    sqlite_result = results[0]
    sqlite_result.extra["sqlite_floor_per_s"] = floor
    return results
