"""
The Twitter apps of a server and the OAuth tokens they hold for its users:
registered by their owners, approved by users, revoked from the settings
page.  The OAuth 1.0a provider (:mod:`distwit.api.oauth1`) and the settings
pages keep them through here.
"""

from __future__ import annotations

from distwit.core.cache import ReadCache
from distwit.store.interfaces import AccessTokenSummary, AppRecord, IAppStore, TokenRecord


class Apps:
    def __init__(self, store: IAppStore) -> None:
        self._store = store
        #: Apps and tokens as every OAuth request reads them, kept while
        #: nothing is written (:class:`~distwit.core.cache.ReadCache`).
        self.reads = ReadCache(getattr(store, "write_generation", lambda: None))

    async def create_app(
        self, consumer_key: str, consumer_secret: str, name: str, owner_id: int,
        callback: str, created_at: int,
    ) -> int:
        """
        Register an app; its id.
        """
        app_id: int = await self._store.create_app(
            consumer_key, consumer_secret, name, owner_id, callback, created_at
        )
        return app_id

    async def get_app(self, consumer_key: str) -> AppRecord | None:
        app: AppRecord | None = await self.reads.read(
            ("app", consumer_key), lambda: self._store.get_app(consumer_key), keep_none=False
        )
        return app

    async def apps_of(self, owner_id: int) -> list[AppRecord]:
        apps: list[AppRecord] = await self._store.apps_of(owner_id)
        return apps

    async def create_token(
        self, token: str, secret: str, kind: str, app_id: int, account_id: int | None,
        callback: str, created_at: int, expires_at: int | None,
    ) -> None:
        """
        Keep an OAuth token (``request``, ``access`` or ``bearer``).
        """
        await self._store.create_token(
            token, secret, kind, app_id, account_id, callback, created_at, expires_at
        )

    async def get_token(self, token: str) -> TokenRecord | None:
        found: TokenRecord | None = await self.reads.read(
            ("token", token), lambda: self._store.get_token(token), keep_none=False
        )
        return found

    async def tokens_of(self, account_id: int) -> list[AccessTokenSummary]:
        """
        The access tokens a user gave apps.
        """
        tokens: list[AccessTokenSummary] = await self._store.tokens_of(account_id)
        return tokens

    async def approve_token(self, token: str, account_id: int, verifier: str) -> bool:
        """
        A user approved a request token; ``False`` if it is gone.
        """
        approved: bool = await self._store.approve_token(token, account_id, verifier)
        return approved

    async def delete_token(self, token: str) -> bool:
        deleted: bool = await self._store.delete_token(token)
        return deleted

    async def revoke_all(self, account_id: int) -> int:
        """
        Revoke every access token of an account; how many there were.
        """
        tokens = await self.tokens_of(account_id)
        for token in tokens:
            await self.delete_token(token.token)
        return len(tokens)

    async def use_nonce(
        self, consumer_key: str, token: str, nonce: str, timestamp: int, forget_before: int
    ) -> bool:
        """
        Record a request's nonce; ``False`` if it was seen before (a replay).
        """
        fresh: bool = await self._store.use_nonce(
            consumer_key, token, nonce, timestamp, forget_before
        )
        return fresh


__all__ = ["AccessTokenSummary", "AppRecord", "Apps", "TokenRecord"]
