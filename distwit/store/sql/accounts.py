"""
Accounts: local users and their logins, the accounts known of other servers,
profiles and account search.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import PROFILE, WEB_SOURCE, Account
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
                    " WHERE a.handle_key = ? AND a.authority = '' AND a.removed_at IS NULL"
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
        self, account_id: int, name: str, description: str, location: str, url: str,
        image: str | None = None, changed_at: int | None = None,
    ) -> "Deferred[Account]":
        def interaction(txn: Any) -> Account:
            txn.execute(
                self._q(
                    "UPDATE accounts SET name = ?, description = ?, location = ?, url = ?,"
                    " profile_image = COALESCE(?, profile_image)"
                    " WHERE id = ? AND authority = ''"
                ),
                (name, description, location, url, image, account_id),
            )
            if changed_at is not None:
                # The change is an item of the user's numbered log, taken in
                # this transaction, so that it travels to the followers'
                # servers like a post (docs/design/log-items.md).
                txn.execute(
                    self._q(
                        "UPDATE accounts SET last_seq = last_seq + 1 WHERE id = ?"
                        " AND authority = '' RETURNING last_seq"
                    ),
                    (account_id,),
                )
                row = txn.fetchone()
                if row is None:
                    raise NoSuchAccount(account_id)
                self._insert_post(
                    txn, account_id, row[0], "", changed_at, WEB_SOURCE, None, None, None,
                    kind=PROFILE,
                )
                txn.execute(
                    self._q("UPDATE accounts SET profile_seq = ? WHERE id = ?"),
                    (row[0], account_id),
                )
            return self._get_account(txn, account_id)

        return self._run(interaction)

    def store_profile_image(
        self, image_hash: str, sizes: dict[str, bytes], created_at: int
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            for size, png in sizes.items():
                txn.execute(
                    self._q(
                        "SELECT 1 FROM profile_images WHERE image_hash = ? AND size = ?"
                    ),
                    (image_hash, size),
                )
                if txn.fetchone() is None:
                    txn.execute(
                        self._q(
                            "INSERT INTO profile_images (image_hash, size, png, created_at)"
                            " VALUES (?, ?, ?, ?)"
                        ),
                        (image_hash, size, base64.b64encode(png).decode("ascii"), created_at),
                    )

        return self._run(interaction)

    def profile_image(self, image_hash: str, size: str) -> "Deferred[bytes | None]":
        def interaction(txn: Any) -> bytes | None:
            txn.execute(
                self._q("SELECT png FROM profile_images WHERE image_hash = ? AND size = ?"),
                (image_hash, size),
            )
            row = txn.fetchone()
            return None if row is None else base64.b64decode(row[0])

        return self._run(interaction)
