"""
What the benchmarks share: servers as real processes on loopback, a load
generator of several client processes with keep-alive connections, and
the result table.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.processes import ServerProcess, free_port, run_cli  # noqa: E402

PASSWORD = "correct horse battery"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]


def insert_accounts(db: sqlite3.Connection, handles: list[str], authority: str = "",
                    home: str = "") -> list[int]:
    """
    Add accounts straight into a stopped server's SQLite database (the
    schema is already there), with ids after the largest one; local unless
    ``authority`` is given.  Returns their ids, in the order of ``handles``.
    The caller commits.
    """
    now = int(time.time() * 1000)
    first = db.execute("SELECT COALESCE(MAX(id), 0) FROM accounts").fetchone()[0] + 1
    db.executemany(
        "INSERT INTO accounts (id, handle, handle_key, authority, name, created_at, home_url)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(first + i, handle, handle.lower(), authority, handle, now, home)
         for i, handle in enumerate(handles)],
    )
    return list(range(first, first + len(handles)))


class Workspace:
    """
    A temporary folder for servers' data, removed at the end, and the
    processes started in it, stopped at the end.
    """

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="distwit-bench-")
        self.processes: list[Any] = []

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def users(self, data: str, handles: list[str], database: tuple[str, ...] = ()) -> None:
        for handle in handles:
            done = run_cli("adduser", "--create", handle, "--data", data, *database,
                           stdin=PASSWORD + "\n")
            if done.returncode != 0:
                raise RuntimeError(done.stderr)

    def server(self, name: str, *options: str, users: Sequence[str] = (),
               port: int | None = None) -> ServerProcess:
        data = self.path(name)
        os.makedirs(data, exist_ok=True)
        database: tuple[str, ...] = ()
        if "--database" in options:
            database = ("--database", options[options.index("--database") + 1])
        self.users(data, list(users), database)
        if "--config" not in options:
            # A load generator is no abuser: no rate limits in its way.
            config = os.path.join(data, "bench.ini")
            with open(config, "w") as f:
                f.write("[twitter]\nrate_limit_reads = 1000000000\n"
                        "rate_limit_writes = 1000000000\n"
                        "rate_limit_address_reads = 1000000000\n"
                        "rate_limit_address_writes = 1000000000\n"
                        "daily_post_limit = 1000000000\n")
            options = (*options, "--config", config)
        server = ServerProcess(data, *options, port=port)
        self.processes.append(server)
        return server

    def bare(self, body: bytes) -> str:
        path = self.path(f"bare-{len(self.processes)}.json")
        with open(path, "wb") as f:
            f.write(body)
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bare_server", str(port), path], cwd=ROOT
        )
        self.processes.append(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/")
                connection.getresponse().read()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the bare server did not start")

    def close(self) -> None:
        for process in self.processes:
            if isinstance(process, ServerProcess):
                process.stop()
            else:
                process.terminate()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _worker(args: tuple[Any, ...]) -> list[float]:
    url, method, path, headers, body_kind, duration, limit, index, oauth = args
    signer = None
    if oauth is not None:
        from oauthlib.oauth1 import Client

        signer = Client(oauth["key"], client_secret=oauth["secret"],
                        resource_owner_key=oauth["token"],
                        resource_owner_secret=oauth["token_secret"])
    host, _, port = url.split("//", 1)[1].partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    latencies = []
    deadline = time.monotonic() + duration
    n = 0
    while time.monotonic() < deadline and n < limit:
        body = None
        if body_kind == "post":
            body = f"status=benchmark post {index} {n} {time.monotonic_ns()}".encode()
        start = time.perf_counter()
        if signer is not None:
            _, signed, _ = signer.sign(oauth["public_url"] + path, method)
            headers = {**headers, **signed}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status}")
        n += 1
    connection.close()
    return latencies


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def load(url: str, method: str, path: str, headers: dict[str, str], *,
         post: bool = False, duration: float = 3.0, limit: int = 100_000,
         connections: int = 4, oauth: dict[str, str] | None = None) -> Load:
    """
    ``connections`` client processes, each with one keep-alive connection,
    sending requests for ``duration`` seconds (at most ``limit`` each).
    """
    if post:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    jobs = [(url, method, path, headers, "post" if post else None, duration, limit, i, oauth)
            for i in range(connections)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(connections) as pool:
        start = time.perf_counter()
        results = pool.map(_worker, jobs)
        elapsed = time.perf_counter() - start
    latencies = [x for r in results for x in r]
    # Rate over the time the workers ran (pool start-up excluded).
    busy = max(sum(r) for r in results) if results else elapsed
    return Load(len(latencies), busy, latencies)


def call(server: ServerProcess, method: str, path: str, user: str, **data: Any) -> Any:
    code, body = server.request(method, path, auth=(user, PASSWORD), data=data or None)
    if code != 200:
        raise RuntimeError(f"{method} {path}: {code} {body}")
    return body


def wait_until(condition: Callable[[], Any], timeout: float, step: float = 0.005) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"not within {timeout}s")
        time.sleep(step)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def to_json(results: list[Result]) -> str:
    return json.dumps(
        [{**r.__dict__, "ratio": r.ratio} for r in results], indent=2, default=str
    )
