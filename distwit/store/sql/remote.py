"""
Federation: what is known of remote authors (their last number, how far they
are copied), the ranges of posts exchanged with other servers.
"""

from __future__ import annotations

from typing import Any, overload

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import POST, PROFILE, RETWEET, Account, Post
from distwit.store.interfaces import IRemoteStore, NoSuchAccount
from distwit.store.sql.base import (
    ACCOUNT_COLUMNS,
    POST_COLUMNS,
    POSTS_FROM,
    account_from_row,
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
            return self._posts_from_rows(txn, txn.fetchall())

        return self._run(interaction)

    def store_remote_items(
        self,
        account_id: int,
        first: int,
        last: int,
        items: "list[Any]",
        own_authority: str,
        stored_at: int,
        counts: "Any | None" = None,
        aside: bool = False,
        latest_profile: "tuple[int, Any] | None" = None,
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
                    post_id = self._insert_item(
                        txn, account, item, own_authority, stored_at, next_id
                    )
                    next_id += 1
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
            if not aside:
                # (Kept aside, for a notice or a read, of an author this
                # server may not copy: no claim on what is held changes;
                # the author's own figures below are taken all the same.)
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
                        " WHERE author_id = ? AND deleted_at IS NULL AND kind <> 'profile')"
                        " WHERE id = ?"
                    ),
                    (max(synced, account.synced_seq), last, account_id, account_id),
                )
            if latest_profile is not None:
                self._apply_profile(txn, account, *latest_profile)
            if counts is not None:
                # The author's server's own figures: what this server holds
                # of them is only part.
                txn.execute(
                    self._q(
                        "UPDATE accounts SET statuses_count = ?, followers_count = ?,"
                        " friends_count = ? WHERE id = ?"
                    ),
                    (counts.statuses, counts.followers, counts.friends, account_id),
                )
            return stored

        return self._run(interaction)

    def unheld_originals(
        self, account_id: int, first: int, last: int
    ) -> "Deferred[list[tuple[str, int]]]":
        def interaction(txn: Any) -> list[tuple[str, int]]:
            txn.execute(
                self._q(
                    "SELECT DISTINCT retweet_acct, retweet_seq FROM posts"
                    " WHERE author_id = ? AND seq >= ? AND seq <= ? AND kind = 'retweet'"
                    " AND retweet_of_id IS NULL AND deleted_at IS NULL"
                    " AND retweet_acct IS NOT NULL"
                ),
                (account_id, first, last),
            )
            return [(str(row[0]), int(row[1])) for row in txn.fetchall()]

        return self._run(interaction)

    def replies_to(
        self, account_id: int, seq: int, limit: int
    ) -> "Deferred[list[tuple[str, str, int]]]":
        def interaction(txn: Any) -> list[tuple[str, str, int]]:
            account = self._get_account(txn, account_id)
            # Every reply keeps its target's reference (the screen name as
            # it was written here, and the number), held or not.
            name = account.screen_name
            txn.execute(
                self._q(
                    "SELECT a.handle, a.authority, p.seq FROM posts p"
                    " JOIN accounts a ON a.id = p.author_id"
                    " WHERE p.reply_acct IN (?, ?) AND p.reply_seq = ?"
                    " AND p.deleted_at IS NULL AND p.kind = 'post'"
                    " ORDER BY p.id DESC LIMIT ?"
                ),
                (name, name.lower(), seq, limit),
            )
            return [(str(row[0]), str(row[1]), int(row[2])) for row in txn.fetchall()]

        return self._run(interaction)

    def store_remote_original(
        self, account_id: int, item: Any, own_authority: str, stored_at: int
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            account = self._get_account(txn, account_id)
            if account.is_local or item.deleted or getattr(item, "kind", POST) != POST:
                return False
            txn.execute(
                self._q("SELECT 1 FROM posts WHERE author_id = ? AND seq = ?"),
                (account_id, item.seq),
            )
            if txn.fetchone() is not None:
                return False
            # Held aside: the author's synced and last numbers stay as they
            # are (a later copy of the range finds this number held).
            self._insert_item(txn, account, item, own_authority, stored_at, None)
            return True

        return self._run(interaction)

    def _insert_item(
        self,
        txn: Any,
        account: Account,
        item: Any,
        own_authority: str,
        stored_at: int,
        post_id: int | None,
    ) -> int:
        """
        Store one item of a remote author's log that is not held yet (a
        post, a tombstone, a retweet or a profile item), with its mentions
        and references; apply a profile item newer than the profile held.
        Every way a remote item is stored (a range copied, an original kept
        aside, history read) goes through here.

        :param post_id: its status id, or ``None`` for one from the clock.
        :return: its status id.
        """
        kind = getattr(item, "kind", POST)
        in_reply_to = item.in_reply_to if kind == POST else None
        reply_id = self._reply_target(txn, in_reply_to, own_authority)
        retweet = None
        retweet_of = getattr(item, "retweet_of", None)
        if kind == RETWEET and retweet_of is not None and not item.deleted:
            name, number = _reply_reference(retweet_of, own_authority)
            retweet = (name, number, self._reply_target(txn, retweet_of, own_authority))
        text = "" if item.deleted else item.text
        post_id = self._insert_post(
            txn, account.id, item.seq, text,
            item.created_at, item.source or "web", reply_id,
            stored_at if item.deleted else None,
            getattr(item, "deletes", None), stored_at=stored_at, post_id=post_id,
            kind=kind if not item.deleted else POST,
            retweet=retweet,
            reply=_reply_reference(in_reply_to, own_authority),
        )
        self._record_mentions(txn, post_id, text, account.authority, own_authority)
        if retweet is not None and retweet[2] is not None:
            self._recount_retweets(txn, retweet[2])
        if kind == POST and not item.deleted:
            self._link_references(txn, post_id, account, item.seq)
        profile = getattr(item, "profile", None)
        if kind == PROFILE and profile is not None:
            self._apply_profile(txn, account, item.seq, profile)
        return post_id

    def _apply_profile(self, txn: Any, account: Account, seq: int, profile: Any) -> None:
        """
        Take the profile of a remote author's profile item ``seq``, unless
        a later one is held.  Only the author's own server speaks for them:
        it came from their home URL.
        """
        txn.execute(
            self._q(
                "UPDATE accounts SET name = ?, description = ?, location = ?,"
                " url = ?, profile_image = ?, profile_seq = ?"
                " WHERE id = ? AND profile_seq < ?"
            ),
            (profile.name or account.handle, profile.description,
             profile.location, profile.url, profile.image, seq,
             account.id, seq),
        )

    def _link_references(self, txn: Any, post_id: int, author: Account, seq: int) -> None:
        """
        A post that arrives after replies to it or retweets of it were
        stored: link them to it (they kept its reference), and count the
        retweets.
        """
        acct = f"{author.handle.lower()}@{author.authority}"
        txn.execute(
            self._q(
                "UPDATE posts SET retweet_of_id = ? WHERE retweet_acct = ? AND retweet_seq = ?"
                " AND kind = 'retweet' AND retweet_of_id IS NULL AND deleted_at IS NULL"
            ),
            (post_id, acct, seq),
        )
        if txn.rowcount:
            self._recount_retweets(txn, post_id)
        txn.execute(
            self._q(
                "UPDATE posts SET in_reply_to_status_id = ? WHERE reply_acct = ?"
                " AND reply_seq = ? AND in_reply_to_status_id IS NULL AND deleted_at IS NULL"
            ),
            (post_id, acct, seq),
        )

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


@overload
def _reply_reference(in_reply_to: "tuple[str, int]", own_authority: str) -> "tuple[str, int]":
    ...


@overload
def _reply_reference(in_reply_to: None, own_authority: str) -> None:
    ...


def _reply_reference(
    in_reply_to: "tuple[str, int] | None", own_authority: str
) -> "tuple[str, int] | None":
    """
    A reply's (or a retweet's) reference as kept on the post: the screen
    name of the author replied to (retweeted) here (``handle`` for this server's users, else
    ``handle@authority``) and the number, whether or not that post is held.
    """
    if in_reply_to is None:
        return None
    acct, seq = in_reply_to
    handle, _, authority = acct.rpartition("@")
    if authority == own_authority:
        return handle.lower(), seq
    return acct.lower(), seq
