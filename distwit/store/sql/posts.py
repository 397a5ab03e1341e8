"""
Posts: writing one (its number, its status id, its mentions), reading one
back, deleting one.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit import entities
from distwit.model import POST, RETWEET, Account, Post, limit_source
from distwit.store.interfaces import DuplicatePost, IPostStore, NoSuchAccount, NoSuchPost
from distwit.store.sql.base import (
    ACCOUNT_COLUMNS,
    ID_EPOCH_MS,
    ID_SEQUENCE_BITS,
    POST_COLUMNS,
    POSTS_FROM,
    SQLBase,
    account_from_row,
    status_id_floor,
)
from distwit.store.sql.group_commit import GroupCommitter

#: The account's columns as ``UPDATE accounts ... RETURNING`` names them.
_RETURNED_ACCOUNT = ACCOUNT_COLUMNS.replace("a.", "")


@implementer(IPostStore)
class PostsStore(SQLBase):
    """
    The posts part of :class:`~distwit.store.sql.SQLStore`.

    New posts are written in groups (:mod:`~distwit.store.sql.group_commit`):
    those that arrive while one transaction runs share the next.
    """

    _group_committer: GroupCommitter | None = None

    @property
    def group_committer(self) -> GroupCommitter:
        """
        The writer of new posts in groups (made on first use).
        """
        if self._group_committer is None:
            self._group_committer = GroupCommitter(
                self._run, self._engine.begin_group, gather=self._engine.group_gather,
                clock=getattr(self._pool, "_reactor", None),
            )
        return self._group_committer

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
            author = self._take_number_of(txn, author_id)
            seq = author.last_seq
            one_statement = self._engine.writable_ctes
            if not one_statement:
                self._refuse_duplicate(txn, author_id, text)
            reply = None
            reply_account_id = None
            if in_reply_to_status_id is not None:
                target = self._get_post(txn, in_reply_to_status_id)
                if target is not None:
                    reply = (target.author.screen_name, target.seq)
                    reply_account_id = target.author.id
            if one_statement:
                post_id = self._insert_unless_duplicate(
                    txn, author_id, seq, text, created_at, source, in_reply_to_status_id,
                    reply,
                )
            else:
                post_id = self._insert_post(
                    txn, author_id, seq, text, created_at, source, in_reply_to_status_id,
                    None, None, reply=reply,
                )
            mentions = self._record_mentions(txn, post_id, text, "", own_authority)
            # The post as reading it back would give it (tests/test_group_commit.py
            # checks they are equal), without the two queries.
            return Post(
                id=post_id, author=author, seq=seq, text=text, created_at=created_at,
                source=limit_source(source), in_reply_to_status_id=in_reply_to_status_id,
                deleted=False, in_reply_to_account_id=reply_account_id,
                in_reply_to_screen_name=None if reply is None else reply[0],
                in_reply_to_seq=None if reply is None else reply[1],
                mentions=tuple(mentions),
            )

        return self.group_committer.submit(interaction)

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
            return None if row is None else self._posts_from_rows(txn, [row])[0]

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

    def create_retweet(
        self, author_id: int, original_id: int, created_at: int
    ) -> "Deferred[Post]":
        def interaction(txn: Any) -> Post:
            original = self._get_post(txn, original_id)
            if original is None or original.deleted or original.kind != POST:
                raise NoSuchPost(original_id)
            # The next number first: it locks the author's row, so two
            # retweets of one post by one author queue up and the second
            # sees the first.
            seq = self._take_number(txn, author_id)
            txn.execute(
                self._q(
                    "SELECT 1 FROM posts WHERE author_id = ? AND kind = 'retweet'"
                    " AND retweet_of_id = ? AND deleted_at IS NULL"
                ),
                (author_id, original_id),
            )
            if txn.fetchone() is not None:
                raise DuplicatePost("retweet")
            # Kept as the original's author's screen name here (``handle`` for
            # this server's users), as a reply's reference is.
            acct = original.author.screen_name.lower()
            post_id = self._insert_post(
                txn, author_id, seq, "", created_at, "web", None, None, None,
                kind=RETWEET, retweet=(acct, original.seq, original_id),
            )
            self._recount_retweets(txn, original_id)
            return self._get_post(txn, post_id)  # type: ignore[return-value]

        return self._run(interaction)

    def live_retweet(self, author_id: int, original_id: int) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            txn.execute(
                self._q(
                    "SELECT id FROM posts WHERE author_id = ? AND kind = 'retweet'"
                    " AND retweet_of_id = ? AND deleted_at IS NULL"
                ),
                (author_id, original_id),
            )
            row = txn.fetchone()
            return None if row is None else self._get_post(txn, row[0])

        return self._run(interaction)

    def record_remote_retweet(
        self, original_id: int, retweeter_acct: str, seq: int, undo: bool = False
    ) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            original = self._get_post(txn, original_id)
            if original is None or original.kind != POST:
                return None
            acct = retweeter_acct.lower()
            # One row per retweeter, with the number of their latest
            # retweet of it: notices may arrive out of order (a retweet, its
            # undo, a second retweet), and an undo removes only the retweet
            # it names.
            if undo:
                txn.execute(
                    self._q(
                        "DELETE FROM remote_retweets WHERE post_id = ? AND retweeter_acct = ?"
                        " AND seq = ?"
                    ),
                    (original_id, acct, seq),
                )
            else:
                txn.execute(
                    self._q(
                        "SELECT seq FROM remote_retweets WHERE post_id = ? AND retweeter_acct = ?"
                    ),
                    (original_id, acct),
                )
                row = txn.fetchone()
                if row is None:
                    txn.execute(
                        self._q(
                            "INSERT INTO remote_retweets (post_id, retweeter_acct, seq)"
                            " VALUES (?, ?, ?)"
                        ),
                        (original_id, acct, seq),
                    )
                elif int(row[0]) < seq:
                    txn.execute(
                        self._q(
                            "UPDATE remote_retweets SET seq = ?"
                            " WHERE post_id = ? AND retweeter_acct = ?"
                        ),
                        (seq, original_id, acct),
                    )
            self._recount_retweets(txn, original_id)
            return self._get_post(txn, original_id)

        return self._run(interaction)

    def _take_number(self, txn: Any, author_id: int) -> int:
        """
        The next number of a local author's log (a post or a retweet),
        counted among their statuses.  It locks the author's row
        (PostgreSQL) until commit, so concurrent items of one author queue
        up here: numbers stay dense.

        :raise NoSuchAccount: no local user has that id.
        """
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
        return int(row[0])

    def _refuse_duplicate(self, txn: Any, author_id: int, text: str) -> None:
        """
        :raise DuplicatePost: when ``text`` is the author's latest post's
            (raising rolls the write back: its number is not used).
        """
        txn.execute(
            self._q(
                "SELECT text FROM posts WHERE author_id = ? AND deleted_at IS NULL"
                " AND kind = 'post' ORDER BY seq DESC LIMIT 1"
            ),
            (author_id,),
        )
        latest = txn.fetchone()
        if latest is not None and latest[0] == text:
            raise DuplicatePost(text)

    def _insert_unless_duplicate(
        self, txn: Any, author_id: int, seq: int, text: str, created_at: int, source: str,
        in_reply_to_status_id: int | None, reply: "tuple[str, int] | None",
    ) -> int:
        """
        What :meth:`_refuse_duplicate`, the id clock and :meth:`_insert_post`
        do for a new post, in one statement (one round trip to PostgreSQL
        instead of three).  Run after the author's number is taken (its row
        locked): the statement's snapshot sees any post of the author
        committed before, as the separate check would.

        :raise DuplicatePost: as :meth:`_refuse_duplicate`.
        """
        txn.execute(
            self._q(
                "WITH latest AS ("
                " SELECT text FROM posts WHERE author_id = ? AND deleted_at IS NULL"
                " AND kind = 'post' ORDER BY seq DESC LIMIT 1),"
                " clock AS ("
                f" UPDATE id_clock SET last_id = {self._engine.greatest}(last_id + 1, ?)"
                " WHERE singleton = 1 AND NOT EXISTS (SELECT 1 FROM latest WHERE text = ?)"
                " RETURNING last_id)"
                " INSERT INTO posts (id, author_id, seq, text, created_at, source,"
                " in_reply_to_status_id, kind, reply_acct, reply_seq)"
                " SELECT last_id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM clock RETURNING id"
            ),
            (author_id, status_id_floor(created_at), text,
             author_id, seq, text, created_at, limit_source(source), in_reply_to_status_id,
             POST, None if reply is None else reply[0], None if reply is None else reply[1]),
        )
        row = txn.fetchone()
        if row is None:
            raise DuplicatePost(text)
        return int(row[0])

    def _take_number_of(self, txn: Any, author_id: int) -> Account:
        """
        As :meth:`_take_number`: the author's account, as it is after.
        """
        txn.execute(
            self._q(
                "UPDATE accounts SET last_seq = last_seq + 1,"
                " statuses_count = statuses_count + 1"
                f" WHERE id = ? AND authority = '' RETURNING {_RETURNED_ACCOUNT}"
            ),
            (author_id,),
        )
        row = txn.fetchone()
        if row is None:
            raise NoSuchAccount(author_id)
        return account_from_row(row)

    def _recount_retweets(self, txn: Any, post_id: int) -> None:
        """
        Count the accounts that retweeted the post, each once: live
        retweets held here (local ones and copied ones) and the retweets
        other servers told about.
        """
        txn.execute(
            self._q(
                "UPDATE posts SET retweet_count = (SELECT COUNT(*) FROM ("
                " SELECT a.handle_key || '@' || a.authority AS who"
                " FROM posts r JOIN accounts a ON a.id = r.author_id"
                " WHERE r.retweet_of_id = ? AND r.kind = 'retweet' AND r.deleted_at IS NULL"
                " AND a.authority <> ''"
                " UNION SELECT CAST(a.id AS TEXT) AS who"
                " FROM posts r JOIN accounts a ON a.id = r.author_id"
                " WHERE r.retweet_of_id = ? AND r.kind = 'retweet' AND r.deleted_at IS NULL"
                " AND a.authority = ''"
                " UNION SELECT retweeter_acct AS who FROM remote_retweets WHERE post_id = ?"
                ") retweeters) WHERE id = ?"
            ),
            (post_id, post_id, post_id, post_id),
        )

    def _tombstone(self, txn: Any, post_id: int, deleted_at: int) -> None:
        """
        Make a post a tombstone: it keeps its number and nothing else a
        feed would carry (no text, no source, no reply), so that a deleted
        post weighs nothing in its author's range feed.
        """
        txn.execute(
            self._q("SELECT retweet_of_id FROM posts WHERE id = ? AND deleted_at IS NULL"),
            (post_id,),
        )
        retweeted = txn.fetchone()
        txn.execute(
            self._q(
                "UPDATE posts SET deleted_at = ?, text = '', source = '',"
                " in_reply_to_status_id = NULL, reply_acct = NULL, reply_seq = NULL,"
                " retweet_acct = NULL, retweet_seq = NULL"
                " WHERE id = ? AND deleted_at IS NULL"
            ),
            (deleted_at, post_id),
        )
        if retweeted is not None and retweeted[0] is not None:
            # An undone retweet no longer counts on the original.
            self._recount_retweets(txn, retweeted[0])

    def _record_mentions(
        self, txn: Any, post_id: int, text: str, author_authority: str, own_authority: str
    ) -> list[tuple[Account, int, int]]:
        """
        Note which known accounts ``text`` mentions: ``@handle`` is on the
        author's server, ``@handle@authority`` where it says (here, when
        that is ``own_authority``).  The mentions, as a post read back
        carries them.
        """
        found: list[tuple[Account, int, int]] = []
        for mention in entities.mentions(text):
            authority = author_authority if mention.authority is None else mention.authority
            authority = authority.lower()
            if authority == own_authority:
                authority = ""
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ?"
                ),
                (mention.handle.lower(), authority),
            )
            row = txn.fetchone()
            if row is not None:
                found.append((account_from_row(row), mention.start, mention.end))
                txn.execute(
                    self._q(
                        "INSERT INTO mentions (post_id, account_id, start_index, end_index)"
                        " VALUES (?, ?, ?, ?)"
                    ),
                    (post_id, row[0], mention.start, mention.end),
                )
        return found


__all__ = ["ID_EPOCH_MS", "ID_SEQUENCE_BITS", "PostsStore", "status_id_floor"]
