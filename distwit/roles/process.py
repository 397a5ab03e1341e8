"""
What one process shares whatever roles it serves: the data folder, the
server's identity (its signing key), one outgoing HTTP connection pool, the
signed client built on it and the verifier of incoming signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from distwit.config import DataFolder, Settings
from distwit.s2s.client import S2SClient, make_http_client
from distwit.s2s.keys import ServerKey
from distwit.s2s.outbound import OutboundPolicy
from distwit.s2s.verifier import SignatureVerifier, metadata_fetcher
from distwit.store.schema import DatabaseURLError, Engine

T = TypeVar("T")


def thread_runner(reactor: Any) -> Any:
    """
    ``f(*args)`` in the reactor's thread pool, as a Deferred.
    """

    def run(f: Any, *args: Any, **kwargs: Any) -> "Deferred[Any]":
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)

    return run


def open_or_exit(make_engine: Callable[[], Engine], open_: Callable[[Engine], T]) -> T:
    """
    Open (and migrate) a role's database, or exit with a message that says
    what is wrong: a database setting no engine reads, or a database that
    cannot be opened (unreachable, or made by a newer distwit).
    """
    try:
        engine = make_engine()
    except DatabaseURLError as e:
        raise SystemExit(f"distwit: {e}") from None
    try:
        return open_(engine)
    except Exception as e:
        raise SystemExit(f"distwit: cannot open {engine.describe()}: {e}") from None


def prepare_data_folder(folder: DataFolder) -> None:
    """
    Create the data folder (readable by its owner only) if it is missing,
    or exit with a message that says why it cannot be.
    """
    try:
        folder.prepare()
    except OSError as e:
        raise SystemExit(
            f"distwit: cannot create data folder {folder.path}: {e.strerror}"
        ) from None


class HTTPClientService(Service):
    """
    Closes the process's one outgoing HTTP connection pool when the
    process stops.
    """

    name = "http-client"

    def __init__(self, client: Any) -> None:
        self.client = client

    def stopService(self) -> Any:
        super().stopService()
        return self.client.close()


@dataclass
class ProcessParts:
    """
    One identity, one outgoing connection pool and one verifier per
    process.

    :ivar key: the server's signing key.
    :ivar http_client: the outgoing pool (closed by :attr:`closer`).
    :ivar client: signed requests to other servers.
    :ivar verifier: checks requests from other servers.
    :ivar closer: the service that closes the pool when the process stops.
    :ivar policy: where the outgoing pool may connect.
    """

    key: ServerKey
    http_client: Any
    client: S2SClient
    verifier: SignatureVerifier
    closer: HTTPClientService
    policy: OutboundPolicy


def make_process_parts(settings: Settings, reactor: Any) -> ProcessParts:
    """
    Load (or first create) the server key and build the outgoing HTTP
    client and the verifier; exit with a message if the key or the CA file
    is unusable.
    """
    folder = settings.data_folder
    try:
        key = ServerKey.load_or_create(folder.server_key)
    except (OSError, ValueError) as e:
        raise SystemExit(
            f"distwit: cannot load the server key in {folder.path}: {e}"
        ) from None
    # One policy for every connection of the process: this server and the
    # operator's registry are trusted (the twitter role adds the ping servers it
    # lists); anything else was named by someone else and may not be on a
    # private network unless peers_allow_private.
    policy = OutboundPolicy(
        allow_private=settings.peers_allow_private,
        trusted=[settings.public_url] + ([settings.registry] if settings.registry else []),
    )
    try:
        http_client = make_http_client(reactor, ca_file=settings.ca_file or None, policy=policy)
    except (OSError, ValueError) as e:
        raise SystemExit(f"distwit: cannot use the CA file {settings.ca_file}: {e}") from None
    client = S2SClient(http_client, key, settings.public_url, reactor)
    verifier = SignatureVerifier(
        metadata_fetcher(http_client, reactor), reactor, settings.public_url
    )
    return ProcessParts(
        key, http_client, client, verifier, HTTPClientService(http_client), policy
    )
