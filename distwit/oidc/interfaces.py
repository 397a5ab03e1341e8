"""
What the OpenID Connect face needs from outside it: where the relying
party keeps its registrations at other servers' providers
(:class:`~distwit.oidc.rp.MemoryRegistrations` in memory,
:class:`~distwit.oidc.registrations.StoreRegistrations` in the database).
"""

from __future__ import annotations

from typing import Any

from zope.interface import Interface


class IRegistrations(Interface):
    """
    What this server registered with each provider (RFC 7591), kept so it
    registers once per issuer.
    """

    def get(issuer: str) -> Any:
        """
        The registration kept for ``issuer`` (a coroutine giving a ``dict``
        or ``None``).
        """

    def put(issuer: str, info: dict[str, Any]) -> Any:
        """
        Keep ``info`` as the registration for ``issuer``, replacing any
        (a coroutine giving ``None``).
        """
