"""
The outbox: signed notices to other servers, kept until delivered
(:mod:`distwit.federation.outbox` sends them), and the cursor of the sweep
that queues mention and reply notices for new local posts.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Post
from distwit.store.interfaces import IOutboxStore, OutboxItem
from distwit.store.sql.base import POST_COLUMNS, POSTS_FROM, SQLBase, post_from_row

_ITEM_COLUMNS = "id, target, kind, body, created_at, attempts, next_at, last_error"

#: The cursor of the sweep over new posts.
POSTS_CURSOR = "posts"

#: The longest error text kept with a notice.
MAX_ERROR = 500


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=int(row[0]), target=row[1], kind=row[2], body=row[3], created_at=int(row[4]),
        attempts=int(row[5]), next_at=int(row[6]), last_error=row[7],
    )


#: The kinds of notice delivered in the order they were queued, per
#: receiving server (see claim_notices).
ORDERED_KINDS = ("follow", "unfollow", "favorite", "unfavorite", "retweet", "unretweet")


@implementer(IOutboxStore)
class OutboxStore(SQLBase):
    """
    The outbox part of :class:`~distwit.store.sql.SQLStore`.
    """

    def queue_notice(self, target: str, kind: str, body: str, now: int) -> "Deferred[int]":
        return self._run(self._insert_notice, target, kind, body, now)

    def claim_notices(
        self, now: int, lease_until: int, limit: int
    ) -> "Deferred[list[OutboxItem]]":
        def interaction(txn: Any) -> list[OutboxItem]:
            # A notice that changes a state the receiver keeps (follows,
            # favorites, retweets) waits for every older one of those to
            # the same server: sent two at a time, or retried after a
            # failure, an "unfollow" would otherwise overtake the "follow"
            # before it, and the receiver would keep the wrong one.
            ordered = ", ".join(f"'{kind}'" for kind in ORDERED_KINDS)
            txn.execute(
                self._q(
                    f"SELECT {_ITEM_COLUMNS} FROM outbox o WHERE o.next_at <= ?"
                    f" AND NOT (o.kind IN ({ordered}) AND EXISTS (SELECT 1 FROM outbox p"
                    f" WHERE p.target = o.target AND p.kind IN ({ordered}) AND p.id < o.id))"
                    " ORDER BY o.next_at, o.id LIMIT ?"
                ),
                (now, limit),
            )
            claimed = []
            for row in txn.fetchall():
                # Taken only if no other process took it since the read.
                txn.execute(
                    self._q(
                        "UPDATE outbox SET next_at = ? WHERE id = ? AND next_at = ?"
                        " RETURNING id"
                    ),
                    (lease_until, row[0], row[6]),
                )
                if txn.fetchone() is not None:
                    claimed.append(_item(row))
            return claimed

        return self._run(interaction)

    def notice_done(self, notice_id: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(self._q("DELETE FROM outbox WHERE id = ?"), (notice_id,))

        return self._run(interaction)

    def notice_failed(self, notice_id: int, next_at: int, error: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ?"
                    " WHERE id = ?"
                ),
                (next_at, error[:MAX_ERROR], notice_id),
            )

        return self._run(interaction)

    def notices_due_now(self, now: int) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(self._q("UPDATE outbox SET next_at = ? WHERE next_at > ?"), (now, now))
            txn.execute("SELECT COUNT(*) FROM outbox")
            return int(txn.fetchone()[0])

        return self._run(interaction)

    def hurry_notices(self, target: str, now: int) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(
                self._q(
                    "UPDATE outbox SET next_at = ? WHERE target = ? AND attempts > 0"
                    " AND next_at > ?"
                ),
                (now, target, now),
            )
            return max(int(txn.rowcount), 0)

        return self._run(interaction)

    def pending_notices(self, limit: int) -> "Deferred[list[OutboxItem]]":
        def interaction(txn: Any) -> list[OutboxItem]:
            txn.execute(
                self._q(f"SELECT {_ITEM_COLUMNS} FROM outbox ORDER BY id LIMIT ?"), (limit,)
            )
            return [_item(row) for row in txn.fetchall()]

        return self._run(interaction)

    def posts_to_notice(self, limit: int) -> "Deferred[tuple[int, int, list[Post]]]":
        def interaction(txn: Any) -> tuple[int, int, list[Post]]:
            txn.execute(
                self._q("SELECT position FROM outbox_cursors WHERE name = ?"),
                (POSTS_CURSOR,),
            )
            row = txn.fetchone()
            cursor = 0 if row is None else int(row[0])
            # Posts become visible in id order (the id clock's lock is held
            # to commit): every post up to the highest id seen now is here.
            txn.execute("SELECT MAX(id) FROM posts")
            highest = txn.fetchone()[0]
            upto = cursor if highest is None else max(cursor, int(highest))
            txn.execute(
                self._q(
                    f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                    " WHERE p.id > ? AND p.id <= ? AND a.authority = ''"
                    " AND p.deleted_at IS NULL"
                    # Only what can name someone elsewhere: an @ in the text
                    # or a reply (most posts are neither, and are not read).
                    " AND (p.text LIKE ? OR p.in_reply_to_status_id IS NOT NULL"
                    " OR p.reply_acct IS NOT NULL)"
                    " ORDER BY p.id LIMIT ?"
                ),
                (cursor, upto, "%@%", limit),
            )
            posts = [post_from_row(row) for row in txn.fetchall()]
            if len(posts) >= limit:
                upto = posts[-1].id
            return cursor, upto, posts

        return self._run(interaction)

    def queue_post_notices(
        self, cursor: int, upto: int, notices: "list[tuple[str, str, str]]", now: int
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("SELECT position FROM outbox_cursors WHERE name = ?"),
                (POSTS_CURSOR,),
            )
            row = txn.fetchone()
            if row is None:
                if cursor != 0:
                    return False
                txn.execute(
                    self._q("INSERT INTO outbox_cursors (name, position) VALUES (?, ?)"),
                    (POSTS_CURSOR, upto),
                )
            else:
                txn.execute(
                    self._q(
                        "UPDATE outbox_cursors SET position = ? WHERE name = ?"
                        " AND position = ? RETURNING position"
                    ),
                    (upto, POSTS_CURSOR, cursor),
                )
                if txn.fetchone() is None:
                    return False
            for target, kind, body in notices:
                self._insert_notice(txn, target, kind, body, now)
            return True

        return self._run(interaction)
