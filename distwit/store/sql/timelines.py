"""
Timelines: pages of posts, newest first, between ``since_id`` and
``max_id``.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import MAX_STATUS_ID, Post
from distwit.store.interfaces import ITimelineStore
from distwit.store.sql.base import POST_COLUMNS, POSTS_FROM, SQLBase, like_pattern
from distwit.store.sql.blocks import hiding_clause

T = TypeVar("T")

#: From how many followees on a home timeline walks the posts newest first
#: (see :meth:`TimelinesStore.home_timeline`).
WALK_FROM_FOLLOWING = 20


def _kinds(include_rts: bool) -> str:
    """
    The kinds of items a timeline shows: posts, and retweets unless left
    out; never profile items (nor tombstones and deletion records, which
    every timeline leaves out by ``deleted_at``).
    """
    return "p.kind = 'post'" if not include_rts else "p.kind <> 'profile'"


@implementer(ITimelineStore)
class TimelinesStore(SQLBase):
    """
    The timelines part of :class:`~distwit.store.sql.SQLStore`.
    """

    def _read(self, interaction: Callable[[Any], T]) -> "Deferred[T]":
        """
        Run an interaction that only reads: on a reader connection where
        the pool has some (:class:`~distwit.store.engines.pool.WriteCountingPool`).
        """
        run = getattr(self._pool, "runReadInteraction", None) or self._pool.runInteraction
        return run(interaction)  # type: ignore[no-any-return]

    def write_generation(self) -> int | None:
        """
        A number that moves on whenever a write of this process begins or
        ends (:class:`~distwit.store.engines.pool.WriteCountingPool`), for
        caches of reads; ``None`` when the pool does not count.
        """
        generation: int | None = getattr(self._pool, "generation", None)
        return generation

    def _timeline(
        self, where: str, args: tuple[Any, ...], count: int, since_id: int, max_id: int,
        include_rts: bool = True, viewer: int | None = None, silenced: bool = False,
    ) -> "Deferred[list[Post]]":
        """
        Posts matching ``where``; of them, what ``viewer`` hides is left
        out (:func:`~distwit.store.sql.blocks.hiding_clause`; ``silenced``:
        muted accounts too).
        """

        def interaction(txn: Any) -> list[Post]:
            hiding, hiding_args = hiding_clause(self, txn, viewer, silenced)
            sql = self._q(
                f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                f" WHERE p.deleted_at IS NULL AND {_kinds(include_rts)} AND ({where})"
                f"{hiding} AND p.id > ? AND p.id <= ?"
                " ORDER BY p.id DESC LIMIT ?"
            )
            txn.execute(sql, args + hiding_args + (since_id or 0, max_id or MAX_STATUS_ID, count))
            return self._posts_from_rows(txn, txn.fetchall())

        return self._read(interaction)

    def home_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        include_rts: bool = True,
    ) -> "Deferred[list[Post]]":
        # Two plans.  Following few: collect the followees' posts through
        # the (author_id, id) index and sort them.  Following many (where
        # that means sorting most of the table): walk the posts newest
        # first and keep those of followees, stopping at ``count``.  SQLite
        # takes the first unless told; "+" on the column keeps it off the
        # index.  (PostgreSQL's planner weighs the two itself.)
        index_plan = (
            f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
            f" WHERE p.deleted_at IS NULL AND {_kinds(include_rts)}"
            " AND (p.author_id = ? OR p.author_id IN"
            " (SELECT followee_id FROM follows WHERE follower_id = ?))"
            "{hiding} AND p.id > ? AND p.id <= ? ORDER BY p.id DESC LIMIT ?"
        )
        scan_plan = index_plan.replace(
            "(p.author_id = ? OR p.author_id IN", "(+p.author_id = ? OR +p.author_id IN"
        )

        def interaction(txn: Any) -> list[Post]:
            # What the reader blocks or mutes, and the retweets of those
            # they take none of, are left out (docs/design/blocks.md).
            hiding, hiding_args = hiding_clause(
                self, txn, account_id, silenced=True, no_retweets=True
            )
            args = (account_id, account_id, *hiding_args,
                    since_id or 0, max_id or MAX_STATUS_ID, count)
            sql = index_plan
            if self._engine.walk_newest_first:
                txn.execute(self._q("SELECT friends_count FROM accounts WHERE id = ?"),
                            (account_id,))
                row = txn.fetchone()
                if row is not None and row[0] >= WALK_FROM_FOLLOWING:
                    sql = scan_plan
            txn.execute(self._q(sql.replace("{hiding}", hiding)), args)
            return self._posts_from_rows(txn, txn.fetchall())

        return self._read(interaction)

    def user_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        include_rts: bool = True, viewer: int | None = None,
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.author_id = ?", (account_id,), count, since_id or 0, max_id or MAX_STATUS_ID,
            include_rts, viewer,
        )

    def retweets_of_me(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            # Counted retweets: local, copied, and the ones other servers told.
            "p.author_id = ? AND p.retweet_count > 0",
            (account_id,), count, since_id or 0, max_id or MAX_STATUS_ID,
        )

    def retweets_of(self, post_id: int, count: int, viewer: int | None = None
                    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.kind = 'retweet' AND p.retweet_of_id = ?", (post_id,), count, 0, MAX_STATUS_ID,
            viewer=viewer,
        )

    def public_timeline(
        self, count: int, since_id: int | None, max_id: int | None, viewer: int | None = None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "a.authority = ''", (), count, since_id or 0, max_id or MAX_STATUS_ID,
            viewer=viewer,
        )

    def mentions_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.id IN (SELECT post_id FROM mentions WHERE account_id = ?)",
            (account_id,),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
            viewer=account_id,
            silenced=True,
        )

    def search_posts(
        self, query: str, count: int, since_id: int | None, max_id: int | None,
        viewer: int | None = None,
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "LOWER(p.text) LIKE ? ESCAPE '!'",
            (like_pattern(query),),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
            viewer=viewer,
            silenced=True,
        )

    def favorites_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None,
        viewer: int | None = None,
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.id IN (SELECT post_id FROM favorites WHERE account_id = ?)",
            (account_id,),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
            viewer=viewer,
        )
