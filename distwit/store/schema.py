"""
Numbered schema changes and the code that applies them.

Each change is a file ``migrations/NNN_name.sql``; the table
``schema_version`` records which have run.  Changes are applied in order,
each in its own transaction, when a server or the command line opens the
database, before the reactor runs.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from typing import Any, Protocol

_MIGRATION_NAME = re.compile(r"\A(\d{3})_[a-z0-9_]+\.sql\Z")


class Engine(Protocol):
    name: str
    substitutions: dict[str, str]
    greatest: str
    walk_newest_first: bool

    def describe(self) -> str: ...
    def convert(self, sql: str) -> str: ...
    def connect(self) -> Any: ...
    def make_pool(self, reactor: Any) -> Any: ...
    def is_unique_violation(self, error: BaseException) -> bool: ...
    def lock_for_migrations(self, cursor: Any) -> None: ...
    def begin_migrations(self, connection: Any) -> None: ...


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


def migrations() -> list[tuple[int, str, str]]:
    """
    Every schema change shipped with distwit: ``(version, name, sql)``,
    in order.
    """
    found = []
    folder = resources.files("distwit.store").joinpath("migrations")
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


def prepare_database(engine: Engine) -> list[int]:
    """
    Bring the database up to the newest schema.

    :return: the versions applied now (empty when it was up to date).
    """
    connection = engine.connect()
    try:
        engine.begin_migrations(connection)
        cursor = connection.cursor()
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        applied = []
        for version, name, sql in migrations():
            engine.lock_for_migrations(cursor)
            try:
                cursor.execute(
                    engine.convert("SELECT 1 FROM schema_version WHERE version = ?"),
                    (version,),
                )
                if cursor.fetchone() is None:
                    for statement in statements(sql, engine):
                        cursor.execute(statement)
                    cursor.execute(
                        engine.convert(
                            "INSERT INTO schema_version (version, name) VALUES (?, ?)"
                        ),
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


def schema_version(engine: Engine) -> int:
    """
    The newest change applied to the database (0 for an empty one).
    """
    connection = engine.connect()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT MAX(version) FROM schema_version")
        row = cursor.fetchone()
        return row[0] or 0
    finally:
        connection.close()
