"""
Follows: who follows whom, with the counts on both accounts.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Account
from distwit.store.interfaces import FollowBlocked, IFollowStore, QueuedNotice
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row


@implementer(IFollowStore)
class FollowsStore(SQLBase):
    """
    The follows part of :class:`~distwit.store.sql.SQLStore`.
    """

    def follow(
        self,
        follower_id: int,
        followee_id: int,
        created_at: int,
        notice: "QueuedNotice | None" = None,
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            # A block either way refuses the follow (docs/design/blocks.md).
            txn.execute(
                self._q(
                    "SELECT account_id FROM blocks WHERE blocking = 1 AND"
                    " ((account_id = ? AND target_id = ?) OR (account_id = ? AND target_id = ?))"
                ),
                (followee_id, follower_id, follower_id, followee_id),
            )
            row = txn.fetchone()
            if row is not None:
                raise FollowBlocked(by_followee=row[0] == followee_id)
            txn.execute(
                self._q("SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?"),
                (follower_id, followee_id),
            )
            if txn.fetchone() is not None:
                return False
            try:
                txn.execute(
                    self._q(
                        "INSERT INTO follows (follower_id, followee_id, created_at)"
                        " VALUES (?, ?, ?)"
                    ),
                    (follower_id, followee_id, created_at),
                )
            except Exception as e:
                if self._engine.is_unique_violation(e):
                    return False
                raise
            self._adjust_follow_counts(txn, follower_id, followee_id, 1)
            if notice is not None:
                self._insert_notice(txn, *notice)
            return True

        return self._run(interaction)

    def _adjust_follow_counts(
        self, txn: Any, follower_id: int, followee_id: int, delta: int
    ) -> None:
        txn.execute(
            self._q("UPDATE accounts SET friends_count = friends_count + ? WHERE id = ?"),
            (delta, follower_id),
        )
        txn.execute(
            self._q(
                "UPDATE accounts SET followers_count = followers_count + ? WHERE id = ?"
            ),
            (delta, followee_id),
        )

    def unfollow(
        self, follower_id: int, followee_id: int, notice: "QueuedNotice | None" = None
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?"),
                (follower_id, followee_id),
            )
            if txn.rowcount < 1:
                return False
            self._adjust_follow_counts(txn, follower_id, followee_id, -1)
            if notice is not None:
                self._insert_notice(txn, *notice)
            return True

        return self._run(interaction)

    def is_following(self, follower_id: int, followee_id: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?"),
                (follower_id, followee_id),
            )
            return txn.fetchone() is not None

        return self._run(interaction)

    def following_page(
        self, account_id: int, followers: bool, before: int | None, count: int
    ) -> "Deferred[list[Account]]":
        """
        Accounts ``account_id`` follows (or, with ``followers``, that follow
        it), highest account id first, below ``before``.
        """
        mine, theirs = ("followee_id", "follower_id") if followers else (
            "follower_id", "followee_id"
        )

        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM follows f JOIN accounts a"
                    f" ON a.id = f.{theirs} WHERE f.{mine} = ? AND a.id < ?"
                    " ORDER BY a.id DESC LIMIT ?"
                ),
                (account_id, before if before is not None else 2**63 - 1, count),
            )
            return [account_from_row(row) for row in txn.fetchall()]

        return self._run(interaction)

    def followers(self, account_id: int) -> "Deferred[list[Account]]":
        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM follows f JOIN accounts a"
                    " ON a.id = f.follower_id WHERE f.followee_id = ? ORDER BY f.created_at"
                ),
                (account_id,),
            )
            return [account_from_row(row) for row in txn.fetchall()]

        return self._run(interaction)
