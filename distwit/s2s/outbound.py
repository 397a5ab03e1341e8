"""
Where this server may connect when it acts for someone else.

Resolving an acct, fetching the metadata named by a signature's ``keyid``,
copying a peer's range feed, sending a follow notice, OpenID discovery for
a visitor: each connects to a host a stranger chose.  :class:`OutboundPolicy`
keeps such connections off this server's own networks:

- never a private, loopback, link-local, shared (100.64/10), reserved,
  multicast or unspecified address, IPv4 or IPv6 (IPv4-mapped and 6to4
  addresses count as the IPv4 address inside), unless the operator allows
  them (``allow_private``: a lab on loopback);
- the address checked is the address connected to: the host name is
  resolved once, every address it gives is checked, and the connection goes
  to a checked address (DNS rebinding gains nothing).  The check runs on
  every connection, so on every redirect too;
- the operator's own destinations (the configured registry, the ping
  servers it lists) are *trusted*: they are reached wherever they are,
  since no stranger chose them.

:class:`CheckedEndpointFactory` applies a policy to a Twisted ``Agent``
(``Agent.usingEndpointFactory``); a refusal fails the connection with
:class:`AddressRefused`, whose message is for the log only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostResolution,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.web.client import URI, BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

#: Seconds to wait for a TCP connection, unless told otherwise.
DEFAULT_CONNECT_TIMEOUT = 10.0

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class AddressRefused(Exception):
    """
    The connection was not attempted: the host is at an address the policy
    does not reach.  The message names the address, for the log only.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def refused_address(address: str) -> str | None:
    """
    Why ``address`` (an IP address, without brackets) is not for connecting
    to on a stranger's behalf, or ``None`` when it is a public address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends are IPv4 addresses in disguise.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
    for kind, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return kind
    if not ip.is_global:
        return "not public"  # 100.64.0.0/10 (shared), 0.0.0.0/8, ...
    return None


def origin_of(url: str) -> Origin | None:
    """
    ``(scheme, host, port)`` of an http(s) URL, host in lower case without
    brackets, the port explicit; ``None`` if it is not one.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return (scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


class OutboundPolicy:
    """
    Which addresses outgoing connections may reach.

    :param allow_private: also private, loopback and link-local addresses
        (labs and private federations; ``peers_allow_private``).
    :param trusted: URLs of the operator's own destinations (the
        registry); their origins are reached wherever they are.
    """

    def __init__(self, allow_private: bool = False, trusted: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self._trusted: set[Origin] = set()
        self._listed: frozenset[Origin] = frozenset()
        for url in trusted:
            self.trust(url)

    def trust(self, url: str) -> None:
        """
        Trust the origin of ``url`` from now on.
        """
        origin = origin_of(url)
        if origin is not None:
            self._trusted.add(origin)

    def trust_listed(self, urls: Iterable[str]) -> None:
        """
        Trust exactly these origins (the ping servers the registry lists now)
        besides those of :meth:`trust`; the previous list is forgotten.
        """
        self._listed = frozenset(o for o in map(origin_of, urls) if o is not None)

    def is_trusted(self, scheme: str, host: str, port: int) -> bool:
        origin = (scheme.lower(), host.strip("[]").lower(), port)
        return origin in self._trusted or origin in self._listed

    def refusal(self, address: str) -> str | None:
        """
        Why the policy does not connect to ``address``, or ``None``.
        """
        if self.allow_private:
            return None
        return refused_address(address)


@implementer(IResolutionReceiver)
class _Addresses:
    """
    Collects the addresses of one host name resolution.
    """

    def __init__(self) -> None:
        self.addresses: list[IAddress] = []
        self.done: Deferred[list[IAddress]] = Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.done.callback(self.addresses)


@implementer(IStreamClientEndpoint)
class CheckedEndpoint:
    """
    Resolve ``host``, check every address it gives, connect to a checked
    one (over TLS verified against ``host`` when ``tls``).

    :param check: whether to check the addresses (``False`` for a trusted
        destination).
    """

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        tls: Any | None,
        policy: OutboundPolicy,
        connect_timeout: float,
        check: bool = True,
    ) -> None:
        self._reactor = reactor
        self._host = host.strip("[]")
        self._port = port
        self._tls = tls
        self._policy = policy
        self._connect_timeout = connect_timeout
        self._check = check

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        return Deferred.fromCoroutine(self._connect(protocolFactory))

    async def _resolve(self) -> list[str]:
        try:
            ipaddress.ip_address(self._host.split("%", 1)[0])
        except ValueError:
            pass
        else:
            return [self._host]
        receiver = _Addresses()
        self._reactor.nameResolver.resolveHostName(receiver, self._host, self._port)
        addresses = await receiver.done
        found: list[str] = []
        for address in addresses:
            if isinstance(address, (IPv4Address, IPv6Address)) and address.host not in found:
                found.append(address.host)
        if not found:
            raise DNSLookupError(self._host)
        return found

    async def _connect(self, protocolFactory: Any) -> Any:
        addresses = await self._resolve()
        if self._check:
            for address in addresses:
                why = self._policy.refusal(address)
                if why is not None:
                    raise AddressRefused(
                        f"{self._host} is at {address}, a {why} address, "
                        "and this server does not connect to such addresses"
                    )
        last: BaseException | None = None
        for address in addresses:
            endpoint: Any
            if ":" in address:
                endpoint = TCP6ClientEndpoint(
                    self._reactor, address, self._port, timeout=self._connect_timeout
                )
            else:
                endpoint = TCP4ClientEndpoint(
                    self._reactor, address, self._port, timeout=self._connect_timeout
                )
            if self._tls is not None:
                endpoint = wrapClientTLS(self._tls, endpoint, clock=self._reactor)
            try:
                return await endpoint.connect(protocolFactory)
            except ConnectError as e:
                last = e
        assert last is not None
        raise last


@implementer(IAgentEndpointFactory)
class CheckedEndpointFactory:
    """
    Endpoints for an ``Agent`` that connect only where ``policy`` allows.

    :param schemes: the URL schemes connected to at all (``http`` is for
        development); any other is refused.
    """

    def __init__(
        self,
        reactor: Any,
        tls_policy: BrowserLikePolicyForHTTPS,
        policy: OutboundPolicy,
        schemes: Iterable[str] = ("http", "https"),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self._reactor = reactor
        self._tls_policy = tls_policy
        self._policy = policy
        self._schemes = frozenset(schemes)
        self._connect_timeout = connect_timeout

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        scheme = uri.scheme.decode("ascii", "replace")
        host = uri.host.decode("ascii", "replace")
        if scheme not in self._schemes:
            raise AddressRefused(f"{scheme!r} is not a scheme this server connects to")
        tls = self._tls_policy.creatorForNetloc(uri.host, uri.port) if scheme == "https" else None
        check = not self._policy.is_trusted(scheme, host, uri.port)
        return CheckedEndpoint(
            self._reactor, host, uri.port, tls, self._policy, self._connect_timeout, check
        )
