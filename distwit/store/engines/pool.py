"""
The connection pool both engines use: adbapi's, counting the writes.

Every transaction that runs a statement other than a ``SELECT`` is a
write; the pool's :attr:`~WriteCountingPool.generation` moves on when a
write begins and again when it has ended (committed or rolled back).  A
read made while the generation did not move saw no write begin or end, so
what it read may be kept and answered again until the generation moves
(:class:`distwit.core.cache.ReadCache`): the one place every write of this
process goes through tells the caches, instead of a list of events.
"""

from __future__ import annotations

import threading
from typing import Any

from twisted.enterprise import adbapi


#: Writes that change nothing a cache keeps: the OAuth nonces seen (one
#: written by every signed request, which would otherwise make every
#: cached read go stale).
_UNWATCHED = ("INSERT INTO OAUTH_NONCES ", "DELETE FROM OAUTH_NONCES ")


def _writes(sql: str) -> bool:
    """
    Whether ``sql`` may change what a read sees.
    """
    head = sql.lstrip()[:25].upper()
    return not head.startswith("SELECT") and not head.startswith(_UNWATCHED)


class _WatchedTransaction(adbapi.Transaction):  # type: ignore[misc]
    """
    adbapi's transaction, telling its pool when a statement writes.
    """

    _writing = False

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if not self._writing and _writes(sql):
            self._writing = True
            self._pool._wrote()
        cursor: Any = self._cursor
        return cursor.execute(sql, *args, **kwargs)

    def executemany(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if not self._writing and _writes(sql):
            self._writing = True
            self._pool._wrote()
        cursor: Any = self._cursor
        return cursor.executemany(sql, *args, **kwargs)


class WriteCountingPool(adbapi.ConnectionPool):  # type: ignore[misc]
    """
    An ``adbapi.ConnectionPool`` whose :attr:`generation` moves on when a
    write begins and when it ends.
    """

    transactionFactory = _WatchedTransaction

    def __init__(self, *args: Any, readers: adbapi.ConnectionPool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Read-only connections for the hot reads (SQLite: WAL lets them
        #: read while the one writing connection writes), else ``None``.
        self.readers = readers
        #: Moves on at the start and at the end of every write.
        self.generation = 0
        self._generation_lock = threading.Lock()
        self._local = threading.local()

    def _wrote(self) -> None:
        self._local.wrote = True
        with self._generation_lock:
            self.generation += 1

    def _runInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        self._local.wrote = False
        try:
            return super()._runInteraction(interaction, *args, **kwargs)
        finally:
            if self._local.wrote:
                self._local.wrote = False
                with self._generation_lock:
                    self.generation += 1

    def runReadInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Any:
        """
        As ``runInteraction``, for an interaction that only reads: on a
        reader connection when there are some (it sees every transaction
        committed before it began, as the writing connection would).
        """
        if self.readers is None:
            return self.runInteraction(interaction, *args, **kwargs)
        return self.readers.runInteraction(interaction, *args, **kwargs)

    def close(self) -> None:
        super().close()
        if self.readers is not None:
            self.readers.close()
