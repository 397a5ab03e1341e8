"""
The Twitter apps of a server and the OAuth tokens they hold for its users:
registered by their owners, approved by users, revoked from the settings
page.  The OAuth 1.0a provider (:mod:`distwit.api.oauth1`) and the settings
pages keep them through here.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from distwit.core.cache import ReadCache
from distwit.store.interfaces import AccessTokenSummary, AppRecord, IAppStore, TokenRecord
from distwit.store.shared import ISharedState

#: A nonce as the store keeps it: consumer key, token, nonce, timestamp.
NonceRecord = tuple[str, str, str, int]

#: Seconds the nonces seen gather before they are written together: what
#: a kill -9 may lose (replays of those requests would pass after it).
WRITE_DELAY = 0.25

#: Seconds an OAuth timestamp may be off our clock, and a nonce is
#: remembered.
TIMESTAMP_WINDOW = 300


class Nonces:
    """
    The OAuth nonces of the last minutes, checked in memory: no database
    trip for a signed request (issue 16: OAuth costs no more than Basic).

    Those seen are written to the store behind the answers, those of
    :data:`WRITE_DELAY` in one transaction, and read back when the process
    starts, so a request signed before a restart is still refused after it
    (but for a kill -9's last :data:`WRITE_DELAY`; a stop writes them all:
    :meth:`flush`).  A nonce is forgotten once its timestamp is older than
    ``window`` seconds (the provider refuses such a timestamp anyway).
    With several processes (:meth:`share`) the shared state keeps them.

    :param clock: an ``IReactorTime``.
    :param window: the seconds a timestamp may be off (the provider's).
    """

    log = Logger()

    def __init__(self, store: IAppStore, clock: Any, window: int) -> None:
        self._store = store
        self._clock = clock
        self._window = window
        #: The nonces seen, by their timestamp.
        self._seen: dict[int, set[tuple[str, str, str]]] = {}
        self._next_sweep = 0.0
        #: Seen and not yet given to the store; the write under way.
        self._pending: list[NonceRecord] = []
        self._writing: "Deferred[None] | None" = None
        self._due: IDelayedCall | None = None
        #: Fires once the nonces kept before this process began are read.
        self._loaded: "Deferred[None] | None" = None
        self._shared: ISharedState | None = None

    def share(self, state: ISharedState) -> None:
        """
        Keep the nonces in ``state``, shared with the server's other
        processes, instead.
        """
        self._shared = state

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._seen.values())

    async def use(self, consumer_key: str, token: str, nonce: str, timestamp: int) -> bool:
        """
        Take a request's nonce; ``False`` if it was taken before (a replay).
        """
        if self._shared is not None:
            fresh: bool = await self._shared.add(
                f"oauth-nonce:{consumer_key}:{token}:{timestamp}:{nonce}", "1",
                2 * self._window,
            )
            return fresh
        if self._loaded is None:
            self._loaded = Deferred.fromCoroutine(self._load())
        if not self._loaded.called:
            await self._loaded
        bucket = self._seen.get(timestamp)
        if bucket is None:
            bucket = self._seen[timestamp] = set()
        key = (consumer_key, token, nonce)
        if key in bucket:
            return False
        bucket.add(key)
        self._pending.append((consumer_key, token, nonce, timestamp))
        if self._due is None and self._writing is None:
            self._due = self._clock.callLater(WRITE_DELAY, self._start_writing)
        now = self._clock.seconds()
        if now >= self._next_sweep:
            self._next_sweep = now + 1
            oldest = now - self._window
            for old in [t for t in self._seen if t < oldest]:
                del self._seen[old]
        return True

    async def _load(self) -> None:
        since = int(self._clock.seconds()) - self._window
        try:
            kept: list[NonceRecord] = await self._store.recent_nonces(since)
        except Exception:
            self.log.failure("could not read the OAuth nonces kept")
            return
        for consumer_key, token, nonce, timestamp in kept:
            self._seen.setdefault(timestamp, set()).add((consumer_key, token, nonce))

    def _start_writing(self) -> None:
        self._due = None
        writing = Deferred.fromCoroutine(self._write())
        if not writing.called:
            self._writing = writing

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                forget_before = int(self._clock.seconds()) - 2 * self._window
                try:
                    await self._store.record_nonces(batch, forget_before)
                except Exception:
                    self.log.failure("could not keep {count} OAuth nonces", count=len(batch))
        finally:
            self._writing = None

    async def flush(self) -> None:
        """
        Wait until every nonce seen so far is written.
        """
        if self._due is not None:
            self._due.cancel()
            self._start_writing()
        while self._writing is not None:
            await self._writing


class Apps:
    def __init__(self, store: IAppStore, clock: Any = None) -> None:
        self._store = store
        #: Apps and tokens as every OAuth request reads them, kept while
        #: nothing is written (:class:`~distwit.core.cache.ReadCache`).
        self.reads = ReadCache(getattr(store, "write_generation", lambda: None))
        #: The nonces of signed requests (:meth:`use_nonce`), with a clock.
        self.nonces: Nonces | None = None
        if clock is not None:
            self.nonces = Nonces(store, clock, TIMESTAMP_WINDOW)

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
        In memory when there is a clock (:class:`Nonces`), else one
        transaction each.
        """
        if self.nonces is not None:
            return await self.nonces.use(consumer_key, token, nonce, timestamp)
        fresh: bool = await self._store.use_nonce(
            consumer_key, token, nonce, timestamp, forget_before
        )
        return fresh


__all__ = ["AccessTokenSummary", "AppRecord", "Apps", "NonceRecord", "Nonces",
           "TIMESTAMP_WINDOW", "TokenRecord"]
