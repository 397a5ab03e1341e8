"""
Favorites: marking posts, with the counts on the post and the account.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import IFavoriteStore
from distwit.store.sql.base import SQLBase


@implementer(IFavoriteStore)
class FavoritesStore(SQLBase):
    """
    The favorites part of :class:`~distwit.store.sql.SQLStore`.
    """

    def favorite(self, account_id: int, post_id: int, created_at: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("SELECT 1 FROM favorites WHERE account_id = ? AND post_id = ?"),
                (account_id, post_id),
            )
            if txn.fetchone() is not None:
                return False
            txn.execute(
                self._q(
                    "INSERT INTO favorites (account_id, post_id, created_at) VALUES (?, ?, ?)"
                ),
                (account_id, post_id, created_at),
            )
            self._adjust_favorites(txn, account_id, post_id, 1)
            return True

        return self._run(interaction)

    def unfavorite(self, account_id: int, post_id: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM favorites WHERE account_id = ? AND post_id = ?"),
                (account_id, post_id),
            )
            if txn.rowcount < 1:
                return False
            self._adjust_favorites(txn, account_id, post_id, -1)
            return True

        return self._run(interaction)

    def _adjust_favorites(self, txn: Any, account_id: int, post_id: int, delta: int) -> None:
        txn.execute(
            self._q("UPDATE posts SET favorite_count = favorite_count + ? WHERE id = ?"),
            (delta, post_id),
        )
        txn.execute(
            self._q(
                "UPDATE accounts SET favourites_count = favourites_count + ? WHERE id = ?"
            ),
            (delta, account_id),
        )

    def marked_among(
        self, account_id: int, post_ids: "list[int]"
    ) -> "Deferred[tuple[set[int], set[int]]]":
        def interaction(txn: Any) -> tuple[set[int], set[int]]:
            if not post_ids:
                return set(), set()
            marks = ", ".join("?" for _ in post_ids)
            txn.execute(
                self._q(
                    f"SELECT post_id FROM favorites WHERE account_id = ?"
                    f" AND post_id IN ({marks})"
                ),
                [account_id, *post_ids],
            )
            favorited = {int(row[0]) for row in txn.fetchall()}
            txn.execute(
                self._q(
                    "SELECT retweet_of_id FROM posts WHERE author_id = ? AND kind = 'retweet'"
                    f" AND deleted_at IS NULL AND retweet_of_id IN ({marks})"
                ),
                [account_id, *post_ids],
            )
            return favorited, {int(row[0]) for row in txn.fetchall()}

        return self._run(interaction)

