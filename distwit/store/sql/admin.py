"""
The operator's decisions: suspended and deleted accounts, locks of
sign-ins, blocked servers (``distwit user ...``, ``distwit server ...``;
docs/operating.md).  A running server reads them every second
(:meth:`AdminStore.moderation`), so the command reaches it through the
database.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import IAdminStore, Moderation, Standing
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row

_STANDING = (
    f"SELECT {ACCOUNT_COLUMNS}, a.suspended, a.removed_at,"
    " COALESCE(l.locked_until, 0), COALESCE(l.unlocked_at, 0)"
    " FROM accounts a JOIN local_users u ON u.account_id = a.id"
    " LEFT JOIN account_locks l ON l.account_id = a.id"
)


def _standing(row: Any) -> Standing:
    suspended, deleted_at, locked_until, unlocked_at = row[-4:]
    return Standing(
        account_from_row(row[:-4]), bool(suspended), int(locked_until), int(unlocked_at),
        None if deleted_at is None else int(deleted_at),
    )


@implementer(IAdminStore)
class AdminStore(SQLBase):
    """
    The admin part of :class:`~distwit.store.sql.SQLStore`.
    """

    def standings(self) -> "Deferred[list[Standing]]":
        def interaction(txn: Any) -> list[Standing]:
            txn.execute(self._q(_STANDING + " WHERE a.authority = '' ORDER BY a.id"))
            return [_standing(row) for row in txn.fetchall()]

        return self._run(interaction)

    def standing(self, handle: str) -> "Deferred[Standing | None]":
        def interaction(txn: Any) -> Standing | None:
            txn.execute(
                self._q(_STANDING + " WHERE a.handle_key = ? AND a.authority = ''"),
                (handle.lower(),),
            )
            row = txn.fetchone()
            return None if row is None else _standing(row)

        return self._run(interaction)

    def set_suspended(self, account_id: int, on: bool) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("UPDATE accounts SET suspended = ? WHERE id = ? AND suspended <> ?"),
                (int(on), account_id, int(on)),
            )
            return bool(txn.rowcount > 0)

        return self._run(interaction)

    def set_lock(
        self, account_id: int, locked_until: int, unlocked_at: int | None = None
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "INSERT INTO account_locks (account_id, locked_until, unlocked_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET"
                    " locked_until = excluded.locked_until,"
                    " unlocked_at = CASE WHEN excluded.unlocked_at > 0"
                    " THEN excluded.unlocked_at ELSE account_locks.unlocked_at END"
                ),
                (account_id, locked_until, unlocked_at or 0),
            )

        return self._run(interaction)

    def moderation(self) -> "Deferred[Moderation]":
        def interaction(txn: Any) -> Moderation:
            txn.execute(self._q("SELECT id, removed_at FROM accounts WHERE suspended = 1"))
            rows = txn.fetchall()
            suspended = frozenset(row[0] for row in rows)
            deleted = frozenset(row[0] for row in rows if row[1] is not None)
            txn.execute(
                self._q(
                    "SELECT a.handle_key, l.locked_until, l.unlocked_at FROM account_locks l"
                    " JOIN accounts a ON a.id = l.account_id"
                )
            )
            locks = {row[0]: (int(row[1]), int(row[2])) for row in txn.fetchall()}
            txn.execute(self._q("SELECT authority FROM blocked_servers"))
            blocked = frozenset(row[0] for row in txn.fetchall())
            return Moderation(suspended, locks, blocked, deleted)

        return self._run(interaction)

    def live_post_ids(self, account_id: int) -> "Deferred[list[int]]":
        def interaction(txn: Any) -> list[int]:
            txn.execute(
                self._q(
                    "SELECT id FROM posts WHERE author_id = ? AND deleted_at IS NULL"
                    " AND kind IN ('post', 'retweet') ORDER BY id"
                ),
                (account_id,),
            )
            return [row[0] for row in txn.fetchall()]

        return self._run(interaction)

    def remove_user(self, account_id: int, deleted_at: int) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            # Its follows of local users and every follow of it; its follows
            # of remote accounts stay for the running server to end with
            # their notices (Microblog.refresh_moderation).
            for mine, theirs, count_mine, count_theirs, only_local in (
                ("follower_id", "followee_id", "friends_count", "followers_count", True),
                ("followee_id", "follower_id", "followers_count", "friends_count", False),
            ):
                local = " AND a.authority = ''" if only_local else ""
                txn.execute(
                    self._q(
                        f"SELECT f.{theirs} FROM follows f JOIN accounts a ON a.id = f.{theirs}"
                        f" WHERE f.{mine} = ?{local}"
                    ),
                    (account_id,),
                )
                others = [row[0] for row in txn.fetchall()]
                for other in others:
                    txn.execute(
                        self._q(
                            f"UPDATE accounts SET {count_theirs} = {count_theirs} - 1"
                            " WHERE id = ?"
                        ),
                        (other,),
                    )
                    txn.execute(
                        self._q(f"DELETE FROM follows WHERE {mine} = ? AND {theirs} = ?"),
                        (account_id, other),
                    )
                txn.execute(
                    self._q(f"UPDATE accounts SET {count_mine} = {count_mine} - ? WHERE id = ?"),
                    (len(others), account_id),
                )
            txn.execute(self._q("DELETE FROM oauth_tokens WHERE account_id = ?"), (account_id,))
            txn.execute(self._q("DELETE FROM web_sessions WHERE account_id = ?"), (account_id,))
            txn.execute(
                self._q("UPDATE local_users SET password_hash = '' WHERE account_id = ?"),
                (account_id,),
            )
            txn.execute(
                self._q("UPDATE accounts SET suspended = 1, removed_at = ? WHERE id = ?"),
                (deleted_at, account_id),
            )

        return self._run(interaction)

    def block_server(self, authority: str, blocked_at: int, reason: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q(
                    "INSERT INTO blocked_servers (authority, blocked_at, reason)"
                    " VALUES (?, ?, ?) ON CONFLICT (authority) DO NOTHING"
                ),
                (authority.lower(), blocked_at, reason),
            )
            return bool(txn.rowcount > 0)

        return self._run(interaction)

    def unblock_server(self, authority: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM blocked_servers WHERE authority = ?"), (authority.lower(),)
            )
            return bool(txn.rowcount > 0)

        return self._run(interaction)

    def blocked_servers(self) -> "Deferred[list[tuple[str, int, str]]]":
        def interaction(txn: Any) -> list[tuple[str, int, str]]:
            txn.execute(
                self._q(
                    "SELECT authority, blocked_at, reason FROM blocked_servers"
                    " ORDER BY authority"
                )
            )
            return [(row[0], int(row[1]), row[2]) for row in txn.fetchall()]

        return self._run(interaction)
