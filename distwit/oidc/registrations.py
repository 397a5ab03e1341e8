"""
This server's registrations at other servers' providers, kept in its
database (through :class:`~distwit.core.oidc.OIDCRecords`) so it registers
once per issuer.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from distwit.core.oidc import OIDCRecords
from distwit.oidc.interfaces import IRegistrations


@implementer(IRegistrations)
class StoreRegistrations:
    """
    :class:`IRegistrations` kept in the database.

    :param records: the microblog's OpenID Connect records.
    :param clock: an ``IReactorTime``, for the time a registration was made.
    """

    def __init__(self, records: OIDCRecords, clock: Any) -> None:
        self._records = records
        self._clock = clock

    async def get(self, issuer: str) -> dict[str, Any] | None:
        return await self._records.registration(issuer)

    async def put(self, issuer: str, info: dict[str, Any]) -> None:
        await self._records.put_registration(issuer, info, int(self._clock.seconds() * 1000))
