"""
Notifications: what happened to an account, read from the tables that
hold it (mentions, replies, follows, retweets, favorites), newest first,
and how far the account has seen them (``notifications_seen``).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import INotificationStore, NotificationRecord
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row

#: The five kinds, each ``(kind, at, actor id, post id)`` for account ``?``
#: (the one notified), older than ``?``; a post of a mention or reply is
#: the post that mentions or replies, that of a retweet or favorite the
#: account's own post.  A reply to the account mentions it too: it counts
#: as a reply only.  Nobody is notified of their own acts.
_KINDS = {
    "mention": (
        "SELECT DISTINCT 'mention' AS kind, p.created_at AS at, p.author_id AS actor,"
        " p.id AS post FROM mentions m JOIN posts p ON p.id = m.post_id"
        " WHERE m.account_id = ? AND p.created_at < ? AND p.kind = 'post'"
        " AND p.deleted_at IS NULL AND p.author_id <> m.account_id"
        " AND NOT EXISTS (SELECT 1 FROM posts q WHERE q.id = p.in_reply_to_status_id"
        " AND q.author_id = m.account_id)"
    ),
    "reply": (
        "SELECT 'reply' AS kind, p.created_at AS at, p.author_id AS actor, p.id AS post"
        " FROM posts q JOIN posts p ON p.in_reply_to_status_id = q.id"
        # (Implies the partial index's condition: migration 017.)
        " AND p.in_reply_to_status_id IS NOT NULL"
        " WHERE q.author_id = ? AND p.created_at < ? AND p.kind = 'post'"
        " AND p.deleted_at IS NULL AND p.author_id <> q.author_id"
    ),
    "follow": (
        "SELECT 'follow' AS kind, f.created_at AS at, f.follower_id AS actor,"
        " CAST(NULL AS BIGINT) AS post"
        " FROM follows f WHERE f.followee_id = ? AND f.created_at < ?"
    ),
    "retweet": (
        "SELECT 'retweet' AS kind, p.created_at AS at, p.author_id AS actor, q.id AS post"
        " FROM posts q JOIN posts p ON p.retweet_of_id = q.id"
        " AND p.retweet_of_id IS NOT NULL"
        " WHERE q.author_id = ? AND p.created_at < ? AND p.kind = 'retweet'"
        " AND p.deleted_at IS NULL AND p.author_id <> q.author_id"
    ),
    "favorite": (
        "SELECT 'favorite' AS kind, f.created_at AS at, f.account_id AS actor, q.id AS post"
        " FROM posts q JOIN favorites f ON f.post_id = q.id"
        " WHERE q.author_id = ? AND f.created_at < ? AND f.account_id <> q.author_id"
        " AND q.deleted_at IS NULL"
    ),
}


def _union(hidden: int, limit: bool) -> str:
    """
    The five kinds as one query, without the actors in ``hidden`` (that
    many ``?`` after each kind's two), each kind cut at ``?`` rows when
    ``limit`` (a page never needs more of one kind than in all).
    """
    parts = []
    for select in _KINDS.values():
        actor = select.split(" AS actor", 1)[0].rsplit(" ", 1)[1]
        if hidden:
            select += f" AND {actor} NOT IN ({', '.join('?' for _ in range(hidden))})"
        if limit:
            select = f"SELECT * FROM ({select} ORDER BY at DESC LIMIT ?) k"
        parts.append(select)
    return " UNION ALL ".join(parts)


@implementer(INotificationStore)
class NotificationsStore(SQLBase):
    """
    The notifications part of :class:`~distwit.store.sql.SQLStore`.
    """

    def notifications(
        self, account_id: int, before: int | None, count: int, hidden: "list[int]"
    ) -> "Deferred[list[NotificationRecord]]":
        sql = self._q(
            f"SELECT kind, at, actor, post FROM ({_union(len(hidden), True)}) n"
            " ORDER BY at DESC, kind, actor, post LIMIT ?"
        )
        bound = (2 ** 62) if before is None else before
        args: list[Any] = []
        for _ in _KINDS:
            args += [account_id, bound, *hidden, count]
        args.append(count)

        def interaction(txn: Any) -> list[NotificationRecord]:
            txn.execute(sql, args)
            rows = txn.fetchall()
            actors = {int(row[2]) for row in rows}
            accounts = {}
            if actors:
                marks = ", ".join("?" for _ in actors)
                txn.execute(
                    self._q(f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id IN ({marks})"),
                    list(actors),
                )
                for found in txn.fetchall():
                    account = account_from_row(found)
                    accounts[account.id] = account
            post_ids = [int(row[3]) for row in rows if row[3] is not None]
            posts = {}
            for post_id in set(post_ids):
                post = self._get_post(txn, post_id)
                if post is not None:
                    posts[post_id] = post
            return [
                NotificationRecord(
                    kind=row[0], at=int(row[1]), actor=accounts[int(row[2])],
                    post=None if row[3] is None else posts.get(int(row[3])),
                )
                for row in rows
                if int(row[2]) in accounts
            ]

        return self._run(interaction)

    def unread_notifications(
        self, account_id: int, at_most: int, hidden: "list[int]"
    ) -> "Deferred[int]":
        # Each kind newer than the account's mark: "at < ?" turned round.
        union = _union(len(hidden), True).replace(" < ?", " > ?")
        sql = self._q(f"SELECT COUNT(*) FROM ({union}) n")

        def interaction(txn: Any) -> int:
            txn.execute(
                self._q("SELECT seen_at FROM notifications_seen WHERE account_id = ?"),
                (account_id,),
            )
            row = txn.fetchone()
            seen = -1 if row is None else int(row[0])
            args: list[Any] = []
            for _ in _KINDS:
                args += [account_id, seen, *hidden, at_most]
            txn.execute(sql, args)
            return min(int(txn.fetchone()[0]), at_most)

        return self._run(interaction)

    def see_notifications(self, account_id: int, seen_at: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO notifications_seen (account_id, seen_at) VALUES (?, ?)"
                    " ON CONFLICT (account_id) DO UPDATE SET seen_at = excluded.seen_at"
                    " WHERE notifications_seen.seen_at < excluded.seen_at"
                ),
                (account_id, seen_at),
            )

        return self._run(interaction)
