"""
Web sessions: signed-in browsers, by the hash of their cookie.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import ISessionStore, SessionRecord
from distwit.store.sql.base import SQLBase


@implementer(ISessionStore)
class SessionsStore(SQLBase):
    """
    The sessions part of :class:`~distwit.store.sql.SQLStore`.
    """

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

    def get_session(self, session_hash: str, now: int) -> "Deferred[SessionRecord | None]":
        def interaction(txn: Any) -> SessionRecord | None:
            txn.execute(
                self._q(
                    "SELECT account_id, csrf_token, created_at FROM web_sessions"
                    " WHERE session_hash = ? AND expires_at > ?"
                ),
                (session_hash, now),
            )
            row = txn.fetchone()
            return None if row is None else SessionRecord(row[0], row[1], int(row[2]))

        return self._run(interaction)

    def delete_session(self, session_hash: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("DELETE FROM web_sessions WHERE session_hash = ?"), (session_hash,)
            )

        return self._run(interaction)

    def delete_sessions_of(self, account_id: int, keep: str | None) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "DELETE FROM web_sessions WHERE account_id = ? AND session_hash <> ?"
                ),
                (account_id, keep or ""),
            )

        return self._run(interaction)
