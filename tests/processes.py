"""
Real distwit processes on loopback for the end-to-end tests: start one,
wait for ``/health``, talk to it with plain HTTP, stop or kill it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

#: The repository root, so child processes import this checkout.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: How long a server may take to answer /health after starting.
START_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """
    A TCP port on ``host`` (a loopback address) that nothing listens on just now.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(
    *args: str, stdin: str = "", cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """
    Run the ``distwit`` command of this checkout.
    """
    return subprocess.run(
        [sys.executable, "-m", "distwit.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_environment(),
        timeout=120,
    )


class ServerProcess:
    """
    One ``twistd -n distwit`` process listening on 127.0.0.1.
    """

    def __init__(
        self,
        data: str,
        *options: str,
        port: int | None = None,
        tls: tuple[str, str, str] | None = None,
        host: str = "127.0.0.1",
        lab: bool = True,
        preamble: str = "",
    ) -> None:
        """
        :param tls: ``(private key, certificate, CA file)`` PEM paths: listen
            on ``ssl:`` and talk https, trusting that CA.
        :param host: the loopback address to listen on.  Browsers share
            cookies between ports of one host, so servers a browser test
            visits side by side each get their own (127.0.0.2, 127.0.0.3...).
        :param lab: run as a federation on one machine does: peers on
            loopback may be reached (``--peers-allow-private``) and the
            registry lists every ping server that signs (``--admission
            open``).  ``False`` keeps the defaults of a server on the
            internet.
        :param preamble: Python run in the server process before twistd
            (e.g. registering a test channel: tests/device_channels.py).
        """
        self.data = data
        self.options = options
        self.preamble = preamble
        self.tls = tls
        self.port = port or free_port(host)
        if tls is None:
            self.url = f"http://{host}:{self.port}"
            listen = f"tcp:{self.port}:interface={host}"
            self._ssl_context = None
        else:
            key, cert, ca = tls
            self.url = f"https://127.0.0.1:{self.port}"
            listen = f"ssl:{self.port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
            self._ssl_context = ssl.create_default_context(cafile=ca)
        os.makedirs(data, exist_ok=True)
        self.log_path = os.path.join(data, "..", os.path.basename(data) + f"-{self.port}.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                preamble + "\nfrom twisted.scripts.twistd import run; run()",
                "-n",
                "--pidfile=",
                "distwit",
                "--listen",
                listen,
                "--data",
                data,
                *(() if "--public-url" in options else ("--public-url", self.url)),
                *(("--peers-allow-private", "--admission", "open") if lab else ()),
                *options,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            cwd=data,
        )
        self.wait_for_health()

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_for_health(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.log_text()}"
                )
            try:
                code, body = self.request("GET", "/health")
                if code == 200:
                    return body
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no /health after {START_TIMEOUT}s:\n{self.log_text()}")
            time.sleep(0.1)

    def request(
        self,
        method: str,
        path: str,
        auth: tuple[str, str] | None = None,
        data: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        body = None if data is None else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(
                request, timeout=30, context=self._ssl_context
            ) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read())

    def stop(self) -> None:
        """
        Stop gracefully (SIGTERM) and wait.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def kill(self) -> None:
        """
        kill -9: no chance to flush or close anything.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._log.close()


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
