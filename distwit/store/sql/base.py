"""
What every area of the SQL store shares: the pool and the engine, running
an interaction in the pool's threads, and reading accounts and posts from
rows.

All SQL runs inside ``runInteraction``, in the pool's threads.  The
statements are written once, with ``?`` placeholders; the engine converts
them (:meth:`SQLBase._q`, cached per statement).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred

from distwit.model import POST, Account, Post, limit_source
from distwit.store.interfaces import NoSuchAccount
from distwit.store.schema import Engine

T = TypeVar("T")

ACCOUNT_COLUMNS = (
    "a.id, a.handle, a.authority, a.name, a.created_at, a.last_seq,"
    " a.statuses_count, a.followers_count, a.friends_count, a.home_url, a.synced_seq,"
    " a.description, a.location, a.url, a.favourites_count, a.profile_image, a.profile_seq"
)
POST_COLUMNS = (
    "p.id, p.seq, p.text, p.created_at, p.source, p.in_reply_to_status_id,"
    " p.deleted_at, ra.id, ra.handle, ra.authority, rp.seq, p.deletes_seq,"
    " p.favorite_count, p.kind, p.retweet_acct, p.retweet_seq, p.retweet_of_id,"
    " p.reply_acct, p.reply_seq, p.retweet_count, "
    + ACCOUNT_COLUMNS
)
#: Posts with their author, and the author of the post they reply to.
POSTS_FROM = (
    "posts p JOIN accounts a ON a.id = p.author_id"
    " LEFT JOIN posts rp ON rp.id = p.in_reply_to_status_id"
    " LEFT JOIN accounts ra ON ra.id = rp.author_id"
)


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


def account_from_row(row: Any, offset: int = 0) -> Account:
    """
    The :class:`Account` in ``row`` from ``offset`` on (``ACCOUNT_COLUMNS``).
    """
    r = row[offset:]
    return Account(
        id=r[0],
        handle=r[1],
        authority=r[2],
        name=r[3],
        created_at=r[4],
        last_seq=r[5],
        statuses_count=r[6],
        followers_count=r[7],
        friends_count=r[8],
        home_url=r[9],
        synced_seq=r[10],
        description=r[11],
        location=r[12],
        url=r[13],
        favourites_count=r[14],
        profile_image=r[15],
        profile_seq=r[16],
    )


def post_from_row(row: Any) -> Post:
    """
    The :class:`Post` in a row of ``POST_COLUMNS`` (without its mentions).
    """
    reply_screen_name = None
    reply_seq = row[10]
    if row[7] is not None:
        reply_screen_name = row[8] if not row[9] else f"{row[8]}@{row[9]}"
    elif row[17] is not None and row[6] is None:
        # The post replied to is not held here: its reference still is.
        reply_screen_name, reply_seq = row[17], row[18]
    return Post(
        id=row[0],
        seq=row[1],
        text=row[2],
        created_at=row[3],
        source=row[4],
        in_reply_to_status_id=row[5],
        deleted=row[6] is not None,
        in_reply_to_account_id=row[7],
        in_reply_to_screen_name=reply_screen_name,
        in_reply_to_seq=reply_seq,
        deletes_seq=row[11],
        favorite_count=row[12],
        kind=row[13],
        retweet_acct=row[14],
        retweet_seq=row[15],
        retweet_count=row[19],
        author=account_from_row(row, 20),
    )


#: The column of the original's status id in a row of ``POST_COLUMNS``.
_RETWEET_OF_ID = 16


def like_pattern(text: str) -> str:
    """
    A LIKE pattern (escape ``!``) matching ``text`` anywhere, any case.
    """
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class SQLBase:
    """
    The plumbing under every area of :class:`~distwit.store.sql.SQLStore`.

    :param pool: an ``adbapi.ConnectionPool`` (or anything with the same
        ``runInteraction`` and ``close``).
    :param engine: the engine object for that database
        (:mod:`distwit.store.engines`).
    """

    def __init__(self, pool: Any, engine: Engine) -> None:
        self._pool = pool
        self._engine = engine
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        """
        ``sql`` in the engine's placeholder style.
        """
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = self._engine.convert(sql)
        return converted

    def _insert_notice(self, txn: Any, target: str, kind: str, body: str, now: int) -> int:
        """
        Queue a notice in the outbox within ``txn`` (so that it is kept
        exactly when what it tells of is): its id.
        """
        txn.execute(
            self._q(
                "INSERT INTO outbox (target, kind, body, created_at, attempts, next_at,"
                " last_error) VALUES (?, ?, ?, ?, 0, ?, '') RETURNING id"
            ),
            (target, kind, body, now, now),
        )
        return int(txn.fetchone()[0])

    def _run(self, interaction: Callable[..., T], *args: Any) -> "Deferred[T]":
        """
        Run ``interaction(cursor, *args)`` in one transaction, in the pool.
        """
        return self._pool.runInteraction(interaction, *args)

    def close(self) -> "Deferred[None]":
        return maybeDeferred(self._pool.close)

    def wrap_pool(self, wrap: Callable[[Any], Any]) -> None:
        """
        Put ``wrap(pool)`` in the pool's place: something with the same
        ``runInteraction`` and ``close`` (metrics time transactions so).
        """
        self._pool = wrap(self._pool)

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
        kind: str = POST,
        retweet: "tuple[str, int, int | None] | None" = None,
        reply: "tuple[str, int] | None" = None,
    ) -> int:
        """
        Insert one numbered item.

        :param retweet: on a retweet, the original's acct, number and
            status id here (``None`` when not held).
        :param reply: on a reply, the screen name of the author replied to
            and the number of the post (kept when that post is not held).
        """
        if deleted_at is not None:
            # A tombstone keeps nothing but its number (see _tombstone).
            text, source, in_reply_to_status_id = "", "", None
            retweet = reply = None
        else:
            # Every field is bounded, whatever the caller checked.
            source = limit_source(source)
        if post_id is None:
            post_id = self._next_status_id(txn, created_at if stored_at is None else stored_at)
        txn.execute(
            self._q(
                "INSERT INTO posts (id, author_id, seq, text, created_at, source,"
                " in_reply_to_status_id, deleted_at, deletes_seq, kind, retweet_acct,"
                " retweet_seq, retweet_of_id, reply_acct, reply_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (post_id, author_id, seq, text, created_at, source, in_reply_to_status_id,
             deleted_at, deletes_seq, kind,
             None if retweet is None else retweet[0],
             None if retweet is None else retweet[1],
             None if retweet is None else retweet[2],
             None if reply is None else reply[0],
             None if reply is None else reply[1]),
        )
        return post_id

    # Reading rows, for every area

    def _get_account(self, txn: Any, account_id: int) -> Account:
        txn.execute(
            self._q(f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?"),
            (account_id,),
        )
        row = txn.fetchone()
        if row is None:
            raise NoSuchAccount(account_id)
        return account_from_row(row)

    def _get_post(self, txn: Any, post_id: int) -> Post | None:
        txn.execute(
            self._q(f"SELECT {POST_COLUMNS} FROM {POSTS_FROM} WHERE p.id = ?"),
            (post_id,),
        )
        row = txn.fetchone()
        return None if row is None else self._posts_from_rows(txn, [row])[0]

    def _posts_from_rows(self, txn: Any, rows: list[Any]) -> list[Post]:
        """
        The posts of rows of ``POST_COLUMNS``, complete: their mentions, and
        for a retweet the original when it is held (two queries at most).
        """
        posts = [post_from_row(row) for row in rows]
        originals = {
            row[_RETWEET_OF_ID] for row in rows
            if row[_RETWEET_OF_ID] is not None and row[6] is None
        }
        if originals:
            marks = ", ".join("?" for _ in originals)
            txn.execute(
                self._q(
                    f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                    f" WHERE p.id IN ({marks}) AND p.deleted_at IS NULL"
                ),
                list(originals),
            )
            found = {
                post.id: post
                for post in self._with_mentions(
                    txn, [post_from_row(row) for row in txn.fetchall()]
                )
            }
            posts = [
                replace(post, retweeted_status=found[row[_RETWEET_OF_ID]])
                if row[_RETWEET_OF_ID] in found and row[6] is None else post
                for post, row in zip(posts, rows)
            ]
        return self._with_mentions(txn, posts)

    def _with_mentions(self, txn: Any, posts: list[Post]) -> list[Post]:
        """
        ``posts`` with the accounts they mention, in one query.
        """
        if not posts:
            return posts
        ids = [post.id for post in posts]
        marks = ", ".join("?" for _ in ids)
        txn.execute(
            self._q(
                f"SELECT m.post_id, m.start_index, m.end_index, {ACCOUNT_COLUMNS}"
                f" FROM mentions m JOIN accounts a ON a.id = m.account_id"
                f" WHERE m.post_id IN ({marks}) ORDER BY m.post_id, m.start_index"
            ),
            ids,
        )
        found: dict[int, list[tuple[Account, int, int]]] = {}
        for row in txn.fetchall():
            found.setdefault(row[0], []).append((account_from_row(row, 3), row[1], row[2]))
        if not found:
            return posts
        return [
            replace(post, mentions=tuple(found[post.id])) if post.id in found else post
            for post in posts
        ]
