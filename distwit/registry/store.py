"""
Where the registry keeps its list of ping servers between restarts.

The live list is in memory (:class:`~distwit.registry.service.RegistryService`);
this store is its copy in the database, so a restarted registry forgets no
one.  It is small: one row per ping server, written at every heartbeat.

It runs on the same engines as the twitter role's store
(:mod:`distwit.store.engines`) and the same schema machinery
(:mod:`distwit.store.schema`), with a set of numbered changes of its own
(``distwit/registry/migrations``) recorded in a table of its own,
``registry_schema_version``.  So the registry's tables may live in the
twitter role's database (one ``--database`` for a process serving both)
without either role taking the other's versions for its own, and a
registry alone needs no twitter tables.

Which database (:func:`registry_engine`): the ``--database`` setting when
given (an SQLite file or PostgreSQL); without it, the SQLite file
``registry.sqlite3`` in the data folder, where registries kept their list
before, apart from the twitter role's ``distwit.sqlite3``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from zope.interface import implementer

from distwit.config import DataFolder
from distwit.registry.interfaces import IRegistryStore
from distwit.store.engines.postgres import PostgresEngine
from distwit.store.engines.sqlite import SQLiteEngine
from distwit.store.schema import Engine, Schema, engine_for, prepare_database

#: The registry's numbered changes, recorded apart from the twitter role's.
REGISTRY = Schema("distwit.registry", "registry_schema_version", "the registry role's schema")


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


#: The status of a ping server the operator approved.
APPROVED = "approved"

#: The status of a ping server that asked and waits for approval.
PENDING = "pending"


@dataclass(frozen=True)
class Admission:
    """
    The operator's word on one authority's ping server.

    :ivar authority: ``host[:port]`` of its URL (:func:`distwit.urls.authority_of`).
    :ivar public_url: the URL it registers as (approved) or asked as (pending).
    :ivar public_key: the key approved, or the key it asked with.
    :ivar status: :data:`APPROVED` or :data:`PENDING`.
    :ivar since: when it got that status.
    :ivar last_heard: when it last asked (0 if never).
    """

    authority: str
    public_url: str
    public_key: str
    status: str
    since: float
    last_heard: float

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


@implementer(IRegistryStore)
class SQLRegistryStore:
    """
    The list in SQLite or PostgreSQL, through a pool of one connection.

    Every statement runs in the pool's thread (``runInteraction``); with a
    single connection they run one at a time in the order they were asked
    for, so a heartbeat and the sweep that would drop the same server
    cannot overtake each other (hence one connection on PostgreSQL too,
    see :func:`registry_engine`).

    :param pool: an ``adbapi.ConnectionPool`` (or anything with the same
        ``runInteraction`` and ``close``) on a migrated database.
    :param engine: the engine of that database.
    """

    def __init__(self, pool: Any, engine: Engine) -> None:
        self._pool = pool
        self._engine = engine
        self._upsert = engine.convert(
            "INSERT INTO ping_servers (public_url, public_key, first_seen, last_heard)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (public_url) DO UPDATE"
            " SET public_key = excluded.public_key, last_heard = excluded.last_heard"
        )
        self._remove = engine.convert("DELETE FROM ping_servers WHERE public_url = ?")
        columns = "authority, public_url, public_key, status, since, last_heard"
        self._set_admission = engine.convert(
            f"INSERT INTO ping_admissions ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (authority) DO UPDATE"
            " SET public_url = excluded.public_url, public_key = excluded.public_key,"
            " status = excluded.status, since = excluded.since,"
            " last_heard = excluded.last_heard"
        )
        self._heard_pending = engine.convert(
            f"INSERT INTO ping_admissions ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (authority) DO UPDATE SET last_heard = excluded.last_heard"
        )
        self._remove_admission = engine.convert(
            "DELETE FROM ping_admissions WHERE authority = ?"
        )
        self._forget_pending = engine.convert(
            "DELETE FROM ping_admissions WHERE status = ? AND last_heard <= ?"
        )
        self._admissions = (
            f"SELECT {columns} FROM ping_admissions ORDER BY authority"
        )

    def upsert(self, public_url: str, public_key: str, now: float) -> Deferred[None]:
        def interaction(cursor: Any) -> None:
            cursor.execute(self._upsert, (public_url, public_key, now, now))

        return self._pool.runInteraction(interaction)

    def remove(self, public_url: str) -> Deferred[None]:
        def interaction(cursor: Any) -> None:
            cursor.execute(self._remove, (public_url,))

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

    def admissions(self) -> Deferred[list[Admission]]:
        def interaction(cursor: Any) -> list[Admission]:
            cursor.execute(self._admissions)
            return [
                Admission(str(a), str(u), str(k), str(s), float(since), float(heard))
                for a, u, k, s, since, heard in cursor.fetchall()
            ]

        return self._pool.runInteraction(interaction)

    def _run(self, statement: str, args: tuple[Any, ...]) -> Deferred[None]:
        def interaction(cursor: Any) -> None:
            cursor.execute(statement, args)

        return self._pool.runInteraction(interaction)

    def set_admission(self, admission: Admission) -> Deferred[None]:
        return self._run(self._set_admission, _row(admission))

    def heard_pending(self, admission: Admission) -> Deferred[None]:
        return self._run(self._heard_pending, _row(admission))

    def remove_admission(self, authority: str) -> Deferred[None]:
        return self._run(self._remove_admission, (authority,))

    def forget_pending(self, cutoff: float) -> Deferred[None]:
        return self._run(self._forget_pending, (PENDING, cutoff))

    def close(self) -> Deferred[None]:
        return maybeDeferred(self._pool.close)


def _row(a: Admission) -> tuple[Any, ...]:
    return (a.authority, a.public_url, a.public_key, a.status, a.since, a.last_heard)


@implementer(IRegistryStore)
class MemoryRegistryStore:
    """
    The list in a dict: for tests, and for a registry that may forget.
    Answers at once.  ``closed`` tells whether :meth:`close` was called.
    """

    def __init__(self) -> None:
        self.rows: dict[str, RegistryEntry] = {}
        self.admission_rows: dict[str, Admission] = {}
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

    def admissions(self) -> Deferred[list[Admission]]:
        return succeed([self.admission_rows[a] for a in sorted(self.admission_rows)])

    def set_admission(self, admission: Admission) -> Deferred[None]:
        self.admission_rows[admission.authority] = admission
        return succeed(None)

    def heard_pending(self, admission: Admission) -> Deferred[None]:
        old = self.admission_rows.get(admission.authority)
        if old is None:
            self.admission_rows[admission.authority] = admission
        else:
            self.admission_rows[admission.authority] = replace(
                old, last_heard=admission.last_heard
            )
        return succeed(None)

    def remove_admission(self, authority: str) -> Deferred[None]:
        self.admission_rows.pop(authority, None)
        return succeed(None)

    def forget_pending(self, cutoff: float) -> Deferred[None]:
        for authority, row in list(self.admission_rows.items()):
            if row.status == PENDING and row.last_heard <= cutoff:
                del self.admission_rows[authority]
        return succeed(None)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


def registry_engine(database: str, data_dir: str) -> Engine:
    """
    The engine of the registry's database for a ``--database`` setting:
    that database when given (as :func:`~distwit.store.schema.engine_for`
    reads it), else ``registry.sqlite3`` in the data folder.

    :raise distwit.store.schema.DatabaseURLError: the setting names no
        engine distwit knows.
    """
    if not database:
        return SQLiteEngine(DataFolder(data_dir).registry_database)
    engine = engine_for(database, data_dir)
    if isinstance(engine, PostgresEngine):
        # One connection keeps the writes in the order they were asked for.
        return PostgresEngine(engine.url, pool_size=1)
    return engine


def open_registry_store(engine: Engine, reactor: Any) -> SQLRegistryStore:
    """
    Bring the registry's tables up to date (synchronously: call this
    before the reactor runs or from a thread) and return a store on a new
    connection pool.

    :raise distwit.store.schema.SchemaTooNew: a newer distwit has changed
        the registry's tables.
    """
    prepare_database(engine, REGISTRY)
    return SQLRegistryStore(engine.make_pool(reactor), engine)
