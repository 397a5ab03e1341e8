"""
The SQLite engine: everything about SQLite that differs from PostgreSQL.

One connection writes, in WAL mode: SQLite serialises writers anyway, and a
single connection makes every transaction see the one before it.  The hot
reads (timelines) have read-only connections of their own, which see every
transaction committed before they begin.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from twisted.enterprise import adbapi

from distwit.store.engines.pool import WriteCountingPool


#: Read-only connections beside the writing one.
READERS = 2


class SQLiteEngine:
    """
    Opens and describes an SQLite database file.
    """

    name = "sqlite"
    substitutions = {"AUTO_ID": "INTEGER PRIMARY KEY", "BIGINT": "INTEGER"}
    #: SQL's two-argument maximum.
    greatest = "MAX"
    #: Whether a statement may write in its ``WITH`` (a new post's checks,
    #: id and row in one round trip).
    writable_ctes = False
    #: Seconds a group commit waits for the writers of its last group
    #: (distwit/store/sql/group_commit.py): never; a commit in WAL mode
    #: with synchronous=NORMAL writes no disk.
    group_gather = 0.0
    #: Whether home timelines of many followees walk posts newest first.
    walk_newest_first = True

    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self) -> str:
        return f"SQLite database {self.path}"

    def convert(self, sql: str) -> str:
        """
        Our SQL uses ``?`` placeholders, which is SQLite's own style.
        """
        return sql

    @staticmethod
    def _setup(connection: sqlite3.Connection) -> None:
        # WAL lets readers go on while a post is written; synchronous=NORMAL
        # in WAL mode keeps every committed transaction through a crash of
        # the process (kill -9), though not through a power cut.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=5000")

    def connect(self) -> sqlite3.Connection:
        """
        A plain connection, used before the reactor runs (migrations, CLI).
        """
        connection = sqlite3.connect(self.path)
        self._setup(connection)
        return connection

    @classmethod
    def _setup_reader(cls, connection: sqlite3.Connection) -> None:
        cls._setup(connection)
        connection.execute("PRAGMA query_only=ON")

    def make_pool(self, reactor: Any) -> adbapi.ConnectionPool:
        # One connection writes (SQLite serialises writers anyway); the
        # hot reads have connections of their own, read-only, so that they
        # do not queue behind the writes (WAL: readers go on meanwhile).
        readers = adbapi.ConnectionPool(
            "sqlite3",
            self.path,
            check_same_thread=False,
            cp_min=1,
            cp_max=READERS,
            cp_openfun=self._setup_reader,
            cp_reactor=reactor,
        )
        return WriteCountingPool(
            "sqlite3",
            self.path,
            check_same_thread=False,
            cp_min=1,
            cp_max=1,
            cp_openfun=self._setup,
            cp_reactor=reactor,
            readers=readers,
        )

    def is_unique_violation(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def lock_for_migrations(self, cursor: Any) -> None:
        # A write lock for the whole migration: other processes wait.
        cursor.execute("BEGIN IMMEDIATE")

    def begin_group(self, cursor: Any) -> None:
        """
        Open a group commit's transaction (distwit/store/sql/group_commit.py)
        explicitly, taking the write lock at once: else the first savepoint
        would open it, and releasing that savepoint would commit.
        """
        cursor.execute("BEGIN IMMEDIATE")

    def begin_migrations(self, connection: sqlite3.Connection) -> None:
        # Let us issue BEGIN/COMMIT ourselves around each migration.
        connection.isolation_level = None
