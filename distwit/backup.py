"""
Backups of a running server, and putting one back (``distwit backup`` and
``distwit restore``).

A backup is a folder (or the same folder as a ``.tar.gz``)::

    manifest.json        what it is: format, distwit version, schema
                         versions, when, the engine, counts, every file
                         with its size and SHA-256
    distwit.sqlite3      the twitter role's SQLite database (SQLite only)
    registry.sqlite3     the registry role's SQLite database, if there is one
    distwit.pgdump       the PostgreSQL database, pg_dump's custom format
                         (PostgreSQL only: both roles' tables)
    data/                the rest of the data folder: the server key, the
                         OpenID Connect keys, the web secret (databases,
                         their journals, logs and pid files left out)

SQLite is copied with its online backup API while the server goes on
writing: the source connection holds one read transaction for the whole
copy, so the copy is that transaction's snapshot (in WAL mode the server's
writers are not blocked, and the copy is not restarted by their commits).
PostgreSQL is dumped by ``pg_dump`` in a snapshot exported by a
transaction that also counts the rows, so the counts of the manifest are
those of the dump.

The folder is made under a temporary name beside ``DEST`` and renamed
when complete: a backup that stopped half-way never looks like a backup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TextIO
from urllib.parse import quote

from distwit import __version__
from distwit.config import DataFolder, Settings
from distwit.registry.store import REGISTRY
from distwit.store.schema import TWITTER, Schema, engine_for, migrations

#: The layout of backups this code writes and reads.
FORMAT = 1
MANIFEST = "manifest.json"
TWITTER_SQLITE = "distwit.sqlite3"
REGISTRY_SQLITE = "registry.sqlite3"
PG_DUMP = "distwit.pgdump"
DATA = "data"

#: Files of the data folder a backup leaves out: databases (copied through
#: their engine, never as files), their journals, logs, pid files and
#: files half-written.
_SKIPPED_SUFFIXES = (
    ".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal", ".db", ".db-wal",
    ".db-shm", ".db-journal", ".log", ".pid", ".new", ".tmp",
)

#: Bytes read and written at a time when a file is put back.
_BLOCK = 4 << 20

#: SQLite pages copied per step of the online backup (4 MiB of 4 KiB
#: pages): small enough to show progress, large enough to be quick.
PAGES_PER_STEP = 1024


class BackupError(Exception):
    """
    The backup or restore cannot go on; the message says why, in one
    sentence.
    """


class Progress:
    """
    Progress of long work, one line at most every ``interval`` seconds
    (and the last one always).
    """

    def __init__(self, out: TextIO, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._interval = interval
        self._clock = clock
        self._last = -interval

    def step(self, what: str, done: int, total: int) -> None:
        now = self._clock()
        if done < total and now - self._last < self._interval:
            return
        self._last = now
        percent = 100 if total <= 0 else done * 100 // total
        self._out.write(f"{what}: {percent}% ({done:,} of {total:,})\n")
        self._out.flush()

    def say(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()


@dataclass(frozen=True)
class Databases:
    """
    Where the server's databases are, as its settings say.

    :ivar postgres_url: the PostgreSQL URL of both roles, or ``""``.
    :ivar twitter_sqlite: the twitter role's SQLite file, or ``""``.
    :ivar registry_sqlite: the registry role's SQLite file, or ``""``
        (the same file as the twitter role's with ``--database sqlite:``).
    """

    postgres_url: str
    twitter_sqlite: str
    registry_sqlite: str


def databases_of(settings: Settings) -> Databases:
    """
    The databases a server with ``settings`` uses (the twitter role's as
    :func:`distwit.roles.twitter.open_twitter_store` opens it, the
    registry's as :func:`distwit.registry.store.registry_engine` does).
    """
    folder = settings.data_folder
    if not settings.database:
        return Databases("", folder.twitter_database, folder.registry_database)
    engine = engine_for(settings.database, folder.path)
    if engine.name == "postgresql":
        return Databases(settings.database, "", "")
    path = getattr(engine, "path")
    return Databases("", path, path)


def newest_version(schema: Schema) -> int:
    """
    The newest change of ``schema`` this distwit ships.
    """
    return max((version for version, _, _ in migrations(schema)), default=0)


# -- reading a database, whichever the engine --------------------------------


def _scalar(cursor: Any, sql: str) -> int:
    cursor.execute(sql)
    row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


def _has_table(cursor: Any, engine: str, table: str) -> bool:
    if engine == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    else:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        row = cursor.fetchone()
        return bool(row and row[0])
    return cursor.fetchone() is not None


def schema_versions(cursor: Any, engine: str) -> dict[str, int]:
    """
    The newest change of each role's schema the database records
    (``twitter``, ``registry``); a role whose tables are not there is left
    out.
    """
    found = {}
    for role, schema in (("twitter", TWITTER), ("registry", REGISTRY)):
        if _has_table(cursor, engine, schema.version_table):
            found[role] = _scalar(cursor, f"SELECT MAX(version) FROM {schema.version_table}")
    return found


def counts(cursor: Any, engine: str) -> dict[str, int]:
    """
    What the twitter role's tables hold, for the manifest and for checking
    a restore: local users, remote accounts, messages held (local ones
    apart), follows.
    """
    if not _has_table(cursor, engine, "posts"):
        return {}
    return {
        "local_users": _scalar(cursor, "SELECT COUNT(*) FROM local_users"),
        "remote_accounts": _scalar(
            cursor, "SELECT COUNT(*) FROM accounts WHERE authority <> ''"
        ),
        "messages": _scalar(cursor, "SELECT COUNT(*) FROM posts"),
        "local_messages": _scalar(
            cursor,
            "SELECT COUNT(*) FROM posts p JOIN local_users u ON u.account_id = p.author_id",
        ),
        "follows": _scalar(cursor, "SELECT COUNT(*) FROM follows"),
    }


# -- files --------------------------------------------------------------------


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_files(folder: str) -> Iterator[str]:
    """
    The files of the data folder a backup keeps (relative paths): all
    regular files but databases, journals, logs, pid files.
    """
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if name.endswith(_SKIPPED_SUFFIXES) or name.startswith("twistd."):
                continue
            yield os.path.relpath(path, folder)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _is_tarball(path: str) -> bool:
    return path.endswith((".tar.gz", ".tgz"))


# -- backup -------------------------------------------------------------------


def copy_sqlite(source: str, target: str, progress: Progress, what: str,
                pages_per_step: int = PAGES_PER_STEP) -> None:
    """
    Copy the SQLite database ``source`` (in use by a running server) to
    the new file ``target``, page by page, as one consistent snapshot.

    :raise BackupError: the source cannot be read or the copy is damaged.
    """
    try:
        # mode=ro: a backup never creates nor changes the source.
        src = sqlite3.connect(
            f"file:{quote(source)}?mode=ro", uri=True, isolation_level=None
        )
    except sqlite3.Error as e:
        raise BackupError(f"cannot open {what} {source}: {e}") from None
    try:
        src.execute("PRAGMA busy_timeout=10000")
        # One read transaction for the whole copy: every step reads the
        # same snapshot, and a commit of the server does not restart the
        # copy (it would, forever, under steady writes).
        src.execute("BEGIN")
        src.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(target)
        try:
            src.backup(
                dst,
                pages=pages_per_step,
                progress=lambda status, remaining, total: progress.step(
                    f"copying {what}", total - remaining, total
                ),
            )
            check = dst.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise BackupError(f"the copy of {what} fails SQLite's check: {check}")
            # A plain rollback-journal file: one file, nothing beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        src.execute("ROLLBACK")
    except sqlite3.Error as e:
        raise BackupError(f"cannot copy {what} {source}: {e}") from None
    finally:
        src.close()


def dump_postgres(url: str, target: str, progress: Progress,
                  pg_dump: str | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """
    ``pg_dump --format=custom`` of the database at ``url`` into
    ``target``, in a snapshot in which the schema versions and counts are
    read too.

    :return: ``(schema versions, counts)`` of the dumped snapshot.
    :raise BackupError: pg_dump is not there, or failed.
    """
    import psycopg

    from distwit.store.engines.postgres import _without_password

    program = pg_dump or shutil.which("pg_dump")
    if program is None:
        raise BackupError(
            "pg_dump is not on PATH: install PostgreSQL's client programs (Debian:"
            " apt-get install postgresql-client) or back up the database yourself with"
            f" pg_dump --format=custom --file={PG_DUMP} '{_without_password(url)}'"
            " and copy the data folder's keys"
        )
    try:
        connection = psycopg.connect(url)
    except psycopg.Error as e:
        reason = " ".join(str(e).split())
        raise BackupError(f"cannot connect to {_without_password(url)}: {reason}") from None
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]  # type: ignore[index]
        versions = schema_versions(cursor, "postgresql")
        found = counts(cursor, "postgresql")
        progress.say(f"dumping {_without_password(url)} with pg_dump")
        done = subprocess.run(
            [program, "--format=custom", f"--snapshot={snapshot}", f"--file={target}",
             f"--dbname={url}"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
            raise BackupError(f"pg_dump failed: {message}")
        connection.rollback()
    finally:
        connection.close()
    return versions, found


def backup(
    settings: Settings,
    destination: str,
    out: TextIO,
    progress: Progress | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """
    Back up the server with ``settings`` (running or not) into
    ``destination``: a new folder, or a ``.tar.gz`` file.

    :return: the manifest.
    :raise BackupError: with the reason, in one sentence.
    """
    progress = progress or Progress(out)
    destination = os.path.abspath(destination)
    folder = settings.data_folder
    if not os.path.isdir(folder.path):
        raise BackupError(f"there is no data folder {folder.path}: nothing to back up")
    if os.path.lexists(destination) and not (
        os.path.isdir(destination) and not os.listdir(destination)
    ):
        raise BackupError(f"{destination} already exists: name a new folder or .tar.gz file")
    if os.path.commonpath([destination, folder.path]) == folder.path:
        raise BackupError(
            f"{destination} is inside the data folder {folder.path}: put the backup elsewhere"
        )
    parent = os.path.dirname(destination)
    if not os.path.isdir(parent):
        raise BackupError(f"there is no folder {parent} to put the backup in")
    work = tempfile.mkdtemp(prefix=".distwit-backup-", dir=parent)
    try:
        manifest = _make_backup(settings, folder, work, progress, now)
        if _is_tarball(destination):
            progress.say(f"writing {destination}")
            partial = destination + ".partial"
            # Owner only from the start: it holds the server's private keys.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                with tarfile.open(fileobj=f, mode="w:gz") as tar:
                    for name in sorted(os.listdir(work)):
                        tar.add(os.path.join(work, name), arcname=name)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, destination)
        else:
            if os.path.isdir(destination):
                os.rmdir(destination)
            os.replace(work, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(destination + ".partial"):
            os.unlink(destination + ".partial")
    return manifest


def _make_backup(settings: Settings, folder: DataFolder, work: str, progress: Progress,
                 now: Callable[[], float]) -> dict[str, Any]:
    os.chmod(work, 0o700)
    databases = databases_of(settings)
    started = now()
    versions: dict[str, int] = {}
    found: dict[str, int] = {}
    if databases.postgres_url:
        versions, found = dump_postgres(
            databases.postgres_url, os.path.join(work, PG_DUMP), progress
        )
        engine = "postgresql"
    else:
        engine = "sqlite"
        copies = [(databases.twitter_sqlite, TWITTER_SQLITE, "the twitter database")]
        if databases.registry_sqlite != databases.twitter_sqlite:
            copies.append((databases.registry_sqlite, REGISTRY_SQLITE, "the registry database"))
        for source, name, what in copies:
            if not os.path.exists(source):
                continue
            target = os.path.join(work, name)
            copy_sqlite(source, target, progress, what)
            os.chmod(target, 0o600)
            copy = sqlite3.connect(target)
            try:
                cursor = copy.cursor()
                for role, version in schema_versions(cursor, "sqlite").items():
                    versions.setdefault(role, version)
                found = found or counts(cursor, "sqlite")
            finally:
                copy.close()
        if not versions:
            raise BackupError(
                f"there is no database in {folder.path}: has a server run with this data folder?"
            )
    os.makedirs(os.path.join(work, DATA), mode=0o700)
    for relative in _data_files(folder.path):
        target = os.path.join(work, DATA, relative)
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        with open(os.path.join(folder.path, relative), "rb") as f:
            _write_private(target, f.read())
    files = {}
    for top, _, names in os.walk(work):
        for name in names:
            path = os.path.join(top, name)
            relative = os.path.relpath(path, work).replace(os.sep, "/")
            files[relative] = {"bytes": os.path.getsize(path), "sha256": _sha256(path)}
    manifest = {
        "format": FORMAT,
        "distwit_version": __version__,
        "created_at": datetime.fromtimestamp(started, timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "authority": settings.authority,
        "public_url": settings.public_url,
        "engine": engine,
        "schema_versions": versions,
        "counts": found,
        "files": dict(sorted(files.items())),
    }
    _write_private(
        os.path.join(work, MANIFEST), (json.dumps(manifest, indent=2) + "\n").encode()
    )
    return manifest


# -- restore ------------------------------------------------------------------


def read_manifest(folder: str) -> dict[str, Any]:
    """
    The manifest of the backup unpacked in ``folder``, its files checked
    against it.

    :raise BackupError: it is not a distwit backup, of a format this code
        does not read, or a file is missing or damaged.
    """
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise BackupError(f"there is no {MANIFEST} in it: it is not a distwit backup") from None
    except (OSError, ValueError) as e:
        raise BackupError(f"its {MANIFEST} cannot be read: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"its {MANIFEST} is not a distwit backup's")
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"it is a backup of format {manifest.get('format')!r}; this distwit reads"
            f" format {FORMAT}: restore it with the distwit that made it"
        )
    for relative, entry in manifest["files"].items():
        path = os.path.join(folder, *relative.split("/"))
        if not os.path.isfile(path):
            raise BackupError(f"{relative} is missing from it")
        if _sha256(path) != entry.get("sha256"):
            raise BackupError(f"{relative} is damaged (its SHA-256 differs from the manifest's)")
    return manifest


def check_schema(manifest: dict[str, Any]) -> None:
    """
    :raise BackupError: the backup is of a schema newer than this distwit
        knows (it would refuse to open the restored database).
    """
    for role, schema in (("twitter", TWITTER), ("registry", REGISTRY)):
        found = int(manifest.get("schema_versions", {}).get(role, 0))
        known = newest_version(schema)
        if found > known:
            raise BackupError(
                f"the backup is at version {found} of {schema.title}, newer than this"
                f" distwit (version {known}, distwit {__version__}) knows: restore it with"
                f" distwit {manifest.get('distwit_version', '?')} or newer"
            )


def _unpack(source: str, into: str) -> str:
    """
    The folder of the backup ``source`` (a folder, or a ``.tar.gz``
    unpacked into ``into``).
    """
    if os.path.isdir(source):
        return source
    if not os.path.isfile(source):
        raise BackupError(f"there is no backup {source}")
    try:
        with tarfile.open(source, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupError(f"{source} is not a readable .tar.gz: {e}") from None
    return into


def _folder_is_empty(path: str) -> bool:
    return not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path))


def _postgres_has_tables(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        return bool(row and row[0])


def restore(settings: Settings, source: str, out: TextIO, force: bool = False,
            progress: Progress | None = None) -> dict[str, Any]:
    """
    Put the backup ``source`` back into the data folder (and database) of
    ``settings``.  The server must be stopped.

    :param force: replace what the data folder (or the PostgreSQL
        database) holds; without it a non-empty one is refused.
    :return: the backup's manifest.
    :raise BackupError: with the reason, in one sentence.
    """
    progress = progress or Progress(out)
    folder = settings.data_folder
    databases = databases_of(settings)
    with tempfile.TemporaryDirectory(prefix="distwit-restore-") as unpacked:
        backup_folder = _unpack(os.path.abspath(source), unpacked)
        manifest = read_manifest(backup_folder)
        check_schema(manifest)
        engine = manifest.get("engine")
        if engine == "postgresql" and not databases.postgres_url:
            raise BackupError(
                "this backup holds a PostgreSQL database: give --database postgresql://..."
                " (or a --config that names one) of the database to restore it into"
            )
        if engine == "sqlite" and databases.postgres_url:
            raise BackupError(
                "this backup holds SQLite databases, and this server's database is"
                " PostgreSQL: restore it without --database (into SQLite)"
            )
        if not force and not _folder_is_empty(folder.path):
            raise BackupError(
                f"the data folder {folder.path} is not empty: restore into an empty"
                " folder, or add --force to replace what it holds (stop the server first)"
            )
        if databases.postgres_url and not force and _postgres_has_tables(databases.postgres_url):
            raise BackupError(
                "the PostgreSQL database already has tables: restore into an empty"
                " database, or add --force to replace them (stop the server first)"
            )
        folder.prepare()
        data = os.path.join(backup_folder, DATA)
        for relative in _data_files(data) if os.path.isdir(data) else ():
            target = os.path.join(folder.path, relative)
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            with open(os.path.join(data, relative), "rb") as f:
                _write_private(target + ".new", f.read())
            os.replace(target + ".new", target)
        if engine == "postgresql":
            _restore_postgres(
                os.path.join(backup_folder, PG_DUMP), databases.postgres_url, force, progress
            )
        else:
            places = [(TWITTER_SQLITE, databases.twitter_sqlite)]
            if databases.registry_sqlite != databases.twitter_sqlite:
                places.append((REGISTRY_SQLITE, databases.registry_sqlite))
            for name, target in places:
                copy = os.path.join(backup_folder, name)
                if os.path.exists(copy):
                    _put_sqlite(copy, target, progress)
        _check_counts(manifest, databases)
    return manifest


def _put_sqlite(copy: str, target: str, progress: Progress) -> None:
    """
    The database file ``copy`` at ``target``: whatever was there, and its
    journals (a stale WAL beside a new database would corrupt it), goes.
    """
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    partial = target + ".new"
    total = os.path.getsize(copy)
    done = 0
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(copy, "rb") as source, os.fdopen(fd, "wb") as written:
        for block in iter(lambda: source.read(_BLOCK), b""):
            written.write(block)
            done += len(block)
            progress.step(f"restoring {target}, bytes", done, total)
        written.flush()
        os.fsync(written.fileno())
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(target + suffix):
            os.unlink(target + suffix)
    os.replace(partial, target)


def _restore_postgres(dump: str, url: str, force: bool, progress: Progress) -> None:
    from distwit.store.engines.postgres import _without_password

    program = shutil.which("pg_restore")
    if program is None:
        raise BackupError(
            "pg_restore is not on PATH: install PostgreSQL's client programs (Debian:"
            " apt-get install postgresql-client) or run pg_restore --no-owner"
            f" --dbname='{_without_password(url)}' {dump} yourself"
        )
    progress.say(f"restoring {_without_password(url)} with pg_restore")
    command = [program, "--no-owner", "--exit-on-error", "--single-transaction",
               f"--dbname={url}", dump]
    if force:
        command[1:1] = ["--clean", "--if-exists"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise BackupError(f"pg_restore failed: {message}")


def _check_counts(manifest: dict[str, Any], databases: Databases) -> None:
    """
    :raise BackupError: the restored database does not hold what the
        manifest counted.
    """
    expected = manifest.get("counts") or {}
    if not expected:
        return
    if databases.postgres_url:
        import psycopg

        with psycopg.connect(databases.postgres_url) as connection:
            found = counts(connection.cursor(), "postgresql")
    else:
        restored = sqlite3.connect(databases.twitter_sqlite)
        try:
            found = counts(restored.cursor(), "sqlite")
        finally:
            restored.close()
    if found != expected:
        raise BackupError(
            f"the restored database holds {found}, not the {expected} the backup counted"
        )


def describe(manifest: dict[str, Any]) -> str:
    """
    One line saying what a backup holds.
    """
    found = manifest.get("counts") or {}
    versions = ", ".join(
        f"{role} schema {version}" for role, version in sorted(manifest["schema_versions"].items())
    )
    return (
        f"taken {manifest['created_at']} of {manifest.get('authority', '?')} by distwit"
        f" {manifest['distwit_version']} ({manifest['engine']}, {versions};"
        f" {_count(found.get('local_users', 0), 'user')},"
        f" {_count(found.get('local_messages', 0), 'message')} of theirs,"
        f" {_count(found.get('messages', 0), 'message')} in all)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
