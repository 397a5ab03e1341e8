"""
Password-reset links sent by e-mail, by the hash of their token.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import IPasswordResetStore, PasswordResetRecord
from distwit.store.sql.base import SQLBase

#: Expired links are kept this long (ms) before they are forgotten, so
#: that a late click is told "expired".
KEEP_EXPIRED_MS = 24 * 3600 * 1000

_COLUMNS = "account_id, address, created_at, expires_at, used_at"


def _record(row: Any) -> PasswordResetRecord:
    return PasswordResetRecord(
        int(row[0]), row[1], int(row[2]), int(row[3]),
        None if row[4] is None else int(row[4]),
    )


@implementer(IPasswordResetStore)
class PasswordResetsStore(SQLBase):
    """
    The password-reset part of :class:`~distwit.store.sql.SQLStore`.
    """

    def create_password_reset(
        self,
        token_hash: str,
        account_id: int,
        address: str,
        created_at: int,
        expires_at: int,
        recent_since: int,
        at_most: int,
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM password_resets WHERE expires_at < ?"),
                (created_at - KEEP_EXPIRED_MS,),
            )
            txn.execute(
                self._q(
                    "SELECT COUNT(*) FROM password_resets"
                    " WHERE address = ? AND created_at >= ?"
                ),
                (address, recent_since),
            )
            if int(txn.fetchone()[0]) >= at_most:
                return False
            txn.execute(
                self._q(
                    "INSERT INTO password_resets (token_hash, account_id, address,"
                    " created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
                ),
                (token_hash, account_id, address, created_at, expires_at),
            )
            return True

        return self._run(interaction)

    def password_reset(self, token_hash: str) -> "Deferred[PasswordResetRecord | None]":
        def interaction(txn: Any) -> PasswordResetRecord | None:
            txn.execute(
                self._q(f"SELECT {_COLUMNS} FROM password_resets WHERE token_hash = ?"),
                (token_hash,),
            )
            row = txn.fetchone()
            return None if row is None else _record(row)

        return self._run(interaction)

    def use_password_reset(
        self, token_hash: str, now: int
    ) -> "Deferred[PasswordResetRecord | None]":
        def interaction(txn: Any) -> PasswordResetRecord | None:
            # The conditional UPDATE is the claim: of two requests with one
            # link, only one changes the row.
            txn.execute(
                self._q(
                    "UPDATE password_resets SET used_at = ?"
                    " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
                ),
                (now, token_hash, now),
            )
            if txn.rowcount != 1:
                return None
            txn.execute(
                self._q(f"SELECT {_COLUMNS} FROM password_resets WHERE token_hash = ?"),
                (token_hash,),
            )
            found = _record(txn.fetchone())
            txn.execute(
                self._q(
                    "UPDATE password_resets SET used_at = ?"
                    " WHERE account_id = ? AND used_at IS NULL"
                ),
                (now, found.account_id),
            )
            return PasswordResetRecord(
                found.account_id, found.address, found.created_at, found.expires_at, None
            )

        return self._run(interaction)
