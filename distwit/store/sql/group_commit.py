"""
Group commit: writes that arrive while a transaction runs go into the next
one together, and each is answered only after that transaction has
committed.

One post is a handful of short statements; what costs is everything
around them: the hop to the database thread and back, ``BEGIN`` and the
commit (a WAL append on SQLite, a flush of the WAL on PostgreSQL), and on
SQLite the one connection every other read waits behind.  Doing the posts
that queued up during one transaction in the next lets N posts share one
hop and one commit.

Correctness (docs/design/group-commit.md):

- A group first runs its writes one after the other without savepoints
  (writes seldom fail).  If one raises (a duplicate refused, a unique
  violation, an unknown author), the transaction is rolled back, nothing
  of it committed, and the group runs again with each write in its own
  ``SAVEPOINT``: the failing one is rolled back to its savepoint, alone,
  the others of its group go on and commit.  Its caller gets its own
  error, after the group's commit (or failure).
- Nobody is answered before the commit: a write's result is held until
  the transaction holding it has committed, so an acknowledged write is a
  committed one (kill -9 loses none).
- When the transaction itself fails (the commit, the connection), every
  write of the group fails with that error: none of them was committed.
- One group at a time, in arrival order: writes are numbered and their
  ids taken in the order they were asked for, as one by one.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

T = TypeVar("T")

#: How many writes one transaction takes at most: a long group holds the
#: write lock (and, on SQLite, the readers' one connection) that long.
MAX_GROUP = 200


class _Pending(Generic[T]):
    __slots__ = ("work", "args", "deferred", "result", "error")

    def __init__(self, work: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.work = work
        self.args = args
        self.deferred: Deferred[T] = Deferred()
        self.result: Any = None
        self.error: Failure | None = None


class _WriteFailed(Exception):
    """
    A write of a group run without savepoints raised.
    """


class GroupCommitter:
    """
    Runs writes in groups, one transaction a group.

    :param run: runs ``interaction(cursor)`` in one transaction in the
        pool and returns a Deferred that fires after its commit
        (``SQLBase._run``).
    :param begin: called first in each group's transaction, with the cursor
        (SQLite: ``BEGIN IMMEDIATE``, so the outermost savepoint's release
        is not a commit of its own).
    :param max_group: at most this many writes in one transaction.
    :param gather: seconds the next group may wait for the writers of the
        last one to come back (0: never waits); with ``clock``, an
        ``IReactorTime``.  See :meth:`_next`.
    """

    def __init__(
        self,
        run: Callable[..., "Deferred[Any]"],
        begin: Callable[[Any], None],
        max_group: int = MAX_GROUP,
        gather: float = 0.0,
        clock: Any = None,
    ) -> None:
        self._run = run
        self._begin = begin
        self._max_group = max_group
        self._gather = gather if clock is not None else 0.0
        self._clock = clock
        self._queue: list[_Pending[Any]] = []
        self._running = False
        #: The writers busy when the last group committed (its own and
        #: those queued behind it), and the wait for them, if any.
        self._expected = 1
        self._waiting: IDelayedCall | None = None
        #: Groups committed and writes in them, for benchmarks and tests.
        self.groups = 0
        self.writes = 0
        #: Groups run again with a savepoint a write (one of them failed).
        self.retried = 0

    def submit(self, work: Callable[..., T], *args: Any) -> "Deferred[T]":
        """
        Run ``work(cursor, *args)`` in the next group's transaction: a
        Deferred of its result (or its error), fired after the commit.
        """
        pending: _Pending[T] = _Pending(work, args)
        self._queue.append(pending)
        if not self._running:
            self._next()
        elif self._waiting is not None and len(self._queue) >= self._expected:
            self._waiting.cancel()
            self._gathered()
        return pending.deferred

    def _gathered(self) -> None:
        self._waiting = None
        self._next(wait=False)

    def _next(self, wait: bool = True) -> None:
        """
        Start the next group with the writes queued.  Under load, with
        ``gather``, first wait (at most ``gather`` seconds) until as many
        are queued as there were writers busy when the last group
        committed: those it answered come back with their next write soon,
        and a commit (a flush of PostgreSQL's WAL: milliseconds) shared by
        all of them costs the same as one.  Without load (one writer) the
        group starts at once.
        """
        if not self._queue:
            self._running = False
            return
        self._running = True
        if wait and self._gather and len(self._queue) < self._expected:
            self._waiting = self._clock.callLater(self._gather, self._gathered)
            return
        group = self._queue[: self._max_group]
        del self._queue[: self._max_group]
        self._start(group, False)

    def _start(self, group: list[_Pending[Any]], careful: bool) -> None:
        done = self._run(self._interaction, group, careful)
        done.addCallbacks(
            self._committed, self._failed, callbackArgs=(group,), errbackArgs=(group,)
        )

    def _interaction(self, txn: Any, group: list[_Pending[Any]], careful: bool) -> None:
        for pending in group:
            # A retry of the transaction (a reconnection) starts afresh.
            pending.result, pending.error = None, None
        self._begin(txn)
        if len(group) == 1:
            # Alone, a write needs no savepoint: if it raises, the
            # transaction is rolled back and it alone fails (_failed).
            pending = group[0]
            pending.result = pending.work(txn, *pending.args)
            return
        if not careful:
            # Writes seldom fail: first without a savepoint each (two
            # statements, on PostgreSQL two round trips, fewer a write).
            for pending in group:
                try:
                    pending.result = pending.work(txn, *pending.args)
                except Exception:
                    raise _WriteFailed() from None
            return
        for pending in group:
            txn.execute("SAVEPOINT group_write")
            try:
                pending.result = pending.work(txn, *pending.args)
            except Exception:
                pending.error = Failure()
                txn.execute("ROLLBACK TO SAVEPOINT group_write")
            txn.execute("RELEASE SAVEPOINT group_write")

    def _committed(self, ignored: None, group: list[_Pending[Any]]) -> None:
        self.groups += 1
        self.writes += len(group)
        self._expected = min(len(group) + len(self._queue), self._max_group)
        self._next()
        for pending in group:
            if pending.error is not None:
                pending.deferred.errback(pending.error)
            else:
                pending.deferred.callback(pending.result)

    def _failed(self, failure: Failure, group: list[_Pending[Any]]) -> None:
        if failure.check(_WriteFailed):
            # Rolled back, nothing of it committed: again, each write in a
            # savepoint, so the one that failed fails alone.
            self.retried += 1
            self._start(group, True)
            return
        # Nothing of the group was committed: each write fails with the
        # transaction's error.
        self._next()
        for pending in group:
            pending.deferred.errback(failure)


__all__ = ["MAX_GROUP", "GroupCommitter"]
