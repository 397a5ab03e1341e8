"""
What OpenID Connect keeps of a server's users signing in elsewhere: the
relying parties registered here, and which of them each user approved.
"""

from __future__ import annotations

from distwit.store.interfaces import IOIDCStore, OIDCClientRecord, OIDCGrantRecord


class OIDCRecords:
    def __init__(self, store: IOIDCStore) -> None:
        self._store = store

    async def create_oidc_client(
        self, client_id: str, client_secret: str, metadata: str, issued_at: int
    ) -> None:
        await self._store.create_oidc_client(client_id, client_secret, metadata, issued_at)

    async def get_oidc_client(self, client_id: str) -> OIDCClientRecord | None:
        found: OIDCClientRecord | None = await self._store.get_oidc_client(client_id)
        return found

    async def record_oidc_grant(self, account_id: int, client_id: str, now: int) -> None:
        """
        The user approved the client (again).
        """
        await self._store.record_oidc_grant(account_id, client_id, now)

    async def oidc_grants_of(self, account_id: int) -> list[OIDCGrantRecord]:
        grants: list[OIDCGrantRecord] = await self._store.oidc_grants_of(account_id)
        return grants

    async def delete_oidc_grant(self, account_id: int, client_id: str) -> bool:
        """
        Forget an approval: the client asks again next time.
        """
        deleted: bool = await self._store.delete_oidc_grant(account_id, client_id)
        return deleted
