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

from distwit.model import Account, Post
from distwit.store.interfaces import NoSuchAccount
from distwit.store.schema import Engine

T = TypeVar("T")

ACCOUNT_COLUMNS = (
    "a.id, a.handle, a.authority, a.name, a.created_at, a.last_seq,"
    " a.statuses_count, a.followers_count, a.friends_count, a.home_url, a.synced_seq,"
    " a.description, a.location, a.url, a.favourites_count"
)
POST_COLUMNS = (
    "p.id, p.seq, p.text, p.created_at, p.source, p.in_reply_to_status_id,"
    " p.deleted_at, ra.id, ra.handle, ra.authority, rp.seq, p.deletes_seq,"
    " p.favorite_count, "
    + ACCOUNT_COLUMNS
)
#: Posts with their author, and the author of the post they reply to.
POSTS_FROM = (
    "posts p JOIN accounts a ON a.id = p.author_id"
    " LEFT JOIN posts rp ON rp.id = p.in_reply_to_status_id"
    " LEFT JOIN accounts ra ON ra.id = rp.author_id"
)


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
    )


def post_from_row(row: Any) -> Post:
    """
    The :class:`Post` in a row of ``POST_COLUMNS`` (without its mentions).
    """
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
        author=account_from_row(row, 13),
    )


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

    def _run(self, interaction: Callable[..., T], *args: Any) -> "Deferred[T]":
        """
        Run ``interaction(cursor, *args)`` in one transaction, in the pool.
        """
        return self._pool.runInteraction(interaction, *args)

    def close(self) -> "Deferred[None]":
        return maybeDeferred(self._pool.close)

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
        return None if row is None else self._with_mentions(txn, [post_from_row(row)])[0]

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
