"""
Helpers shared by the tests: databases on both engines, cheap hashers.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from distwit.core.passwords import PasswordHasher
from distwit.store.engines.postgres import PostgresEngine
from distwit.store.sql import SQLStore, open_store
from distwit.store.engines.sqlite import SQLiteEngine

#: The environment variable naming a PostgreSQL database the tests may wipe.
POSTGRES_VARIABLE = "DISTWIT_TEST_POSTGRES"

POSTGRES_SKIP = (
    f"{POSTGRES_VARIABLE} is not set: set it to a postgresql:// URL of a database "
    "these tests may wipe to run the PostgreSQL half (.ci/run does)"
)


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_VARIABLE) or None


def wipe_postgres(url: str) -> None:
    """
    Drop every table of the test database, so each test starts empty.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def sync_run_in_thread(f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    """
    Runs "in a thread" by running at once: for synchronous tests.
    """
    try:
        return succeed(f(*args, **kwargs))
    except BaseException:
        return fail()


def cheap_hasher() -> PasswordHasher:
    """
    A real argon2id hasher with small parameters and no threads.
    """
    return PasswordHasher(sync_run_in_thread, cheap=True)


class SynchronousPool:
    """
    ``adbapi.ConnectionPool``'s ``runInteraction`` on one connection in the
    calling thread: SQL for tests that run without a reactor.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def runInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        cursor = self._connection.cursor()
        try:
            result = interaction(cursor, *args, **kwargs)
        except BaseException:
            self._connection.rollback()
            return fail()
        finally:
            cursor.close()
        self._connection.commit()
        return succeed(result)

    def close(self) -> None:
        self._connection.close()


def synchronous_sqlite_store(path: str) -> SQLStore:
    """
    A fully migrated SQLite store whose Deferreds fire at once.
    """
    from distwit.store.schema import prepare_database

    engine = SQLiteEngine(path)
    prepare_database(engine)
    return SQLStore(SynchronousPool(engine.connect()), engine)


def threaded_store(engine: Any, reactor: Any) -> SQLStore:
    return open_store(engine, reactor)


__all__ = [
    "PostgresEngine",
    "SQLiteEngine",
    "cheap_hasher",
    "postgres_url",
    "synchronous_sqlite_store",
    "wipe_postgres",
]
