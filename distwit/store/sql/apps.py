"""
OAuth 1.0a: client apps, their request and access tokens, and the nonces
that stop replays.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from distwit.store.interfaces import AccessTokenSummary, AppRecord, IAppStore, TokenRecord
from distwit.store.sql.base import SQLBase

_APP_COLUMNS = "id, consumer_key, consumer_secret, name, owner_id, callback"


class _NonceSeen(Exception):
    """
    A concurrent transaction recorded the same nonce first.
    """


@implementer(IAppStore)
class AppsStore(SQLBase):
    """
    The apps part of :class:`~distwit.store.sql.SQLStore`.
    """

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

    def get_app(self, consumer_key: str) -> "Deferred[AppRecord | None]":
        def interaction(txn: Any) -> AppRecord | None:
            txn.execute(
                self._q(f"SELECT {_APP_COLUMNS} FROM oauth_apps WHERE consumer_key = ?"),
                (consumer_key,),
            )
            row = txn.fetchone()
            return None if row is None else AppRecord(*row)

        return self._run(interaction)

    def apps_of(self, owner_id: int) -> "Deferred[list[AppRecord]]":
        def interaction(txn: Any) -> list[AppRecord]:
            txn.execute(
                self._q(f"SELECT {_APP_COLUMNS} FROM oauth_apps WHERE owner_id = ? ORDER BY id"),
                (owner_id,),
            )
            return [AppRecord(*row) for row in txn.fetchall()]

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

    def get_token(self, token: str) -> "Deferred[TokenRecord | None]":
        def interaction(txn: Any) -> TokenRecord | None:
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
            return None if row is None else TokenRecord(*row)

        return self._run(interaction)

    def tokens_of(self, account_id: int) -> "Deferred[list[AccessTokenSummary]]":
        def interaction(txn: Any) -> list[AccessTokenSummary]:
            txn.execute(
                self._q(
                    "SELECT t.token, t.created_at, a.name FROM oauth_tokens t"
                    " JOIN oauth_apps a ON a.id = t.app_id"
                    " WHERE t.account_id = ? AND t.kind = 'access' ORDER BY t.created_at"
                ),
                (account_id,),
            )
            return [AccessTokenSummary(*row) for row in txn.fetchall()]

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

    def use_nonce(
        self, consumer_key: str, token: str, nonce: str, timestamp: int, forget_before: int
    ) -> "Deferred[bool]":
        """
        Record a nonce; ``False`` if it was seen before (a replay).

        Replays sent at once may all pass the SELECT; the one whose INSERT
        meets the other's row (the engine's unique violation) has seen it
        too. That transaction is rolled back (on PostgreSQL it can do
        nothing more), hence :class:`_NonceSeen` out of it.
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
            try:
                txn.execute(
                    self._q(
                        "INSERT INTO oauth_nonces (consumer_key, token, nonce, timestamp)"
                        " VALUES (?, ?, ?, ?)"
                    ),
                    (consumer_key, token, nonce, timestamp),
                )
            except Exception as e:
                if self._engine.is_unique_violation(e):
                    raise _NonceSeen() from None
                raise
            return True

        def seen(failure: Failure) -> bool:
            failure.trap(_NonceSeen)
            return False

        return self._run(interaction).addErrback(seen)

    def record_nonces(self, nonces: list[tuple[str, str, str, int]], forget_before: int
                      ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("DELETE FROM oauth_nonces WHERE timestamp < ?"), (forget_before,)
            )
            txn.executemany(
                self._q(
                    "INSERT INTO oauth_nonces (consumer_key, token, nonce, timestamp)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                nonces,
            )

        return self._run(interaction)

    def recent_nonces(self, since: int) -> "Deferred[list[tuple[str, str, str, int]]]":
        def interaction(txn: Any) -> list[tuple[str, str, str, int]]:
            txn.execute(
                self._q(
                    "SELECT consumer_key, token, nonce, timestamp FROM oauth_nonces"
                    " WHERE timestamp >= ?"
                ),
                (since,),
            )
            return [(row[0], row[1], row[2], int(row[3])) for row in txn.fetchall()]

        return self._run(interaction)
