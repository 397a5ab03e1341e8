"""
Where the registry keeps its list of ping servers between restarts.

The live list is in memory (:class:`~distwit.registry.service.RegistryService`);
this store is its copy on disk, so a restarted registry forgets no one.
It is small: one row per ping server, written at every heartbeat.

The SQLite file is ``<data_dir>/registry.sqlite3``, apart from the twitter
role's database, so a registry alone needs nothing else and the twitter
role's migrations never touch it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from zope.interface import Interface, implementer

#: The store's file name inside the data folder.
STORE_FILE_NAME = "registry.sqlite3"

# One table, created when missing.  Should it ever change, this is where a
# numbered migration (PRAGMA user_version) would go.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ping_servers (
    public_url TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_heard REAL NOT NULL
)
"""


@dataclass(frozen=True)
class RegistryEntry:
    """
    One registered ping server.

    :ivar public_url: its public URL, no trailing slash (the signer's URL).
    :ivar public_key: its Ed25519 public key, unpadded base64url.
    :ivar first_seen: when it first registered (seconds since the epoch).
    :ivar last_heard: when it last registered or sent a heartbeat.
    """

    public_url: str
    public_key: str
    first_seen: float
    last_heard: float


class IRegistryStore(Interface):
    """
    The registry's list of ping servers on disk.
    """

    def upsert(public_url, public_key, now):
        """
        Record a registration or heartbeat: a new row (first seen and last
        heard ``now``), or the key and last heard time of an existing one
        (its first seen time kept).

        :return: Deferred firing with None once it is written.
        """

    def remove(public_url):
        """
        Forget a ping server (nothing happens if it is not there).

        :return: Deferred firing with None once it is written.
        """

    def all():
        """
        :return: Deferred firing with every :class:`RegistryEntry`, sorted
            by URL.
        """

    def close():
        """
        Release the file; no call may follow.

        :return: Deferred firing with None.
        """


@implementer(IRegistryStore)
class SQLiteRegistryStore:
    """
    The list in an SQLite file, through one adbapi connection in WAL mode.

    Every statement runs in the pool's thread (``runInteraction``); with a
    single connection they run one at a time in the order they were asked
    for, so a heartbeat and the sweep that would drop the same server
    cannot overtake each other.

    :param path: the SQLite file, created with the table if missing.
    :param reactor: the reactor whose threads run the SQL.
    """

    def __init__(self, path: str, reactor: Any) -> None:
        self.path = path
        self._pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            cp_min=1,
            cp_max=1,
            cp_openfun=self._setup,
            cp_reactor=reactor,
        )

    @staticmethod
    def _setup(connection: sqlite3.Connection) -> None:
        # The same settings as the twitter role's SQLite database: WAL, and
        # committed rows survive a kill -9 of the process.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute(_SCHEMA)
        connection.commit()

    def upsert(self, public_url: str, public_key: str, now: float) -> Deferred[None]:
        def interaction(cursor: Any) -> None:
            cursor.execute(
                "INSERT INTO ping_servers (public_url, public_key, first_seen, last_heard)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (public_url) DO UPDATE"
                " SET public_key = excluded.public_key, last_heard = excluded.last_heard",
                (public_url, public_key, now, now),
            )

        return self._pool.runInteraction(interaction)

    def remove(self, public_url: str) -> Deferred[None]:
        def interaction(cursor: Any) -> None:
            cursor.execute("DELETE FROM ping_servers WHERE public_url = ?", (public_url,))

        return self._pool.runInteraction(interaction)

    def all(self) -> Deferred[list[RegistryEntry]]:
        def interaction(cursor: Any) -> list[RegistryEntry]:
            cursor.execute(
                "SELECT public_url, public_key, first_seen, last_heard"
                " FROM ping_servers ORDER BY public_url"
            )
            return [
                RegistryEntry(str(url), str(key), float(first), float(last))
                for url, key, first, last in cursor.fetchall()
            ]

        return self._pool.runInteraction(interaction)

    def close(self) -> Deferred[None]:
        return maybeDeferred(self._pool.close)


@implementer(IRegistryStore)
class MemoryRegistryStore:
    """
    The list in a dict: for tests, and for a registry that may forget.
    Answers at once.  ``closed`` tells whether :meth:`close` was called.
    """

    def __init__(self) -> None:
        self.rows: dict[str, RegistryEntry] = {}
        self.closed = False

    def upsert(self, public_url: str, public_key: str, now: float) -> Deferred[None]:
        old = self.rows.get(public_url)
        first_seen = now if old is None else old.first_seen
        self.rows[public_url] = RegistryEntry(public_url, public_key, first_seen, now)
        return succeed(None)

    def remove(self, public_url: str) -> Deferred[None]:
        self.rows.pop(public_url, None)
        return succeed(None)

    def all(self) -> Deferred[list[RegistryEntry]]:
        return succeed([self.rows[url] for url in sorted(self.rows)])

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


def open_registry_store(data_dir: str, reactor: Any) -> SQLiteRegistryStore:
    """
    The store in ``<data_dir>/registry.sqlite3`` (the folder must exist).
    Nothing touches the file until the first call, in the pool's thread.
    """
    return SQLiteRegistryStore(os.path.join(data_dir, STORE_FILE_NAME), reactor)
