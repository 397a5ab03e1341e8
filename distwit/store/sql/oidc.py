"""
OpenID Connect: the clients registered with our provider, our own
registrations with other providers, and what each account granted.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import IOIDCStore, OIDCClientRecord, OIDCGrantRecord
from distwit.store.sql.base import SQLBase


@implementer(IOIDCStore)
class OIDCStore(SQLBase):
    """
    The oidc part of :class:`~distwit.store.sql.SQLStore`.
    """

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

    def get_oidc_client(self, client_id: str) -> "Deferred[OIDCClientRecord | None]":
        def interaction(txn: Any) -> OIDCClientRecord | None:
            txn.execute(
                self._q(
                    "SELECT client_id, client_secret, metadata, issued_at"
                    " FROM oidc_clients WHERE client_id = ?"
                ),
                (client_id,),
            )
            row = txn.fetchone()
            return None if row is None else OIDCClientRecord(*row)

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

    def oidc_grants_of(self, account_id: int) -> "Deferred[list[OIDCGrantRecord]]":
        def interaction(txn: Any) -> list[OIDCGrantRecord]:
            txn.execute(
                self._q(
                    "SELECT g.client_id, c.metadata, g.first_at, g.last_at"
                    " FROM oidc_grants g JOIN oidc_clients c ON c.client_id = g.client_id"
                    " WHERE g.account_id = ? ORDER BY g.last_at DESC"
                ),
                (account_id,),
            )
            return [OIDCGrantRecord(*row) for row in txn.fetchall()]

        return self._run(interaction)

    def delete_oidc_grant(self, account_id: int, client_id: str) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("DELETE FROM oidc_grants WHERE account_id = ? AND client_id = ?"),
                (account_id, client_id),
            )
            return bool(txn.rowcount == 1)

        return self._run(interaction)
