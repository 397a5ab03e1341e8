"""
Posts: writing one (its number, its status id, its mentions), reading one
back, deleting one.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit import entities
from distwit.model import Post, limit_source
from distwit.store.interfaces import DuplicatePost, IPostStore, NoSuchAccount
from distwit.store.sql.base import POST_COLUMNS, POSTS_FROM, SQLBase, post_from_row

#: The epoch of status ids (Twitter's, so ids look like Twitter's).
ID_EPOCH_MS = 1288834974657
#: Low bits of a status id left for posts within the same millisecond.
ID_SEQUENCE_BITS = 22


def status_id_floor(now_ms: int) -> int:
    """
    The smallest status id for a post stored at ``now_ms``: time in the
    high bits, so ids sort by time like Twitter's.
    """
    return max(now_ms - ID_EPOCH_MS, 0) << ID_SEQUENCE_BITS


@implementer(IPostStore)
class PostsStore(SQLBase):
    """
    The posts part of :class:`~distwit.store.sql.SQLStore`.
    """

    def create_post(
        self,
        author_id: int,
        text: str,
        source: str,
        in_reply_to_status_id: int | None,
        created_at: int,
        own_authority: str = "",
    ) -> "Deferred[Post]":
        def interaction(txn: Any) -> Post:
            # Taking the next number locks the author's row (PostgreSQL) so
            # concurrent posts by one author queue up here: numbers stay dense.
            txn.execute(
                self._q(
                    "UPDATE accounts SET last_seq = last_seq + 1,"
                    " statuses_count = statuses_count + 1"
                    " WHERE id = ? AND authority = '' RETURNING last_seq"
                ),
                (author_id,),
            )
            row = txn.fetchone()
            if row is None:
                raise NoSuchAccount(author_id)
            (seq,) = row
            txn.execute(
                self._q(
                    "SELECT text FROM posts WHERE author_id = ? AND deleted_at IS NULL"
                    " ORDER BY seq DESC LIMIT 1"
                ),
                (author_id,),
            )
            latest = txn.fetchone()
            if latest is not None and latest[0] == text:
                # Raising rolls the transaction back: the number is not used.
                raise DuplicatePost(text)
            post_id = self._insert_post(
                txn, author_id, seq, text, created_at, source, in_reply_to_status_id,
                None, None,
            )
            self._record_mentions(txn, post_id, text, "", own_authority)
            return self._get_post(txn, post_id)  # type: ignore[return-value]

        return self._run(interaction)

    def get_post(self, post_id: int) -> "Deferred[Post | None]":
        return self._run(self._get_post, post_id)

    def latest_post(self, account_id: int) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            txn.execute(
                self._q(
                    f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                    " WHERE p.author_id = ? AND p.deleted_at IS NULL"
                    " ORDER BY p.id DESC LIMIT 1"
                ),
                (account_id,),
            )
            row = txn.fetchone()
            return None if row is None else self._with_mentions(txn, [post_from_row(row)])[0]

        return self._run(interaction)

    def delete_post(self, post_id: int, deleted_at: int) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            post = self._get_post(txn, post_id)
            if post is None or post.deleted:
                return None
            self._tombstone(txn, post_id, deleted_at)
            txn.execute(
                self._q(
                    "UPDATE accounts SET statuses_count = statuses_count - 1 WHERE id = ?"
                ),
                (post.author.id,),
            )
            if post.author.is_local:
                # The delete takes the author's next number, as a deletion
                # record, so that it travels to other servers like a post.
                txn.execute(
                    self._q(
                        "UPDATE accounts SET last_seq = last_seq + 1 WHERE id = ?"
                        " RETURNING last_seq"
                    ),
                    (post.author.id,),
                )
                (seq,) = txn.fetchone()
                self._insert_post(
                    txn, post.author.id, seq, "", deleted_at, "", None, deleted_at,
                    post.seq,
                )
            return post

        return self._run(interaction)

    def _tombstone(self, txn: Any, post_id: int, deleted_at: int) -> None:
        """
        Make a post a tombstone: it keeps its number and nothing else a
        feed would carry (no text, no source, no reply), so that a deleted
        post weighs nothing in its author's range feed.
        """
        txn.execute(
            self._q(
                "UPDATE posts SET deleted_at = ?, text = '', source = '',"
                " in_reply_to_status_id = NULL WHERE id = ? AND deleted_at IS NULL"
            ),
            (deleted_at, post_id),
        )

    def _next_status_id(self, txn: Any, created_at: int) -> int:
        return self._next_status_ids(txn, 1, created_at)

    def _next_status_ids(self, txn: Any, count: int, created_at: int) -> int:
        """
        Take ``count`` status ids in a row from the id clock; the first.
        """
        # The id clock's row lock is held until commit, so posts become
        # visible in id order and since_id polling never skips one.
        txn.execute(
            self._q(
                f"UPDATE id_clock SET last_id = {self._engine.greatest}"
                "(last_id + ?, ?) WHERE singleton = 1 RETURNING last_id"
            ),
            (count, status_id_floor(created_at) + count - 1),
        )
        (last_id,) = txn.fetchone()
        return int(last_id) - count + 1

    def _insert_post(
        self,
        txn: Any,
        author_id: int,
        seq: int,
        text: str,
        created_at: int,
        source: str,
        in_reply_to_status_id: int | None,
        deleted_at: int | None,
        deletes_seq: int | None,
        stored_at: int | None = None,
        post_id: int | None = None,
    ) -> int:
        if deleted_at is not None:
            # A tombstone keeps nothing but its number (see _tombstone).
            text, source, in_reply_to_status_id = "", "", None
        else:
            # Every field is bounded, whatever the caller checked.
            source = limit_source(source)
        if post_id is None:
            post_id = self._next_status_id(txn, created_at if stored_at is None else stored_at)
        txn.execute(
            self._q(
                "INSERT INTO posts (id, author_id, seq, text, created_at, source,"
                " in_reply_to_status_id, deleted_at, deletes_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (post_id, author_id, seq, text, created_at, source, in_reply_to_status_id,
             deleted_at, deletes_seq),
        )
        return post_id

    def _record_mentions(
        self, txn: Any, post_id: int, text: str, author_authority: str, own_authority: str
    ) -> None:
        """
        Note which known accounts ``text`` mentions: ``@handle`` is on the
        author's server, ``@handle@authority`` where it says (here, when
        that is ``own_authority``).
        """
        for mention in entities.mentions(text):
            authority = author_authority if mention.authority is None else mention.authority
            authority = authority.lower()
            if authority == own_authority:
                authority = ""
            txn.execute(
                self._q("SELECT id FROM accounts WHERE handle_key = ? AND authority = ?"),
                (mention.handle.lower(), authority),
            )
            row = txn.fetchone()
            if row is not None:
                txn.execute(
                    self._q(
                        "INSERT INTO mentions (post_id, account_id, start_index, end_index)"
                        " VALUES (?, ?, ?, ?)"
                    ),
                    (post_id, row[0], mention.start, mention.end),
                )
