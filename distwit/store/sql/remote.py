"""
Federation: what is known of remote authors (their last number, how far they
are copied), the ranges of posts exchanged with other servers.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Account, Post
from distwit.store.interfaces import IRemoteStore, NoSuchAccount
from distwit.store.sql.base import (
    ACCOUNT_COLUMNS,
    POST_COLUMNS,
    POSTS_FROM,
    account_from_row,
    post_from_row,
)
from distwit.store.sql.posts import PostsStore


@implementer(IRemoteStore)
class RemoteStore(PostsStore):
    """
    The remote part of :class:`~distwit.store.sql.SQLStore`.
    """

    def local_last_numbers(self) -> "Deferred[list[tuple[str, int]]]":
        def interaction(txn: Any) -> list[tuple[str, int]]:
            txn.execute(
                "SELECT handle_key, last_seq FROM accounts"
                " WHERE authority = '' AND last_seq > 0"
            )
            return [(row[0], row[1]) for row in txn.fetchall()]

        return self._run(interaction)

    def subscriptions(self) -> "Deferred[list[tuple[str, str]]]":
        def interaction(txn: Any) -> list[tuple[str, str]]:
            txn.execute(
                # "|| ''" keeps SQLite from looking the follower up through
                # the authority index (all local accounts, for each remote
                # one: quadratic) rather than by its id.
                "SELECT a.handle_key, a.authority FROM accounts a WHERE a.authority <> ''"
                " AND EXISTS (SELECT 1 FROM follows f JOIN accounts l"
                " ON l.id = f.follower_id AND (l.authority || '') = ''"
                " WHERE f.followee_id = a.id)"
            )
            return [(row[0], row[1]) for row in txn.fetchall()]

        return self._run(interaction)

    def get_remote_account(self, handle: str, authority: str) -> "Deferred[Account | None]":
        def interaction(txn: Any) -> Account | None:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ?"
                ),
                (handle.lower(), authority),
            )
            row = txn.fetchone()
            return None if row is None else account_from_row(row)

        return self._run(interaction)

    def note_remote_last(
        self, handle: str, authority: str, last: int, home_url: str
    ) -> "Deferred[Account | None]":
        def interaction(txn: Any) -> Account | None:
            txn.execute(
                self._q(
                    f"UPDATE accounts SET last_seq = {self._engine.greatest}(last_seq, ?),"
                    " home_url = ? WHERE handle_key = ? AND authority = ? RETURNING id"
                ),
                (last, home_url, handle.lower(), authority),
            )
            row = txn.fetchone()
            return None if row is None else self._get_account(txn, row[0])

        return self._run(interaction)

    def forget_remote_claim(
        self, account_id: int, claimed: int, confirmed: int
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "UPDATE accounts SET last_seq = ?,"
                    " synced_seq = CASE WHEN synced_seq > ? THEN ? ELSE synced_seq END"
                    " WHERE id = ? AND authority <> '' AND last_seq = ?"
                ),
                (confirmed, confirmed, confirmed, account_id, claimed),
            )

        return self._run(interaction)

    def start_sync_at(self, account_id: int, seq: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    f"UPDATE accounts SET synced_seq = {self._engine.greatest}(synced_seq, ?),"
                    f" last_seq = {self._engine.greatest}(last_seq, ?)"
                    " WHERE id = ? AND authority <> ''"
                ),
                (seq, seq, account_id),
            )

        return self._run(interaction)

    def wanted(self, limit: int) -> "Deferred[list[Account]]":
        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.authority <> ''"
                    " AND a.synced_seq < a.last_seq AND a.home_url <> ''"
                    " ORDER BY a.id LIMIT ?"
                ),
                (limit,),
            )
            return [account_from_row(row) for row in txn.fetchall()]

        return self._run(interaction)

    def range_posts(self, account_id: int, first: int, last: int) -> "Deferred[list[Post]]":
        def interaction(txn: Any) -> list[Post]:
            txn.execute(
                self._q(
                    f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                    " WHERE p.author_id = ? AND p.seq >= ? AND p.seq <= ? ORDER BY p.seq"
                ),
                (account_id, first, last),
            )
            return self._with_mentions(txn, [post_from_row(row) for row in txn.fetchall()])

        return self._run(interaction)

    def store_remote_items(
        self,
        account_id: int,
        first: int,
        last: int,
        items: "list[Any]",
        own_authority: str,
        stored_at: int,
        aside: bool = False,
    ) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            account = self._get_account(txn, account_id)
            if account.is_local:
                raise NoSuchAccount(account_id)
            stored = 0
            present = set()
            # What is already held of the range, in one query.
            txn.execute(
                self._q(
                    "SELECT seq, id, deleted_at FROM posts"
                    " WHERE author_id = ? AND seq >= ? AND seq <= ?"
                ),
                (account_id, first, last),
            )
            held = {int(row[0]): (row[1], row[2]) for row in txn.fetchall()}
            fresh = sum(1 for item in items if item.seq not in held)
            next_id = self._next_status_ids(txn, fresh, stored_at) if fresh else 0
            for item in items:
                present.add(item.seq)
                existing = held.get(item.seq)
                if existing is None:
                    reply_id = self._reply_target(txn, item.in_reply_to, own_authority)
                    text = "" if item.deleted else item.text
                    post_id = self._insert_post(
                        txn, account_id, item.seq, text,
                        item.created_at, item.source or "web", reply_id,
                        stored_at if item.deleted else None,
                        getattr(item, "deletes", None), stored_at=stored_at, post_id=next_id,
                    )
                    next_id += 1
                    self._record_mentions(txn, post_id, text, account.authority, own_authority)
                    held[item.seq] = (post_id, stored_at if item.deleted else None)
                    stored += 1
                elif item.deleted and existing[1] is None:
                    self._tombstone(txn, existing[0], stored_at)
                deletes = getattr(item, "deletes", None)
                if deletes is not None:
                    txn.execute(
                        self._q(
                            "SELECT id FROM posts WHERE author_id = ? AND seq = ?"
                            " AND deleted_at IS NULL"
                        ),
                        (account_id, deletes),
                    )
                    target = txn.fetchone()
                    if target is not None:
                        self._tombstone(txn, target[0], stored_at)
            if aside:
                # Kept for a notice (a mention, a reply) of an author this
                # server may not copy: no claim on what is held changes.
                return stored
            synced = account.synced_seq
            while synced < last:
                if synced + 1 not in present:
                    txn.execute(
                        self._q("SELECT 1 FROM posts WHERE author_id = ? AND seq = ?"),
                        (account_id, synced + 1),
                    )
                    if txn.fetchone() is None:
                        break
                synced += 1
            txn.execute(
                self._q(
                    "UPDATE accounts SET synced_seq = ?,"
                    f" last_seq = {self._engine.greatest}(last_seq, ?),"
                    " statuses_count = (SELECT COUNT(*) FROM posts"
                    " WHERE author_id = ? AND deleted_at IS NULL)"
                    " WHERE id = ?"
                ),
                (max(synced, account.synced_seq), last, account_id, account_id),
            )
            return stored

        return self._run(interaction)

    def _reply_target(
        self, txn: Any, in_reply_to: "tuple[str, int] | None", own_authority: str
    ) -> int | None:
        if in_reply_to is None:
            return None
        acct, seq = in_reply_to
        handle, _, authority = acct.rpartition("@")
        if authority == own_authority:
            authority = ""
        txn.execute(
            self._q(
                "SELECT p.id FROM posts p JOIN accounts a ON a.id = p.author_id"
                " WHERE a.handle_key = ? AND a.authority = ? AND p.seq = ?"
            ),
            (handle.lower(), authority, seq),
        )
        row = txn.fetchone()
        return None if row is None else int(row[0])
