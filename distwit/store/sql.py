"""
:class:`SQLStore`, the one implementation of :class:`IStore`, over either
engine; and :func:`engine_for`, which picks the engine from a URL.

All SQL runs inside ``runInteraction``, in the pool's threads.  The
statements are written once, with ``?`` placeholders; the engine module
converts them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit import entities
from distwit.model import MAX_STATUS_ID, Account, Post
from distwit.store.interfaces import (
    DuplicatePost,
    HandleTaken,
    IStore,
    NoSuchAccount,
)
from distwit.store.engines.postgres import PostgresEngine
from distwit.store.schema import Engine
from distwit.store.engines.sqlite import SQLiteEngine

T = TypeVar("T")

#: The epoch of status ids (Twitter's, so ids look like Twitter's).
ID_EPOCH_MS = 1288834974657
#: Low bits of a status id left for posts within the same millisecond.
ID_SEQUENCE_BITS = 22


class DatabaseURLError(ValueError):
    """
    The database setting names no engine distwit knows.
    """


def engine_for(database: str, data_dir: str) -> Engine:
    """
    The engine for a ``--database`` setting.

    - empty: SQLite file ``distwit.sqlite3`` in the data folder;
    - ``sqlite:PATH`` or ``sqlite:///PATH``: that SQLite file (relative
      paths are taken from the data folder);
    - ``postgresql://...`` or ``postgres://...``: PostgreSQL.
    """
    if not database:
        return SQLiteEngine(os.path.join(data_dir, "distwit.sqlite3"))
    if database.startswith(("postgresql://", "postgres://")):
        return PostgresEngine(database)
    if database.startswith("sqlite:"):
        path = database[len("sqlite:") :]
        if path.startswith("///"):
            path = path[2:]
        elif path.startswith("//"):
            path = path[2:]
        if not path:
            raise DatabaseURLError("sqlite: needs a file name, as in sqlite:distwit.sqlite3")
        return SQLiteEngine(os.path.join(data_dir, path))
    raise DatabaseURLError(
        f"unknown database {database!r}: use sqlite:PATH or postgresql://USER@HOST/NAME"
    )


def status_id_floor(now_ms: int) -> int:
    """
    The smallest status id for a post stored at ``now_ms``: time in the
    high bits, so ids sort by time like Twitter's.
    """
    return max(now_ms - ID_EPOCH_MS, 0) << ID_SEQUENCE_BITS


_ACCOUNT_COLUMNS = (
    "a.id, a.handle, a.authority, a.name, a.created_at, a.last_seq,"
    " a.statuses_count, a.followers_count, a.friends_count, a.home_url, a.synced_seq,"
    " a.description, a.location, a.url, a.favourites_count"
)
_POST_COLUMNS = (
    "p.id, p.seq, p.text, p.created_at, p.source, p.in_reply_to_status_id,"
    " p.deleted_at, ra.id, ra.handle, ra.authority, rp.seq, p.deletes_seq,"
    " p.favorite_count, "
    + _ACCOUNT_COLUMNS
)
#: Posts with their author, and the author of the post they reply to.
_POSTS_FROM = (
    "posts p JOIN accounts a ON a.id = p.author_id"
    " LEFT JOIN posts rp ON rp.id = p.in_reply_to_status_id"
    " LEFT JOIN accounts ra ON ra.id = rp.author_id"
)


def _account(row: Any, offset: int = 0) -> Account:
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
    )


def _post(row: Any) -> Post:
    reply_screen_name = None
    if row[7] is not None:
        reply_screen_name = row[8] if not row[9] else f"{row[8]}@{row[9]}"
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
        in_reply_to_seq=row[10],
        deletes_seq=row[11],
        favorite_count=row[12],
        author=_account(row, 13),
    )


#: From how many followees on a home timeline walks the posts newest first
#: (see :meth:`SQLStore.home_timeline`).
WALK_FROM_FOLLOWING = 20


def _like_pattern(text: str) -> str:
    """
    A LIKE pattern (escape ``!``) matching ``text`` anywhere, any case.
    """
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


@implementer(IStore)
class SQLStore:
    """
    The twitter role's data in SQLite or PostgreSQL.

    :param pool: an ``adbapi.ConnectionPool`` (or anything with the same
        ``runInteraction`` and ``close``).
    :param engine: the engine module's object for that database.
    """

    def __init__(self, pool: Any, engine: Engine) -> None:
        self._pool = pool
        self._engine = engine
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = self._engine.convert(sql)
        return converted

    def _run(self, interaction: Callable[..., T], *args: Any) -> "Deferred[T]":
        return self._pool.runInteraction(interaction, *args)

    # Accounts

    def create_user(
        self, handle: str, name: str, password_hash: str, created_at: int
    ) -> "Deferred[Account]":
        def interaction(txn: Any) -> Account:
            key = handle.lower()
            txn.execute(
                self._q("SELECT 1 FROM accounts WHERE handle_key = ? AND authority = ''"),
                (key,),
            )
            if txn.fetchone() is not None:
                raise HandleTaken(handle)
            try:
                txn.execute(
                    self._q(
                        "INSERT INTO accounts (handle, handle_key, authority, name,"
                        " created_at) VALUES (?, ?, '', ?, ?) RETURNING id"
                    ),
                    (handle, key, name or handle, created_at),
                )
            except Exception as e:
                if self._engine.is_unique_violation(e):
                    raise HandleTaken(handle) from None
                raise
            (account_id,) = txn.fetchone()
            txn.execute(
                self._q("INSERT INTO local_users (account_id, password_hash) VALUES (?, ?)"),
                (account_id, password_hash),
            )
            return self._get_account(txn, account_id)

        return self._run(interaction)

    def _get_account(self, txn: Any, account_id: int) -> Account:
        txn.execute(
            self._q(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?"),
            (account_id,),
        )
        row = txn.fetchone()
        if row is None:
            raise NoSuchAccount(account_id)
        return _account(row)

    def ensure_account(
        self, handle: str, authority: str, created_at: int
    ) -> "Deferred[Account]":
        def interaction(txn: Any) -> Account:
            key = handle.lower()
            txn.execute(
                self._q(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ?"
                ),
                (key, authority),
            )
            row = txn.fetchone()
            if row is not None:
                return _account(row)
            if not authority:
                raise NoSuchAccount(handle)
            txn.execute(
                self._q(
                    "INSERT INTO accounts (handle, handle_key, authority, name,"
                    " created_at) VALUES (?, ?, ?, ?, ?) RETURNING id"
                ),
                (handle, key, authority, handle, created_at),
            )
            (account_id,) = txn.fetchone()
            return self._get_account(txn, account_id)

        return self._run(interaction)

    def get_account(self, account_id: int) -> "Deferred[Account | None]":
        def interaction(txn: Any) -> Account | None:
            try:
                return self._get_account(txn, account_id)
            except NoSuchAccount:
                return None

        return self._run(interaction)

    def get_local_user(self, handle: str) -> "Deferred[Account | None]":
        def interaction(txn: Any) -> Account | None:
            txn.execute(
                self._q(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ''"
                ),
                (handle.lower(),),
            )
            row = txn.fetchone()
            return None if row is None else _account(row)

        return self._run(interaction)

    def get_login(self, handle: str) -> "Deferred[tuple[Account, str] | None]":
        def interaction(txn: Any) -> tuple[Account, str] | None:
            txn.execute(
                self._q(
                    f"SELECT {_ACCOUNT_COLUMNS}, u.password_hash FROM accounts a"
                    " JOIN local_users u ON u.account_id = a.id"
                    " WHERE a.handle_key = ? AND a.authority = ''"
                ),
                (handle.lower(),),
            )
            row = txn.fetchone()
            return None if row is None else (_account(row), row[-1])

        return self._run(interaction)

    def get_password_hash(self, account_id: int) -> "Deferred[str | None]":
        def interaction(txn: Any) -> str | None:
            txn.execute(
                self._q("SELECT password_hash FROM local_users WHERE account_id = ?"),
                (account_id,),
            )
            row = txn.fetchone()
            return None if row is None else row[0]

        return self._run(interaction)

    def set_password_hash(self, account_id: int, password_hash: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("UPDATE local_users SET password_hash = ? WHERE account_id = ?"),
                (password_hash, account_id),
            )

        return self._run(interaction)

    # Posts

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

    def _get_post(self, txn: Any, post_id: int) -> Post | None:
        txn.execute(
            self._q(
                f"SELECT {_POST_COLUMNS} FROM {_POSTS_FROM} WHERE p.id = ?"
            ),
            (post_id,),
        )
        row = txn.fetchone()
        return None if row is None else self._with_mentions(txn, [_post(row)])[0]

    def get_post(self, post_id: int) -> "Deferred[Post | None]":
        return self._run(self._get_post, post_id)

    def latest_post(self, account_id: int) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            txn.execute(
                self._q(
                    f"SELECT {_POST_COLUMNS} FROM {_POSTS_FROM}"
                    " WHERE p.author_id = ? AND p.deleted_at IS NULL"
                    " ORDER BY p.id DESC LIMIT 1"
                ),
                (account_id,),
            )
            row = txn.fetchone()
            return None if row is None else self._with_mentions(txn, [_post(row)])[0]

        return self._run(interaction)

    def delete_post(self, post_id: int, deleted_at: int) -> "Deferred[Post | None]":
        def interaction(txn: Any) -> Post | None:
            post = self._get_post(txn, post_id)
            if post is None or post.deleted:
                return None
            txn.execute(
                self._q(
                    "UPDATE posts SET deleted_at = ?, text = '' WHERE id = ?"
                    " AND deleted_at IS NULL"
                ),
                (deleted_at, post_id),
            )
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
                    txn, post.author.id, seq, "", deleted_at, "web", None, deleted_at,
                    post.seq,
                )
            return post

        return self._run(interaction)

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
                f"SELECT m.post_id, m.start_index, m.end_index, {_ACCOUNT_COLUMNS}"
                f" FROM mentions m JOIN accounts a ON a.id = m.account_id"
                f" WHERE m.post_id IN ({marks}) ORDER BY m.post_id, m.start_index"
            ),
            ids,
        )
        found: dict[int, list[tuple[Account, int, int]]] = {}
        for row in txn.fetchall():
            found.setdefault(row[0], []).append((_account(row, 3), row[1], row[2]))
        if not found:
            return posts
        return [
            replace(post, mentions=tuple(found[post.id])) if post.id in found else post
            for post in posts
        ]

    # Follows

    def follow(
        self, follower_id: int, followee_id: int, created_at: int
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
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

    def unfollow(self, follower_id: int, followee_id: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?"),
                (follower_id, followee_id),
            )
            if txn.rowcount < 1:
                return False
            self._adjust_follow_counts(txn, follower_id, followee_id, -1)
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

    # Timelines

    def _timeline(
        self, where: str, args: tuple[Any, ...], count: int, since_id: int, max_id: int
    ) -> "Deferred[list[Post]]":
        sql = self._q(
            f"SELECT {_POST_COLUMNS} FROM {_POSTS_FROM}"
            f" WHERE p.deleted_at IS NULL AND ({where}) AND p.id > ? AND p.id <= ?"
            " ORDER BY p.id DESC LIMIT ?"
        )

        def interaction(txn: Any) -> list[Post]:
            txn.execute(sql, args + (since_id or 0, max_id or MAX_STATUS_ID, count))
            return self._with_mentions(txn, [_post(row) for row in txn.fetchall()])

        return self._run(interaction)

    def home_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        # Two plans.  Following few: collect the followees' posts through
        # the (author_id, id) index and sort them.  Following many (where
        # that means sorting most of the table): walk the posts newest
        # first and keep those of followees, stopping at ``count``.  SQLite
        # takes the first unless told; "+" on the column keeps it off the
        # index.  (PostgreSQL's planner weighs the two itself.)
        index_plan = self._q(
            f"SELECT {_POST_COLUMNS} FROM {_POSTS_FROM}"
            " WHERE p.deleted_at IS NULL AND (p.author_id = ? OR p.author_id IN"
            " (SELECT followee_id FROM follows WHERE follower_id = ?))"
            " AND p.id > ? AND p.id <= ? ORDER BY p.id DESC LIMIT ?"
        )
        scan_plan = index_plan.replace(
            "(p.author_id = ? OR p.author_id IN", "(+p.author_id = ? OR +p.author_id IN"
        )
        args = (account_id, account_id, since_id or 0, max_id or MAX_STATUS_ID, count)

        def interaction(txn: Any) -> list[Post]:
            sql = index_plan
            if self._engine.walk_newest_first:
                txn.execute(self._q("SELECT friends_count FROM accounts WHERE id = ?"),
                            (account_id,))
                row = txn.fetchone()
                if row is not None and row[0] >= WALK_FROM_FOLLOWING:
                    sql = scan_plan
            txn.execute(sql, args)
            return self._with_mentions(txn, [_post(row) for row in txn.fetchall()])

        return self._run(interaction)

    def user_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.author_id = ?", (account_id,), count, since_id or 0, max_id or MAX_STATUS_ID
        )

    def public_timeline(
        self, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "a.authority = ''", (), count, since_id or 0, max_id or MAX_STATUS_ID
        )

    def mentions_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.id IN (SELECT post_id FROM mentions WHERE account_id = ?)",
            (account_id,),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
        )

    def search_posts(
        self, query: str, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "LOWER(p.text) LIKE ? ESCAPE '!'",
            (_like_pattern(query),),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
        )

    # Favorites

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

    def favorited_among(self, account_id: int, post_ids: "list[int]") -> "Deferred[set[int]]":
        def interaction(txn: Any) -> set[int]:
            if not post_ids:
                return set()
            marks = ", ".join("?" for _ in post_ids)
            txn.execute(
                self._q(
                    f"SELECT post_id FROM favorites WHERE account_id = ?"
                    f" AND post_id IN ({marks})"
                ),
                [account_id, *post_ids],
            )
            return {row[0] for row in txn.fetchall()}

        return self._run(interaction)

    def favorites_timeline(
        self, account_id: int, count: int, since_id: int | None, max_id: int | None
    ) -> "Deferred[list[Post]]":
        return self._timeline(
            "p.id IN (SELECT post_id FROM favorites WHERE account_id = ?)",
            (account_id,),
            count,
            since_id or 0,
            max_id or MAX_STATUS_ID,
        )

    # OAuth

    def create_app(
        self, consumer_key: str, consumer_secret: str, name: str, owner_id: int,
        callback: str, created_at: int,
    ) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(
                self._q(
                    "INSERT INTO oauth_apps (consumer_key, consumer_secret, name, owner_id,"
                    " callback, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
                ),
                (consumer_key, consumer_secret, name, owner_id, callback, created_at),
            )
            return int(txn.fetchone()[0])

        return self._run(interaction)

    def get_app(self, consumer_key: str) -> "Deferred[dict[str, Any] | None]":
        def interaction(txn: Any) -> dict[str, Any] | None:
            txn.execute(
                self._q(
                    "SELECT id, consumer_key, consumer_secret, name, owner_id, callback"
                    " FROM oauth_apps WHERE consumer_key = ?"
                ),
                (consumer_key,),
            )
            row = txn.fetchone()
            if row is None:
                return None
            keys = ("id", "consumer_key", "consumer_secret", "name", "owner_id", "callback")
            return dict(zip(keys, row))

        return self._run(interaction)

    def apps_of(self, owner_id: int) -> "Deferred[list[dict[str, Any]]]":
        def interaction(txn: Any) -> list[dict[str, Any]]:
            txn.execute(
                self._q(
                    "SELECT id, consumer_key, consumer_secret, name, owner_id, callback"
                    " FROM oauth_apps WHERE owner_id = ? ORDER BY id"
                ),
                (owner_id,),
            )
            keys = ("id", "consumer_key", "consumer_secret", "name", "owner_id", "callback")
            return [dict(zip(keys, row)) for row in txn.fetchall()]

        return self._run(interaction)

    def create_token(
        self, token: str, secret: str, kind: str, app_id: int, account_id: int | None,
        callback: str, created_at: int, expires_at: int | None,
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO oauth_tokens (token, secret, kind, app_id, account_id,"
                    " callback, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (token, secret, kind, app_id, account_id, callback, created_at, expires_at),
            )

        return self._run(interaction)

    def get_token(self, token: str) -> "Deferred[dict[str, Any] | None]":
        def interaction(txn: Any) -> dict[str, Any] | None:
            txn.execute(
                self._q(
                    "SELECT t.token, t.secret, t.kind, t.app_id, t.account_id, t.callback,"
                    " t.verifier, t.created_at, t.expires_at, a.name, a.consumer_key"
                    " FROM oauth_tokens t JOIN oauth_apps a ON a.id = t.app_id"
                    " WHERE t.token = ?"
                ),
                (token,),
            )
            row = txn.fetchone()
            if row is None:
                return None
            keys = ("token", "secret", "kind", "app_id", "account_id", "callback",
                    "verifier", "created_at", "expires_at", "app_name", "consumer_key")
            return dict(zip(keys, row))

        return self._run(interaction)

    def tokens_of(self, account_id: int) -> "Deferred[list[dict[str, Any]]]":
        def interaction(txn: Any) -> list[dict[str, Any]]:
            txn.execute(
                self._q(
                    "SELECT t.token, t.created_at, a.name FROM oauth_tokens t"
                    " JOIN oauth_apps a ON a.id = t.app_id"
                    " WHERE t.account_id = ? AND t.kind = 'access' ORDER BY t.created_at"
                ),
                (account_id,),
            )
            return [
                {"token": row[0], "created_at": row[1], "app_name": row[2]}
                for row in txn.fetchall()
            ]

        return self._run(interaction)

    def approve_token(self, token: str, account_id: int, verifier: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q(
                    "UPDATE oauth_tokens SET account_id = ?, verifier = ?"
                    " WHERE token = ? AND kind = 'request' AND account_id IS NULL"
                ),
                (account_id, verifier, token),
            )
            return bool(txn.rowcount == 1)

        return self._run(interaction)

    def delete_token(self, token: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(self._q("DELETE FROM oauth_tokens WHERE token = ?"), (token,))
            return bool(txn.rowcount == 1)

        return self._run(interaction)

    # OpenID Connect

    def create_oidc_client(
        self, client_id: str, client_secret: str, metadata: str, issued_at: int
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO oidc_clients (client_id, client_secret, metadata, issued_at)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (client_id, client_secret, metadata, issued_at),
            )

        return self._run(interaction)

    def get_oidc_client(self, client_id: str) -> "Deferred[dict[str, Any] | None]":
        def interaction(txn: Any) -> dict[str, Any] | None:
            txn.execute(
                self._q(
                    "SELECT client_id, client_secret, metadata, issued_at"
                    " FROM oidc_clients WHERE client_id = ?"
                ),
                (client_id,),
            )
            row = txn.fetchone()
            if row is None:
                return None
            return dict(zip(("client_id", "client_secret", "metadata", "issued_at"), row))

        return self._run(interaction)

    def get_oidc_registration(self, issuer: str) -> "Deferred[str | None]":
        def interaction(txn: Any) -> str | None:
            txn.execute(
                self._q("SELECT info FROM oidc_registrations WHERE issuer = ?"), (issuer,)
            )
            row = txn.fetchone()
            return None if row is None else str(row[0])

        return self._run(interaction)

    def put_oidc_registration(self, issuer: str, info: str, now: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO oidc_registrations (issuer, info, registered_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (issuer) DO UPDATE"
                    " SET info = excluded.info, registered_at = excluded.registered_at"
                ),
                (issuer, info, now),
            )

        return self._run(interaction)

    def record_oidc_grant(self, account_id: int, client_id: str, now: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO oidc_grants (account_id, client_id, first_at, last_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (account_id, client_id) DO UPDATE"
                    " SET last_at = excluded.last_at"
                ),
                (account_id, client_id, now, now),
            )

        return self._run(interaction)

    def oidc_grants_of(self, account_id: int) -> "Deferred[list[dict[str, Any]]]":
        def interaction(txn: Any) -> list[dict[str, Any]]:
            txn.execute(
                self._q(
                    "SELECT g.client_id, c.metadata, g.first_at, g.last_at"
                    " FROM oidc_grants g JOIN oidc_clients c ON c.client_id = g.client_id"
                    " WHERE g.account_id = ? ORDER BY g.last_at DESC"
                ),
                (account_id,),
            )
            keys = ("client_id", "metadata", "first_at", "last_at")
            return [dict(zip(keys, row)) for row in txn.fetchall()]

        return self._run(interaction)

    def delete_oidc_grant(self, account_id: int, client_id: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM oidc_grants WHERE account_id = ? AND client_id = ?"),
                (account_id, client_id),
            )
            return bool(txn.rowcount == 1)

        return self._run(interaction)

    def use_nonce(
        self, consumer_key: str, token: str, nonce: str, timestamp: int, forget_before: int
    ) -> "Deferred[bool]":
        """
        Record a nonce; ``False`` if it was seen before (a replay).
        """

        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM oauth_nonces WHERE timestamp < ?"), (forget_before,)
            )
            txn.execute(
                self._q(
                    "SELECT 1 FROM oauth_nonces WHERE consumer_key = ? AND token = ?"
                    " AND nonce = ? AND timestamp = ?"
                ),
                (consumer_key, token, nonce, timestamp),
            )
            if txn.fetchone() is not None:
                return False
            txn.execute(
                self._q(
                    "INSERT INTO oauth_nonces (consumer_key, token, nonce, timestamp)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (consumer_key, token, nonce, timestamp),
            )
            return True

        return self._run(interaction)

    # Who follows whom, in pages

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
                    f"SELECT {_ACCOUNT_COLUMNS} FROM follows f JOIN accounts a"
                    f" ON a.id = f.{theirs} WHERE f.{mine} = ? AND a.id < ?"
                    " ORDER BY a.id DESC LIMIT ?"
                ),
                (account_id, before if before is not None else 2**63 - 1, count),
            )
            return [_account(row) for row in txn.fetchall()]

        return self._run(interaction)

    def search_accounts(self, query: str, count: int, offset: int) -> "Deferred[list[Account]]":
        pattern = _like_pattern(query)

        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key LIKE ? ESCAPE '!' OR LOWER(a.name) LIKE ? ESCAPE '!'"
                    " ORDER BY a.authority <> '', a.followers_count DESC, a.id"
                    " LIMIT ? OFFSET ?"
                ),
                (pattern, pattern, count, offset),
            )
            return [_account(row) for row in txn.fetchall()]

        return self._run(interaction)

    def update_profile(
        self, account_id: int, name: str, description: str, location: str, url: str
    ) -> "Deferred[Account]":
        def interaction(txn: Any) -> Account:
            txn.execute(
                self._q(
                    "UPDATE accounts SET name = ?, description = ?, location = ?, url = ?"
                    " WHERE id = ? AND authority = ''"
                ),
                (name, description, location, url, account_id),
            )
            return self._get_account(txn, account_id)

        return self._run(interaction)

    # Federation

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
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ?"
                ),
                (handle.lower(), authority),
            )
            row = txn.fetchone()
            return None if row is None else _account(row)

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
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.authority <> ''"
                    " AND a.synced_seq < a.last_seq AND a.home_url <> ''"
                    " ORDER BY a.id LIMIT ?"
                ),
                (limit,),
            )
            return [_account(row) for row in txn.fetchall()]

        return self._run(interaction)

    def range_posts(self, account_id: int, first: int, last: int) -> "Deferred[list[Post]]":
        def interaction(txn: Any) -> list[Post]:
            txn.execute(
                self._q(
                    f"SELECT {_POST_COLUMNS} FROM {_POSTS_FROM}"
                    " WHERE p.author_id = ? AND p.seq >= ? AND p.seq <= ? ORDER BY p.seq"
                ),
                (account_id, first, last),
            )
            return self._with_mentions(txn, [_post(row) for row in txn.fetchall()])

        return self._run(interaction)

    def store_remote_items(
        self,
        account_id: int,
        first: int,
        last: int,
        items: "list[Any]",
        own_authority: str,
        stored_at: int,
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

    def _tombstone(self, txn: Any, post_id: int, deleted_at: int) -> None:
        txn.execute(
            self._q(
                "UPDATE posts SET deleted_at = ?, text = '' WHERE id = ? AND deleted_at IS NULL"
            ),
            (deleted_at, post_id),
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

    def followers(self, account_id: int) -> "Deferred[list[Account]]":
        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM follows f JOIN accounts a"
                    " ON a.id = f.follower_id WHERE f.followee_id = ? ORDER BY f.created_at"
                ),
                (account_id,),
            )
            return [_account(row) for row in txn.fetchall()]

        return self._run(interaction)

    # Web sessions

    def create_session(
        self,
        session_hash: str,
        account_id: int,
        csrf_token: str,
        created_at: int,
        expires_at: int,
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(self._q("DELETE FROM web_sessions WHERE expires_at < ?"), (created_at,))
            txn.execute(
                self._q(
                    "INSERT INTO web_sessions (session_hash, account_id, csrf_token,"
                    " created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
                ),
                (session_hash, account_id, csrf_token, created_at, expires_at),
            )

        return self._run(interaction)

    def get_session(
        self, session_hash: str, now: int
    ) -> "Deferred[tuple[int, str, int] | None]":
        def interaction(txn: Any) -> tuple[int, str, int] | None:
            txn.execute(
                self._q(
                    "SELECT account_id, csrf_token, created_at FROM web_sessions"
                    " WHERE session_hash = ? AND expires_at > ?"
                ),
                (session_hash, now),
            )
            row = txn.fetchone()
            return None if row is None else (row[0], row[1], int(row[2]))

        return self._run(interaction)

    def delete_session(self, session_hash: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("DELETE FROM web_sessions WHERE session_hash = ?"), (session_hash,)
            )

        return self._run(interaction)

    def close(self) -> "Deferred[None]":
        from twisted.internet.defer import maybeDeferred

        return maybeDeferred(self._pool.close)


def open_store(engine: Engine, reactor: Any) -> SQLStore:
    """
    Bring the schema up to date (synchronously: call this before the reactor
    runs or from a thread) and return a store on a new connection pool.
    """
    from distwit.store.schema import prepare_database

    prepare_database(engine)
    return SQLStore(engine.make_pool(reactor), engine)
