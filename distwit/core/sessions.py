"""
Web sessions: who is signed in to the pages.  Only a hash of the cookie is
kept, so a copy of the database signs nobody in.
"""

from __future__ import annotations

from distwit.store.interfaces import ISessionStore, SessionRecord


class Sessions:
    def __init__(self, store: ISessionStore) -> None:
        self._store = store

    async def create_session(
        self, session_hash: str, account_id: int, csrf_token: str, created_at: int,
        expires_at: int,
    ) -> None:
        await self._store.create_session(
            session_hash, account_id, csrf_token, created_at, expires_at
        )

    async def get_session(self, session_hash: str, now: int) -> SessionRecord | None:
        """
        The account id, CSRF token and sign-in time of a live session.
        """
        found: SessionRecord | None = await self._store.get_session(session_hash, now)
        return found

    async def delete_session(self, session_hash: str) -> None:
        await self._store.delete_session(session_hash)

    async def end_other_sessions(self, account_id: int, keep: str | None) -> None:
        """
        Sign an account out of every browser but the one whose session
        hash is ``keep`` (``None``: every browser).
        """
        await self._store.delete_sessions_of(account_id, keep)


__all__ = ["SessionRecord", "Sessions"]
