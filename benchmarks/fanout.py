"""
Issue 16's reads under load: single-item range fetches of a fresh post,
straight from one twitter process and through a front's cache (nginx
``proxy_cache`` micro-caching, as docs/design/fan-out.md configures it);
and the p99 of home_timeline reads while posts are written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

from benchmarks.api import twitter_role
from benchmarks.harness import Load, Result, Workspace, basic, call, free_port, load

#: The front's configuration (docs/design/fan-out.md), for one upstream.
NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    proxy_cache_path {work}/cache levels=1:2 keys_zone=feeds:10m max_size=100m
                     inactive=60s use_temp_path=off;
    upstream twitter {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        # Range and person feeds: as long as their Cache-Control says
        # (a second for a range, no-cache for an open one), one request
        # at a time to the server per feed, the old copy meanwhile.
        location ~ ^/(s2s/feed/|[^/]+\\.(rss|atom)$) {{
            proxy_pass http://twitter;
            proxy_cache feeds;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 2s;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            proxy_cache_revalidate on;
            add_header X-Cache $upstream_cache_status;
        }}
        location / {{
            proxy_pass http://twitter;
        }}
    }}
}}
"""


def nginx_front(workspace: Workspace, upstream_url: str) -> str | None:
    """
    Start nginx in front of ``upstream_url`` with the feeds cached; its URL,
    or ``None`` when nginx is not installed.
    """
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if nginx is None:
        return None
    work = workspace.path("nginx")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "cache"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    port = free_port()
    upstream = int(upstream_url.rsplit(":", 1)[1])
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, upstream=upstream, port=port))
    process = subprocess.Popen([nginx, "-p", work, "-c", conf],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workspace.processes.append(process)
    url = f"http://127.0.0.1:{port}"
    import http.client

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            connection.getresponse().read()
            return url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not start")


def range_fetch(workspace: Workspace, quick: bool) -> list[Result]:
    """
    ``/s2s/feed/HANDLE.rss?from=N&to=N`` of a post just made, as every
    follower server fetches it: from the process, and through the front.
    """
    server = workspace.server("fanout", *twitter_role(workspace, "fanout"), users=["scoble"])
    for n in range(20):
        call(server, "POST", "/1.1/statuses/update.json", "scoble", status=f"post {n}")
    fresh = call(server, "POST", "/1.1/statuses/update.json", "scoble", status="fresh news")
    path = f"/s2s/feed/scoble.rss?from={fresh_seq(server)}&to={fresh_seq(server)}"
    assert fresh["text"] == "fresh news"
    duration = 2.0 if quick else 10.0
    load(server.url, "GET", path, {}, duration=0.5)
    direct = load(server.url, "GET", path, {}, duration=duration)
    results = [Result(
        "Range fetch: single fresh item, one process", direct.rate, "requests/s",
        None, "", "(baseline of the front)", None,
        extra={"p99_ms": direct.percentile(99) * 1000},
    )]
    front = nginx_front(workspace, server.url)
    if front is not None:
        load(front, "GET", path, {}, duration=0.5)
        cached = load(front, "GET", path, {}, duration=duration)
        results.append(Result(
            "Range fetch: single fresh item, through nginx proxy_cache", cached.rate,
            "requests/s", direct.rate, "one process, no cache", "≥ 5,000/s",
            cached.rate >= 5000, extra={"p99_ms": cached.percentile(99) * 1000},
        ))
    return results


def fresh_seq(server: object) -> int:
    code, body = server.request("GET", "/s2s/last/scoble.json")  # type: ignore[attr-defined]
    return int(body["last"])


def reads_under_writes(workspace: Workspace, quick: bool) -> list[Result]:
    """
    p99 of home_timeline reads (Basic, 4 connections) while two more
    connections post as fast as they are answered, against the same reads
    alone in the same run.
    """
    authors = [f"author{i}" for i in range(10)]
    server = workspace.server("mixed", *twitter_role(workspace, "mixed"),
                              users=["reader", "writer", *authors])
    for author in authors:
        call(server, "POST", "/1.1/friendships/create.json", "reader", screen_name=author)
        for n in range(3):
            call(server, "POST", "/1.1/statuses/update.json", author, status=f"{author} {n}")
    call(server, "POST", "/1.1/friendships/create.json", "reader", screen_name="writer")
    path = "/1.1/statuses/home_timeline.json?count=20"
    headers = {"Authorization": basic("reader")}
    duration = 3.0 if quick else 10.0
    load(server.url, "GET", path, headers, duration=0.5)
    alone = load(server.url, "GET", path, headers, duration=duration)
    written: list[Load] = []

    def write() -> None:
        written.append(load(server.url, "POST", "/1.1/statuses/update.json",
                            {"Authorization": basic("writer")}, post=True,
                            duration=duration + 1.0, connections=2))

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.7)  # the writers' processes up and posting
    mixed = load(server.url, "GET", path, headers, duration=duration)
    writer.join()
    return [Result(
        "Reads under writes: home_timeline p99", mixed.percentile(99) * 1000, "ms",
        alone.percentile(99) * 1000, "the same reads alone (p99)", "(measured)", None,
        extra={"reads_per_s": mixed.rate, "alone_reads_per_s": alone.rate,
               "p50_ms": mixed.percentile(50) * 1000,
               "posts_per_s": written[0].rate if written else 0.0},
    )]
