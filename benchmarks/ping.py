"""
The ping server's directory: bytes of an idle exchange as subscriptions
grow, and memory per entry.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.harness import ROOT, Result, Workspace

_MEMORY = r"""
import gc, json, resource, sys, tracemalloc
from twisted.internet.task import Clock
from distwit.ping.directory import MemoryDirectory
n = int(sys.argv[1])
clock = Clock()
directory = MemoryDirectory(clock)
gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
batch = {}
for i in range(n):
    batch[f"user{i}@server{i % 100}.example"] = (i % 1000 + 1, f"https://server{i % 100}.example")
    if len(batch) == 10000:
        directory.report(f"https://server{i % 100}.example", batch)
        batch = {}
if batch:
    directory.report("https://server0.example", batch)
gc.collect()
after = tracemalloc.get_traced_memory()[0]
print(json.dumps({"entries": len(directory), "bytes": after - before}))
"""

def directory_memory(quick: bool) -> list[Result]:
    n = 100_000 if quick else 1_000_000
    done = subprocess.run([sys.executable, "-c", _MEMORY, str(n)], capture_output=True,
                          text=True, cwd=ROOT, timeout=900, check=True)
    measured = json.loads(done.stdout)
    empty = subprocess.run([sys.executable, "-c", _MEMORY, "0"], capture_output=True,
                           text=True, cwd=ROOT, timeout=300, check=True)
    baseline = json.loads(empty.stdout)
    per_entry = (measured["bytes"] - baseline["bytes"]) / measured["entries"]
    return [Result(
        f"Ping directory: memory per entry at {measured['entries']:,} entries", per_entry,
        "bytes", None, "an empty directory (subtracted)", "≤ 200 bytes", per_entry <= 200,
    )]


class SignedPeer:
    """
    A twitter server of our own making: it publishes a key and signs its
    exchanges, as distwit's sync service does.
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from distwit.s2s.keys import ServerKey
        from distwit.s2s.metadata import metadata_document

        self.key = ServerKey.generate()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps(peer.metadata).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.metadata = metadata_document(self.url, "twitter", ["twitter"], self.key, {}, "0")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def exchange(self, ping_url: str, value: dict[str, object]) -> tuple[int, int, dict]:
        """
        One signed exchange: (bytes sent, bytes received, the answer).
        """
        import http.client
        import secrets
        import time

        from distwit.s2s.signatures import sign_request

        url = ping_url + "/ping/exchange"
        body = json.dumps(value, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(sign_request(self.key, self.url, "POST", url, body, time.time(),
                                    secrets.token_hex(8)))
        host, _, port = ping_url.split("//", 1)[1].partition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.request("POST", "/ping/exchange", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        sent = len(body) + sum(len(k) + len(v) + 4 for k, v in headers.items())
        received = len(answer) + sum(len(k) + len(v) + 4 for k, v in response.getheaders())
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"exchange: {response.status} {answer[:300]!r}")
        return sent, received, json.loads(answer)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def idle_exchange(workspace: Workspace, quick: bool) -> list[Result]:
    """
    Bytes of an idle exchange (request and answer, headers included) for
    a server with 10, 10,000 and 100,000 subscriptions; the baseline is
    the 10-subscription case (the target is flat).
    """
    ping = workspace.server("ping-bytes", "--role", "ping")
    sizes = {}
    peer = SignedPeer()
    try:
        for n in (10, 10_000, 100_000):
            accts = [f"user{i}@author{n}.example" for i in range(n)]
            # As the sync service does: the whole list at a reset, in
            # bodies under the ping server's 1 MB cap.
            chunks = [accts[i:i + 20_000] for i in range(0, n, 20_000)]
            _, _, first = peer.exchange(ping.url, {
                "server": peer.url, "subscribe": chunks[0], "reset": True, "cursor": None,
            })
            for chunk in chunks[1:]:
                _, _, first = peer.exchange(ping.url, {
                    "server": peer.url, "subscribe": chunk, "cursor": first["cursor"],
                    "epoch": first["epoch"],
                })
            sent, received, _ = peer.exchange(ping.url, {
                "server": peer.url, "cursor": first["cursor"], "epoch": first["epoch"],
            })
            sizes[n] = sent + received
    finally:
        peer.close()
    return [
        Result(f"Ping: bytes per idle exchange, {n:,} subscriptions", float(size), "bytes",
               float(sizes[10]), "the same with 10 subscriptions", "flat (ratio ≈ 1)",
               size <= sizes[10] * 1.1)
        for n, size in sizes.items()
    ]


def exchange_throughput(workspace: Workspace, quick: bool) -> list[Result]:
    """
    Report entries and subscription changes a ping server takes per
    second through signed exchanges (batches of 5,000), against the same
    work done on its directory in-process (no HTTP, JSON or signatures).
    """
    import time

    from twisted.internet.task import Clock

    from distwit.ping.directory import MemoryDirectory

    batches = 10 if quick else 60
    size = 5000
    ping = workspace.server("ping-throughput", "--role", "ping")
    peer = SignedPeer()
    results = []
    try:
        home = peer.url
        authority = home.split("//", 1)[1]

        def reports(n: int) -> dict[str, int]:
            return {f"user{i}@{authority}": n for i in range(size)}

        _, _, state = peer.exchange(ping.url, {"server": peer.url, "reset": True})
        start = time.perf_counter()
        for n in range(1, batches + 1):
            _, _, state = peer.exchange(ping.url, {
                "server": peer.url, "cursor": state["cursor"], "epoch": state["epoch"],
                "reports": reports(n),
            })
        reported = batches * size / (time.perf_counter() - start)

        start = time.perf_counter()
        for n in range(1, batches + 1):
            accts = [f"user{i}@author{n}.example" for i in range(size)]
            key = "subscribe" if n % 2 else "unsubscribe"
            if key == "unsubscribe":
                accts = [f"user{i}@author{n - 1}.example" for i in range(size)]
            _, _, state = peer.exchange(ping.url, {
                "server": peer.url, "cursor": state["cursor"], "epoch": state["epoch"],
                key: accts,
            })
        changed = batches * size / (time.perf_counter() - start)
    finally:
        peer.close()

    directory = MemoryDirectory(Clock())
    start = time.perf_counter()
    for n in range(1, batches + 1):
        directory.report(peer.url, {a: (n, peer.url) for a in reports(n)})
    direct_reports = batches * size / (time.perf_counter() - start)
    start = time.perf_counter()
    for n in range(1, batches + 1):
        if n % 2:
            directory.subscribe("reader", [f"user{i}@author{n}.example" for i in range(size)])
        else:
            directory.unsubscribe("reader",
                                  [f"user{i}@author{n - 1}.example" for i in range(size)])
    direct_changes = batches * size / (time.perf_counter() - start)
    results.append(Result("Ping: report entries through exchanges", reported, "entries/s",
                          direct_reports, "the directory in-process", "(no target)", None))
    results.append(Result("Ping: subscription changes through exchanges", changed,
                          "changes/s", direct_changes, "the directory in-process",
                          "(no target)", None))
    return results
