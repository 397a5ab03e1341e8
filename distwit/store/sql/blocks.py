"""
Blocks, mutes and "no retweets": what a local user hides of other
accounts (docs/design/blocks.md).  One row per pair in ``blocks``, with a
flag for each; a row with no flag left is deleted.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Account
from distwit.store.interfaces import NOTHING_HIDDEN, Hidden, IBlockStore, QueuedNotice
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row

#: The flags of a row, as the interface names them.
HIDING = ("blocking", "muting", "no_retweets")


def _column(what: str) -> str:
    if what not in HIDING:
        raise ValueError(f"unknown kind of hiding {what!r}: one of {', '.join(HIDING)}")
    return what


def hidden_in(store: SQLBase, txn: Any, account_id: int) -> Hidden:
    """
    The account's :class:`Hidden` sets, read in ``txn`` (the timelines
    read them in their own transaction).  One range of the primary key.
    """
    txn.execute(
        store._q(
            "SELECT target_id, blocking, muting, no_retweets FROM blocks"
            " WHERE account_id = ?"
        ),
        (account_id,),
    )
    rows = txn.fetchall()
    if not rows:
        return NOTHING_HIDDEN
    return Hidden(
        blocked=frozenset(row[0] for row in rows if row[1]),
        muted=frozenset(row[0] for row in rows if row[2]),
        no_retweets=frozenset(row[0] for row in rows if row[3]),
    )


def operator_hiding(store: SQLBase, txn: Any) -> tuple[str, tuple[Any, ...]]:
    """
    What every timeline's ``WHERE`` adds to leave out what the operator
    hides (docs/operating.md): the posts and retweets of suspended
    accounts and of the accounts of blocked servers.  Nothing when there
    are none: two reads of an empty index range.
    """
    txn.execute(store._q("SELECT 1 FROM accounts WHERE suspended = 1 LIMIT 1"))
    suspended = txn.fetchone() is not None
    txn.execute(store._q("SELECT 1 FROM blocked_servers LIMIT 1"))
    blocked = txn.fetchone() is not None
    if not (suspended or blocked):
        return "", ()
    hidden = "SELECT id FROM accounts WHERE suspended = 1"
    if blocked:
        hidden += " OR authority IN (SELECT authority FROM blocked_servers)"
    return f" AND p.author_id NOT IN ({hidden})", ()


def hiding_clause(store: SQLBase, txn: Any, viewer: int | None, silenced: bool = False,
                  no_retweets: bool = False) -> tuple[str, tuple[Any, ...]]:
    """
    What a timeline's ``WHERE`` adds (``" AND ..."``, and its arguments)
    to leave out what ``viewer`` hides: the posts and retweets of blocked
    accounts (and of muted ones with ``silenced``), retweets of their
    posts, and (``no_retweets``) the retweets of accounts the viewer takes
    no retweets of.  Nothing at all (the query unchanged) when the viewer
    hides nobody: one read of an empty index range.
    """
    sql, args = operator_hiding(store, txn)
    if viewer is None:
        return sql, args
    hidden = hidden_in(store, txn, viewer)
    if not hidden:
        return sql, args
    if hidden.silenced if silenced else hidden.blocked:
        flags = "(blocking = 1 OR muting = 1)" if silenced else "blocking = 1"
        authors = f"SELECT target_id FROM blocks WHERE account_id = ? AND {flags}"
        sql += (
            f" AND p.author_id NOT IN ({authors}) AND (p.retweet_of_id IS NULL OR NOT EXISTS"
            " (SELECT 1 FROM posts o WHERE o.id = p.retweet_of_id"
            f" AND o.author_id IN ({authors})))"
        )
        args += (viewer, viewer)
    if no_retweets and hidden.no_retweets:
        sql += (
            " AND NOT (p.kind = 'retweet' AND p.author_id IN"
            " (SELECT target_id FROM blocks WHERE account_id = ? AND no_retweets = 1))"
        )
        args += (viewer,)
    return sql, args


@implementer(IBlockStore)
class BlocksStore(SQLBase):
    """
    The blocks part of :class:`~distwit.store.sql.SQLStore`.
    """

    def hidden_accounts(self, account_id: int) -> "Deferred[Hidden]":
        return self._run(lambda txn: hidden_in(self, txn, account_id))

    def _set(self, txn: Any, account_id: int, target_id: int, column: str, on: bool,
             created_at: int) -> bool:
        txn.execute(
            self._q(f"SELECT {column} FROM blocks WHERE account_id = ? AND target_id = ?"),
            (account_id, target_id),
        )
        row = txn.fetchone()
        if (bool(row[0]) if row is not None else False) == on:
            return False
        if on:
            # An upsert: a row another transaction added meanwhile is set too.
            txn.execute(
                self._q(
                    f"INSERT INTO blocks (account_id, target_id, {column}, created_at)"
                    " VALUES (?, ?, 1, ?) ON CONFLICT (account_id, target_id)"
                    f" DO UPDATE SET {column} = 1"
                ),
                (account_id, target_id, created_at),
            )
            return True
        txn.execute(
            self._q(f"UPDATE blocks SET {column} = 0 WHERE account_id = ? AND target_id = ?"),
            (account_id, target_id),
        )
        txn.execute(
            self._q(
                "DELETE FROM blocks WHERE account_id = ? AND target_id = ?"
                " AND blocking = 0 AND muting = 0 AND no_retweets = 0"
            ),
            (account_id, target_id),
        )
        return True

    def set_hiding(self, account_id: int, target_id: int, what: str, on: bool,
                   created_at: int) -> "Deferred[bool]":
        column = _column(what)
        return self._run(self._set, account_id, target_id, column, on, created_at)

    def _unfollow_in(self, txn: Any, follower_id: int, followee_id: int) -> bool:
        txn.execute(
            self._q("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?"),
            (follower_id, followee_id),
        )
        if txn.rowcount < 1:
            return False
        for column, account in (("friends_count", follower_id),
                                ("followers_count", followee_id)):
            txn.execute(
                self._q(f"UPDATE accounts SET {column} = {column} - 1 WHERE id = ?"),
                (account,),
            )
        return True

    def block(
        self, account_id: int, target_id: int, created_at: int,
        notice: "QueuedNotice | None" = None,
    ) -> "Deferred[tuple[bool, bool, bool]]":
        def interaction(txn: Any) -> tuple[bool, bool, bool]:
            new = self._set(txn, account_id, target_id, "blocking", True, created_at)
            unfollowed = self._unfollow_in(txn, account_id, target_id)
            if unfollowed and notice is not None:
                self._insert_notice(txn, *notice)
            follower_removed = self._unfollow_in(txn, target_id, account_id)
            return new, unfollowed, follower_removed

        return self._run(interaction)

    def hiding_page(
        self, account_id: int, what: str, before: int | None, count: int
    ) -> "Deferred[list[Account]]":
        column = _column(what)

        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM blocks b JOIN accounts a"
                    f" ON a.id = b.target_id WHERE b.account_id = ? AND b.{column} = 1"
                    " AND a.id < ? ORDER BY a.id DESC LIMIT ?"
                ),
                (account_id, before if before is not None else 2**63 - 1, count),
            )
            return [account_from_row(row) for row in txn.fetchall()]

        return self._run(interaction)

    def hiding_between(self, account_id: int, target_id: int) -> "Deferred[set[str]]":
        def interaction(txn: Any) -> set[str]:
            txn.execute(
                self._q(
                    "SELECT blocking, muting, no_retweets FROM blocks"
                    " WHERE account_id = ? AND target_id = ?"
                ),
                (account_id, target_id),
            )
            row = txn.fetchone()
            if row is None:
                return set()
            return {what for what, flag in zip(HIDING, row) if flag}

        return self._run(interaction)
