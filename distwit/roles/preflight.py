"""
What ``twistd distwit`` checks before it creates anything (the data
folder, keys, a database) or listens: each problem an operator can make
is one sentence on standard error and a non-zero exit status, never a
traceback, and nothing is left behind (docs/operating.md, "Start-up
errors").
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, NoReturn

from twisted.internet import endpoints

from distwit.config import Settings


def fail(message: str) -> NoReturn:
    """
    Stop the start: twistd prints the message on standard error and exits
    with status 1.
    """
    raise SystemExit(f"distwit: {message}")


def check_listen(listen: str, reactor: Any) -> None:
    """
    ``listen`` is a server endpoint Twisted reads, and its TCP port is free.
    """
    try:
        endpoint = endpoints.serverFromString(reactor, listen)
    except Exception as e:
        fail(f"cannot listen on {listen!r}: {e or type(e).__name__} (for example tcp:8080,"
             " tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=KEY.pem)")
    port = getattr(endpoint, "_port", None)
    if port is None:
        wrapped = getattr(endpoint, "_wrappedEndpoint", None)  # TLS endpoints
        port = getattr(wrapped, "_port", None)
        endpoint = wrapped or endpoint
    if not isinstance(port, int) or port == 0:
        return
    interface = getattr(endpoint, "_interface", "") or ""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As Twisted listens: with SO_REUSEADDR, so a port in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((interface, port))
    except OSError as e:
        where = f"{interface}:{port}" if interface else f"port {port}"
        if e.errno == errno.EADDRINUSE:
            fail(f"cannot listen on {where}: it is in use (another server runs there?)")
        if e.errno == errno.EACCES:
            fail(f"cannot listen on {where}: permission denied (ports below 1024 need root"
                 " or CAP_NET_BIND_SERVICE)")
        fail(f"cannot listen on {where}: {e.strerror}")
    finally:
        probe.close()


def check_readable(path: str, what: str) -> None:
    """
    A file that exists must be readable.
    """
    if os.path.exists(path) and not os.access(path, os.R_OK):
        fail(f"cannot read {what} {path}: permission denied")


def check_data_folder(settings: Settings) -> None:
    """
    The data folder can be made (or is a folder we may write), and the keys
    in it can be read and used.
    """
    from distwit.s2s.keys import ServerKey

    folder = settings.data_folder
    path = folder.path
    if os.path.exists(path):
        if not os.path.isdir(path):
            fail(f"the data folder {path} is not a folder")
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            fail(f"cannot use the data folder {path}: permission denied")
    else:
        parent = os.path.dirname(path.rstrip(os.sep)) or os.sep
        existing = parent
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
            fail(f"cannot create the data folder {path}: {existing} is not writable")
        return
    for key_path, what in (
        (folder.server_key, "the server key"),
        (folder.oidc_keys, "the ID-token keys"),
        (folder.web_secret, "the web secret"),
    ):
        check_readable(key_path, what)
    if os.path.exists(folder.server_key):
        try:
            with open(folder.server_key, "rb") as f:
                ServerKey.from_pem(f.read())
        except (OSError, ValueError) as e:
            fail(f"cannot use the server key {folder.server_key}: {e}")
    if settings.ca_file and not os.access(settings.ca_file, os.R_OK):
        fail(f"cannot read the CA file {settings.ca_file}")


def check_database(settings: Settings) -> None:
    """
    The twitter role's database can be opened: a SQLite file's folder
    exists (or is the data folder, made at start), a PostgreSQL server
    answers and has the database.
    """
    from distwit.store.schema import DatabaseURLError, engine_for

    if settings.role not in ("all", "twitter"):
        return
    folder = settings.data_folder
    database = settings.database or "sqlite:" + folder.twitter_database
    try:
        engine = engine_for(database, folder.path)
    except DatabaseURLError as e:
        fail(str(e))
    path = getattr(engine, "path", None)
    if path is not None:
        where = os.path.dirname(path)
        if os.path.exists(path):
            if not os.access(path, os.R_OK | os.W_OK):
                fail(f"cannot open the SQLite database {path}: permission denied")
        elif os.path.abspath(where) != os.path.abspath(folder.path) and not os.path.isdir(where):
            fail(f"cannot create the SQLite database {path}: there is no folder {where}")
        return
    try:
        connection = engine.connect()
    except Exception as e:
        fail(f"cannot open the {engine.describe()}: {' '.join(str(e).split())}")
    else:
        connection.close()


def check_before_start(settings: Settings, reactor: Any) -> None:
    """
    Everything :func:`distwit.tap.makeService` needs, checked before it
    creates anything.
    """
    check_listen(settings.listen, reactor)
    check_data_folder(settings)
    check_database(settings)
