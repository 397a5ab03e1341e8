"""
A real SMTP server for the e-mail tests: aiosmtpd in a process of its
own, on a free loopback port, keeping every message it accepts in a folder.

Run as a program (``python -m tests.smtp_capture FOLDER [options]``) it
serves until killed, and prints ``PORT <n>`` once it listens.  From a test,
:class:`SMTPCapture` starts it, reads the messages and stops it.

Each accepted message is two files in the folder, written whole (a
temporary name, then a rename): ``<n>.eml``, the message as received, and
``<n>.json``, its envelope (``mail_from``, ``rcpt_tos``), whether the
session was under TLS, and who authenticated.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

#: The repository root, so the child process imports this checkout.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: How long the server may take to listen, and how long a test waits for
#: a message to arrive.
START_TIMEOUT = 30.0
ARRIVAL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Captured:
    """
    One message the server accepted.
    """

    mail_from: str
    rcpt_tos: list[str]
    tls: bool
    authenticated_as: str | None
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        text: str = part.get_content()  # type: ignore[attr-defined]
        return text.replace("\r\n", "\n")


class SMTPCapture:
    """
    The SMTP server process, seen from a test.

    :param folder: where it keeps the messages (created).
    :param certificate: ``(certificate PEM, key PEM)``: offer STARTTLS
        with them (or TLS from the start, with ``implicit_tls``).
    :param require_starttls: refuse mail before STARTTLS.
    :param implicit_tls: TLS from the first byte (``smtps://``).
    :param credentials: ``(user, password)``: AUTH required, with these.
    :param refuse: recipients answered 550 at RCPT.
    :param defer: recipients answered 451 at RCPT.
    """

    def __init__(
        self,
        folder: str,
        *,
        certificate: tuple[str, str] | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        refuse: tuple[str, ...] = (),
        defer: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder = os.path.abspath(folder)
        os.makedirs(folder, exist_ok=True)
        arguments = [sys.executable, "-m", "tests.smtp_capture", folder]
        if certificate is not None:
            arguments += ["--cert", os.path.abspath(certificate[0]),
                          "--key", os.path.abspath(certificate[1])]
        if require_starttls:
            arguments.append("--require-starttls")
        if implicit_tls:
            arguments.append("--implicit-tls")
        if credentials is not None:
            arguments += ["--user", credentials[0], "--password", credentials[1]]
        for address in refuse:
            arguments += ["--refuse", address]
        for address in defer:
            arguments += ["--defer", address]
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self._log_path = os.path.join(folder, "server.log")
        self._log = open(self._log_path, "wb")
        self.process = subprocess.Popen(
            arguments, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT, env=env
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        received = b""
        # One line, written as soon as the server listens.
        while b"\n" not in received:
            left = deadline - time.monotonic()
            ready = select.select([self.process.stdout], [], [], max(left, 0))[0]
            chunk = os.read(self.process.stdout.fileno(), 100) if ready else b""
            if not chunk:
                self.stop()
                raise RuntimeError(f"the SMTP server did not start: {self.log_text()}")
            received += chunk
        line = received.decode("ascii", "replace").strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the SMTP server did not start: {line!r}, {self.log_text()}")
        return int(line.split()[1])

    def log_text(self) -> str:
        with open(self._log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def messages(self) -> list[Captured]:
        """
        Every message accepted so far, in the order they arrived.
        """
        found = []
        names = sorted(
            (n for n in os.listdir(self.folder) if n.endswith(".json")),
            key=lambda n: int(n.split(".")[0]),
        )
        for name in names:
            with open(os.path.join(self.folder, name), encoding="utf-8") as f:
                envelope = json.load(f)
            with open(os.path.join(self.folder, name[:-5] + ".eml"), "rb") as f:
                raw = f.read()
            found.append(
                Captured(
                    envelope["mail_from"], envelope["rcpt_tos"], envelope["tls"],
                    envelope["authenticated_as"], raw,
                )
            )
        return found

    def wait_for(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[Captured]:
        """
        Block until at least ``count`` messages have arrived (a blocking
        wait: call it from a thread when the reactor must go on).
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def _tls_context(certificate: str, key: str) -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context


class _Keeper:
    """
    The aiosmtpd handler: refuses or defers the recipients it was told
    to, and keeps every message.
    """

    def __init__(self, folder: str, refuse: set[str], defer: set[str]) -> None:
        self.folder = folder
        self.refuse = refuse
        self.defer = defer
        self.count = 0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        if address.lower() in self.defer:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.count += 1
        base = os.path.join(self.folder, str(self.count))
        content = envelope.original_content or envelope.content
        with open(base + ".eml.tmp", "wb") as f:
            f.write(content)
        os.rename(base + ".eml.tmp", base + ".eml")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": (
                session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None
            ),
            "authenticated_as": session.auth_data if session.authenticated else None,
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


def main() -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--refuse", action="append", default=[])
    parser.add_argument("--defer", action="append", default=[])
    options = parser.parse_args()

    keeper = _Keeper(
        options.folder, {a.lower() for a in options.refuse}, {a.lower() for a in options.defer}
    )
    context = _tls_context(options.cert, options.key) if options.cert else None

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login.decode() == options.user
            and data.password.decode() == options.password
        )
        return AuthResult(success=good, handled=False,
                          auth_data=data.login.decode() if good else None)

    def factory() -> SMTP:
        keywords: dict[str, Any] = {"hostname": "capture.test", "timeout": 60}
        if context is not None and not options.implicit_tls:
            keywords["tls_context"] = context
            keywords["require_starttls"] = options.require_starttls
        if options.user:
            keywords["authenticator"] = authenticator
            keywords["auth_required"] = True
            keywords["auth_require_tls"] = context is not None
        return SMTP(keeper, **keywords)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", 0,
            ssl=context if options.implicit_tls else None,
        )
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
