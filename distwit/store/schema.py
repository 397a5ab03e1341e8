"""
Numbered schema changes and the code that applies them.

A :class:`Schema` is a set of changes: files ``NNN_name.sql`` in one
package folder, and the table that records which of them have run.  The
twitter role's set is :data:`TWITTER` (``distwit/store/migrations``,
recorded in ``schema_version``); the registry role has its own set
(:data:`distwit.registry.store.REGISTRY`), recorded in a table of its own,
so the two can share one database without either taking the other's
versions for its own.

Changes are applied in order, each in its own transaction, when a server
or the command line opens the database, before the reactor runs.  A
database that records a change this code does not have (one opened by a
newer distwit) is refused with :class:`SchemaTooNew`, before anything is
written: running older code on it could lose data.

Numbers are never reused or renumbered: databases record them.  The
twitter set goes 001, 002, 003, 005, ...: no 004 was ever committed (the
favorites change, made just after 003, was numbered 005 when written, see
``git log -- distwit/store/migrations``), so no database records a 004
and the gap is harmless.  Do not fill it: a new change takes the number
after the newest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

_MIGRATION_NAME = re.compile(r"\A(\d{3})_[a-z0-9_]+\.sql\Z")


class Engine(Protocol):
    name: str
    substitutions: dict[str, str]
    greatest: str
    walk_newest_first: bool
    writable_ctes: bool
    group_gather: float

    def describe(self) -> str: ...
    def convert(self, sql: str) -> str: ...
    def connect(self) -> Any: ...
    def make_pool(self, reactor: Any) -> Any: ...
    def is_unique_violation(self, error: BaseException) -> bool: ...
    def lock_for_migrations(self, cursor: Any) -> None: ...
    def begin_migrations(self, connection: Any) -> None: ...
    def begin_group(self, cursor: Any) -> None: ...


class DatabaseURLError(ValueError):
    """
    The database setting names no engine distwit knows.
    """


def engine_for(database: str, data_dir: str) -> Engine:
    """
    The engine for a ``--database`` setting.

    - empty: SQLite file ``distwit.sqlite3`` in the data folder;
    - ``sqlite:PATH`` or ``sqlite:///PATH``: that SQLite file (relative
      paths are taken from the data folder);
    - ``postgresql://...`` or ``postgres://...``: PostgreSQL.
    """
    from distwit.store.engines.postgres import PostgresEngine
    from distwit.store.engines.sqlite import SQLiteEngine

    if not database:
        return SQLiteEngine(os.path.join(data_dir, "distwit.sqlite3"))
    if database.startswith(("postgresql://", "postgres://")):
        return PostgresEngine(database)
    if database.startswith("sqlite:"):
        path = database[len("sqlite:") :]
        if path.startswith("///"):
            path = path[2:]
        elif path.startswith("//"):
            path = path[2:]
        if not path:
            raise DatabaseURLError("sqlite: needs a file name, as in sqlite:distwit.sqlite3")
        return SQLiteEngine(os.path.join(data_dir, path))
    raise DatabaseURLError(
        f"unknown database {database!r}: use sqlite:PATH or postgresql://USER@HOST/NAME"
    )


@dataclass(frozen=True)
class Schema:
    """
    One set of numbered schema changes.

    :ivar package: the package whose ``migrations`` folder holds the files.
    :ivar version_table: the table recording which changes have run.
    :ivar title: what the set is, for messages.
    """

    package: str
    version_table: str
    title: str


#: The twitter role's tables.  (``schema_version`` is the table databases
#: have recorded since the first release: it keeps its name.)
TWITTER = Schema("distwit.store", "schema_version", "the twitter role's schema")


class SchemaTooNew(Exception):
    """
    The database records schema changes this distwit does not have: a
    newer distwit has opened it.
    """

    def __init__(self, schema: Schema, found: int, known: int, unknown: list[int]) -> None:
        self.schema = schema
        self.found = found
        self.known = known
        self.unknown = unknown
        if found > known:
            what = (
                f"the database is at version {found} of {schema.title}, newer than this"
                f" distwit knows (version {known})"
            )
        else:
            numbers = ", ".join(str(n) for n in unknown)
            what = (
                f"the database records changes of {schema.title} that this distwit does not"
                f" have ({numbers}; it knows up to version {known})"
            )
        super().__init__(
            f"{what}: a newer distwit has opened it. Run that newer distwit, or"
            " restore a backup taken before it ran; this one refuses to touch it."
        )


def migrations(schema: Schema = TWITTER) -> list[tuple[int, str, str]]:
    """
    Every change of ``schema`` shipped with distwit: ``(version, name,
    sql)``, in order.
    """
    found = []
    folder = resources.files(schema.package).joinpath("migrations")
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    return found


def statements(sql: str, engine: Engine) -> list[str]:
    """
    Split a change file into statements, with the engine's types filled in.
    """
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    text = "\n".join(lines)
    for key, value in engine.substitutions.items():
        text = text.replace("{" + key + "}", value)
    return [part.strip() for part in text.split(";") if part.strip()]


def prepare_database(engine: Engine, schema: Schema = TWITTER) -> list[int]:
    """
    Bring the database up to the newest version of ``schema``.

    :return: the versions applied now (empty when it was up to date).
    :raise SchemaTooNew: the database records a change this code does not
        have; nothing was changed.
    """
    shipped = migrations(schema)
    known = {version for version, _, _ in shipped}
    table = schema.version_table
    connection = engine.connect()
    try:
        engine.begin_migrations(connection)
        cursor = connection.cursor()
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        cursor.execute(f"SELECT version FROM {table}")
        recorded = {int(row[0]) for row in cursor.fetchall()}
        unknown = sorted(recorded - known)
        if unknown:
            raise SchemaTooNew(schema, max(recorded), max(known, default=0), unknown)
        applied = []
        for version, name, sql in shipped:
            engine.lock_for_migrations(cursor)
            try:
                cursor.execute(
                    engine.convert(f"SELECT 1 FROM {table} WHERE version = ?"),
                    (version,),
                )
                if cursor.fetchone() is None:
                    for statement in statements(sql, engine):
                        cursor.execute(statement)
                    cursor.execute(
                        engine.convert(f"INSERT INTO {table} (version, name) VALUES (?, ?)"),
                        (version, name),
                    )
                    applied.append(version)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        return applied
    finally:
        connection.close()


def schema_version(engine: Engine, schema: Schema = TWITTER) -> int:
    """
    The newest change of ``schema`` applied to the database (0 for an
    empty one).
    """
    connection = engine.connect()
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT MAX(version) FROM {schema.version_table}")
        row = cursor.fetchone()
        return row[0] or 0
    finally:
        connection.close()
