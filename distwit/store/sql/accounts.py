"""
Accounts: local users and their logins, the accounts known of other servers,
profiles and account search.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Account
from distwit.store.interfaces import HandleTaken, IAccountStore, NoSuchAccount
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row, like_pattern


@implementer(IAccountStore)
class AccountsStore(SQLBase):
    """
    The accounts part of :class:`~distwit.store.sql.SQLStore`.
    """

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

    def ensure_account(
        self, handle: str, authority: str, created_at: int
    ) -> "Deferred[Account]":
        def interaction(txn: Any) -> Account:
            key = handle.lower()
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ?"
                ),
                (key, authority),
            )
            row = txn.fetchone()
            if row is not None:
                return account_from_row(row)
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
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key = ? AND a.authority = ''"
                ),
                (handle.lower(),),
            )
            row = txn.fetchone()
            return None if row is None else account_from_row(row)

        return self._run(interaction)

    def get_login(self, handle: str) -> "Deferred[tuple[Account, str] | None]":
        def interaction(txn: Any) -> tuple[Account, str] | None:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS}, u.password_hash FROM accounts a"
                    " JOIN local_users u ON u.account_id = a.id"
                    " WHERE a.handle_key = ? AND a.authority = ''"
                ),
                (handle.lower(),),
            )
            row = txn.fetchone()
            return None if row is None else (account_from_row(row), row[-1])

        return self._run(interaction)

    def set_password_hash(self, account_id: int, password_hash: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("UPDATE local_users SET password_hash = ? WHERE account_id = ?"),
                (password_hash, account_id),
            )

        return self._run(interaction)

    def search_accounts(self, query: str, count: int, offset: int) -> "Deferred[list[Account]]":
        pattern = like_pattern(query)

        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                self._q(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a"
                    " WHERE a.handle_key LIKE ? ESCAPE '!' OR LOWER(a.name) LIKE ? ESCAPE '!'"
                    " ORDER BY a.authority <> '', a.followers_count DESC, a.id"
                    " LIMIT ? OFFSET ?"
                ),
                (pattern, pattern, count, offset),
            )
            return [account_from_row(row) for row in txn.fetchall()]

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
