"""
Deterministic counts for the API benchmarks: a twitter server run under
cProfile (twistd's ``--profile``), sent exactly ``--requests`` requests on
one keep-alive connection, then stopped; prints the function calls of the
reactor thread per request and the functions that cost most.  Call counts
do not depend on what else the machine runs, unlike requests/s.

Usage::

    python -m benchmarks.profile read|oauth|write [--requests N]
        [--postgres URL] [--top N] [--stats FILE] [--cpu]

With ``--cpu`` the server runs without the profiler and what is printed is
its CPU time (user + system, all its threads, from /proc) per request over
the requests: less exact than call counts, but in time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import pstats
import subprocess
import sys
import time

from benchmarks.api import _oauth_credentials
from benchmarks.harness import Workspace, basic, call, wait_until
from tests.processes import ServerProcess, child_environment, free_port


class ProfiledServer(ServerProcess):
    """
    A twitter server as the benchmarks start it, under twistd's profiler.
    """

    def __init__(self, data: str, stats: str | None, *options: str) -> None:
        self.data = data
        self.options = options
        self.tls = None
        self._ssl_context = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data + ".log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=",
             *((f"--profile={stats}", "--profiler=cprofile", "--savestats") if stats else ()),
             "distwit", "--listen", f"tcp:{self.port}:interface=127.0.0.1", "--data", data,
             "--public-url", self.url, "--peers-allow-private", "--admission", "open",
             *options],
            stdout=self._log, stderr=subprocess.STDOUT, env=child_environment(), cwd=data,
        )
        self.wait_for_health()


def _cpu_seconds(pid: int) -> float:
    """
    CPU time (user + system) of process ``pid`` so far.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["read", "oauth", "write"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--stats", default="/tmp/distwit-profile.stats")
    parser.add_argument("--cpu", action="store_true",
                        help="no profiler: the server's CPU time per request")
    args = parser.parse_args()
    workspace = Workspace()
    try:
        registry = workspace.server("registry", "--role", "registry")
        workspace.server("ping", "--role", "ping", "--registry", registry.url)
        wait_until(lambda: registry.request("GET", "/registry/pings")[1]["pings"], 20)
        data = workspace.path("server")
        os.makedirs(data)
        authors = [f"author{i}" for i in range(10)]
        database = ("--database", args.postgres) if args.postgres else ()
        workspace.users(data, ["reader", "writer", *authors], database)
        config = os.path.join(data, "bench.ini")
        with open(config, "w") as f:
            f.write("[twitter]\nrate_limit_reads = 1000000000\n"
                    "rate_limit_writes = 1000000000\n"
                    "rate_limit_address_reads = 1000000000\n"
                    "rate_limit_address_writes = 1000000000\n"
                    "daily_post_limit = 1000000000\n")
        if os.path.exists(args.stats):
            os.remove(args.stats)
        server = ProfiledServer(data, None if args.cpu else args.stats, "--role", "twitter",
                                "--registry", registry.url, "--config", config, *database)
        workspace.processes.append(server)
        oauth = None
        if args.kind != "write":
            for author in authors:
                call(server, "POST", "/1.1/friendships/create.json", "reader",
                     screen_name=author)
                for n in range(3):
                    call(server, "POST", "/1.1/statuses/update.json", author,
                         status=f"{author} {n}")
            if args.kind == "oauth":
                oauth = _oauth_credentials(server, "reader")
        time.sleep(0.5)
        signer = None
        if oauth is not None:
            from oauthlib.oauth1 import Client

            signer = Client(oauth["key"], client_secret=oauth["secret"],
                            resource_owner_key=oauth["token"],
                            resource_owner_secret=oauth["token_secret"])
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        method, path = "GET", "/1.1/statuses/home_timeline.json?count=20"
        headers = {"Authorization": basic("reader")}
        if args.kind == "write":
            method, path = "POST", "/1.1/statuses/update.json"
            headers = {"Authorization": basic("writer"),
                       "Content-Type": "application/x-www-form-urlencoded"}

        def send(connection: http.client.HTTPConnection, pid: int) -> tuple[float, float, bytes]:
            nonlocal headers
            start = time.perf_counter()
            cpu_before = _cpu_seconds(pid)
            answer = b""
            for n in range(args.requests):
                body = f"status=profiled post {n}".encode() if method == "POST" else None
                if signer is not None:
                    _, signed, _ = signer.sign(oauth["public_url"] + path, method)  # type: ignore
                    headers = signed
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status}")
            return time.perf_counter() - start, _cpu_seconds(pid) - cpu_before, answer

        elapsed, cpu, answer = send(connection, server.process.pid)
        connection.close()
        bare_cpu = None
        if args.cpu:
            # The bare resource, the same bytes and requests, measured alike.
            bare_url = workspace.bare(answer)
            bare = workspace.processes[-1]
            port = int(bare_url.rsplit(":", 1)[1])
            _, bare_cpu, _ = send(http.client.HTTPConnection("127.0.0.1", port, timeout=30),
                                  bare.pid)
        server.stop()
        workspace.processes.remove(server)
    finally:
        workspace.close()
    if args.cpu:
        assert bare_cpu is not None
        print(f"{args.kind}: {args.requests} requests in {elapsed:.1f} s (one connection):"
              f" server CPU {cpu / args.requests * 1000:.3f} ms a request; the bare"
              f" resource {bare_cpu / args.requests * 1000:.3f} ms; ratio (bare/server)"
              f" {bare_cpu / cpu:.2f}")
        return
    stats = pstats.Stats(args.stats)
    print(f"{args.kind}: {args.requests} requests in {elapsed:.1f} s (one connection, profiled)")
    print(f"function calls of the reactor thread per request: "
          f"{stats.total_calls / args.requests:.0f} (whole run incl. start-up: "  # type: ignore
          f"{stats.total_calls})")  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
