"""
This server's registrations at other servers' providers, kept in its
database so it registers once per issuer.
"""

from __future__ import annotations

import json
from typing import Any

from zope.interface import implementer

from distwit.oidc.rp import IRegistrations
from distwit.store.interfaces import IStore


@implementer(IRegistrations)
class StoreRegistrations:
    """
    :class:`IRegistrations` in the ``oidc_registrations`` table.

    :param clock: an ``IReactorTime``, for the time a registration was made.
    """

    def __init__(self, store: IStore, clock: Any) -> None:
        self._store = store
        self._clock = clock

    async def get(self, issuer: str) -> dict[str, Any] | None:
        text = await self._store.get_oidc_registration(issuer)
        if text is None:
            return None
        info = json.loads(text)
        return info if isinstance(info, dict) else None

    async def put(self, issuer: str, info: dict[str, Any]) -> None:
        now = int(self._clock.seconds() * 1000)
        await self._store.put_oidc_registration(issuer, json.dumps(info), now)
