"""
What OpenID Connect keeps: the relying parties registered here and which
of them each user approved, and this server's own registrations at other
servers' providers.
"""

from __future__ import annotations

import json
from typing import Any

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

    async def registration(self, issuer: str) -> dict[str, Any] | None:
        """
        Our registration at the provider ``issuer`` (its RFC 7591 answer),
        or ``None``.
        """
        text = await self._store.get_oidc_registration(issuer)
        if text is None:
            return None
        info = json.loads(text)
        return info if isinstance(info, dict) else None

    async def put_registration(self, issuer: str, info: dict[str, Any], now: int) -> None:
        """
        Keep (or replace) our registration at ``issuer``, made at ``now``
        (milliseconds).
        """
        await self._store.put_oidc_registration(issuer, json.dumps(info), now)


__all__ = ["OIDCClientRecord", "OIDCGrantRecord", "OIDCRecords"]
