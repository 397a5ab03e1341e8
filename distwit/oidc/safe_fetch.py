"""
The HTTP fetches the relying party makes to servers it has never met.

A visitor types any ``handle@authority``, so every URL the relying party
fetches (WebFinger, discovery, registration, token, keys) is chosen by a
stranger.  :class:`SafeFetcher` keeps such fetches from being turned
against this server or its network:

- https only, unless ``allow_http`` (development on loopback);
- never a private, loopback, link-local, reserved, multicast or
  unspecified address, unless ``allow_private``.  The address checked is
  the address connected to: the host name is resolved once, every address
  it gives is checked, and the connection goes to a checked address (so a
  name that answers differently the second time, DNS rebinding, gains
  nothing).  Certificates are still checked against the host name;
- at most :data:`DEFAULT_MAX_SIZE` bytes of answer, at most
  :data:`DEFAULT_TIMEOUT` seconds from the first connection to the last
  byte (redirects included), at most :data:`DEFAULT_MAX_REDIRECTS`
  redirects for a GET, each checked like the first URL, and none for a
  POST.

Whatever goes wrong reaches the caller as :class:`FetchError`, whose
message says what, for a person.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any, cast
from urllib.parse import quote, urlencode, urljoin, urlsplit

from treq.client import HTTPClient
from treq.cookies import IndexableCookieJar
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.client import PotentialDataLoss, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, UNKNOWN_LENGTH
from zope.interface import implementer

from distwit import __version__
from distwit.s2s import client as s2s_client
from distwit.s2s.outbound import (
    AddressRefused,
    CheckedEndpointFactory,
    OutboundPolicy,
)

#: Seconds a fetch may take, from connecting to the last byte, redirects
#: included.
DEFAULT_TIMEOUT = 10.0

#: The largest answer read, in bytes.  Discovery documents, WebFinger
#: answers, key sets and tokens are a few kilobytes.
DEFAULT_MAX_SIZE = 256 * 1024

#: Redirects followed by a GET (a POST follows none).
DEFAULT_MAX_REDIRECTS = 3

#: The longest text of another server quoted in our messages.
MAX_QUOTED = 200

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """
    A fetch failed; the message says what, for a person.

    :ivar answered: whether the server gave an HTTP answer (an error status,
        or a body we refused); ``False`` when it could not be reached at
        all, or was refused before connecting.
    """

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.answered = answered

    def __str__(self) -> str:
        return self.message


class _TooBig(Exception):
    pass


def quoted(text: str) -> str:
    """
    Another server's words, on one line and not too long, for our messages.
    """
    return s2s_client.quoted(text, MAX_QUOTED)


def error_message(body: bytes) -> str | None:
    """
    The message of an error answer: OAuth's ``error`` and
    ``error_description``, or a plain ``{"error": "…"}``; else ``None``.
    """
    return s2s_client.error_message(body, MAX_QUOTED)


def _describe(error: BaseException) -> str:
    """
    Words for a connection-level failure; Twisted wraps the real reasons.
    """
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(_describe(reason.value) for reason in reasons)
    if isinstance(error, DNSLookupError):
        return "the host name does not resolve"
    tls = _tls_failure(error)
    if tls is not None:
        return tls
    if isinstance(error, ConnectError):
        text = error.osError if getattr(error, "osError", None) else str(error)
        return f"the connection failed ({quoted(str(text))})"
    text = str(error)
    return quoted(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def _tls_failure(error: BaseException) -> str | None:
    """
    Words for a failed TLS handshake, if ``error`` is one.
    """
    from OpenSSL.SSL import Error as OpenSSLError
    from service_identity import VerificationError

    if isinstance(error, VerificationError):
        return "its certificate is not for this host name"
    if isinstance(error, OpenSSLError):
        reasons = [
            str(part[2]) for part in (error.args[0] if error.args else [])
            if isinstance(part, tuple) and len(part) == 3
        ]
        detail = "; ".join(reasons) or str(error)
        if "certificate verify failed" in detail:
            return "its certificate cannot be trusted (certificate verify failed)"
        return quoted(f"the TLS handshake failed ({detail})")
    return None


def _cancelled(error: BaseException) -> bool:
    reasons = getattr(error, "reasons", None)
    if reasons:
        return all(reason.check(CancelledError) for reason in reasons)
    return isinstance(error, CancelledError)


def _refusal(error: BaseException) -> AddressRefused | None:
    """
    Our own refusal of an address, if that is what ``error`` is (bare, or
    wrapped by the agent).
    """
    if isinstance(error, AddressRefused):
        return error
    for reason in getattr(error, "reasons", None) or ():
        found = _refusal(reason.value)
        if found is not None:
            return found
    return None


@implementer(IBodyProducer)
class _BytesProducer:
    """
    A request body given at once: unlike treq's default
    (``FileBodyProducer``), it needs no cooperator, so no global reactor.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self._data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _body_producer(data: Any) -> IBodyProducer:
    if isinstance(data, bytes):
        return _BytesProducer(data)
    return IBodyProducer(data)


def _headers(fields: Mapping[str, str]) -> Headers:
    return Headers(
        {name.encode("ascii"): [value.encode("latin-1")] for name, value in fields.items()}
    )


class SafeFetcher:
    """
    JSON over HTTP from servers chosen by strangers, within the limits of
    the module docstring.

    :param reactor: connects, resolves names and (unless ``clock``) times.
    :param allow_http: also fetch ``http://`` URLs (development only).
    :param allow_private: also connect to private and loopback addresses
        (tests on loopback, private networks).
    :param ca_file: a PEM file of the authorities to trust for https
        (default: the system's).
    :param clock: schedules the time limits (default: ``reactor``).
    """

    def __init__(
        self,
        reactor: Any,
        *,
        allow_http: bool = False,
        allow_private: bool = False,
        max_size: int = DEFAULT_MAX_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        ca_file: str | None = None,
        clock: Any = None,
    ) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private
        self.max_size = max_size
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._clock = reactor if clock is None else clock
        self.pool = s2s_client.quiet_pool(reactor)
        factory = CheckedEndpointFactory(
            reactor,
            s2s_client.tls_policy(ca_file),
            OutboundPolicy(allow_private=allow_private),
            schemes=("https", "http") if allow_http else ("https",),
            connect_timeout=timeout,
        )
        self._http = HTTPClient(
            Agent.usingEndpointFactory(reactor, factory, pool=self.pool),
            # No cookies: nothing here is a browser session.
            cookiejar=IndexableCookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            data_to_body_producer=_body_producer,
        )
        self._user_agent = f"distwit/{__version__}"

    def close(self) -> Deferred[None]:
        """
        Close the idle connections; the Deferred fires when they are.
        """
        d: Deferred[None] = self.pool.closeCachedConnections()
        return d

    # The public methods.

    async def get_json(self, url: str, what: str = "the document") -> Any:
        """
        ``GET url``, following up to ``max_redirects`` redirects; the JSON
        of the answer.

        :param what: names the document in messages ("the discovery
            document").
        :raise FetchError: saying what went wrong.
        """
        return await self._json("GET", url, {}, None, what)

    async def post_form(
        self,
        url: str,
        fields: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        what: str = "the answer",
    ) -> Any:
        """
        ``POST`` an ``application/x-www-form-urlencoded`` body; the JSON of
        the answer.

        :param auth: ``(client_id, client_secret)`` for HTTP Basic, encoded
            as OAuth 2.0 says (RFC 6749 section 2.3.1).
        :raise FetchError: saying what went wrong.
        """
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth is not None:
            user, password = (quote(part, safe="") for part in auth)
            token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        body = urlencode(dict(fields)).encode("ascii")
        return await self._json("POST", url, headers, body, what)

    async def post_json(self, url: str, body: Any, what: str = "the answer") -> Any:
        """
        ``POST`` ``body`` as JSON; the JSON of the answer.

        :raise FetchError: saying what went wrong.
        """
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return await self._json(
            "POST", url, {"Content-Type": "application/json"}, data, what
        )

    # The work.

    def check_url(self, url: str, what: str = "the document") -> None:
        """
        Refuse, before connecting, a URL this fetcher would not fetch: not
        https (or http when allowed), credentials in it, no host.

        :raise FetchError: saying why.
        """
        try:
            parts = urlsplit(url)
            parts.port  # a bad port raises here
        except ValueError:
            raise FetchError(f"{what} is at {quoted(url)}, which is not a URL") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise FetchError(
                f"{what} is at {quoted(url)}, which is not https; "
                "this server fetches only https"
            )
        if not parts.hostname:
            raise FetchError(f"{what} is at {quoted(url)}, which names no host")
        if parts.username is not None or parts.password is not None:
            raise FetchError(f"{what} is at {quoted(url)}, which holds a password")
        if not url.isascii() or any(c in url for c in " \t\r\n"):
            raise FetchError(f"{what} is at {quoted(url)}, which is not a plain URL")

    async def _json(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        what: str,
    ) -> Any:
        data = await self.fetch(method, url, headers, body, what)
        try:
            return json.loads(data)
        except ValueError:
            raise FetchError(f"{what} at {url} is not JSON", answered=True) from None

    async def fetch(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        what: str,
    ) -> bytes:
        """
        One exchange (and its redirects for a GET); the body of the 2xx
        answer.

        :raise FetchError: saying what went wrong.
        """
        started = self._clock.seconds()
        headers = {
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            **headers,
        }
        redirects = 0
        first = url
        while True:
            self.check_url(url, what)
            response = await self._request(
                method, url, headers, body, started + self.timeout, what
            )
            if response.code in _REDIRECTS and response.headers.hasHeader(b"location"):
                self._discard(response)
                if method != "GET":
                    raise FetchError(
                        f"{what} at {url}: the server answered with a redirect, "
                        f"which is not followed for a {method}",
                        answered=True,
                    )
                if redirects >= self.max_redirects:
                    raise FetchError(
                        f"{what} at {first}: more than {self.max_redirects} redirects",
                        answered=True,
                    )
                redirects += 1
                location = response.headers.getRawHeaders(b"location")[0]
                url = urljoin(url, location.decode("latin-1"))
                continue
            return await self._body(response, url, started, what)

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: float,
        what: str,
    ) -> Any:
        too_late = f"{what} at {url}: no answer within {self.timeout:g} s"
        remaining = deadline - self._clock.seconds()
        if remaining <= 0:
            raise FetchError(too_late)
        try:
            return await self._http.request(
                method,
                url,
                headers=_headers(headers),
                data=body,
                timeout=remaining,
                reactor=cast(Any, self._clock),  # treq only schedules the timeout with it
                allow_redirects=False,
                unbuffered=True,
            )
        except Exception as e:
            refusal = _refusal(e)
            if refusal is not None:
                raise FetchError(f"{what} at {url}: {refusal}") from None
            if _cancelled(e):
                if self._clock.seconds() >= deadline:
                    raise FetchError(too_late) from None
                raise CancelledError() from None  # our caller cancelled
            raise FetchError(f"{what} at {url}: {_describe(e)}") from None

    def _discard(self, response: Any) -> None:
        """
        Close the connection of an answer we will not read.
        """
        _read_capped(response, 0).addErrback(lambda _: None)

    async def _body(self, response: Any, url: str, started: float, what: str) -> bytes:
        code = response.code
        ok = 200 <= code < 300
        length = response.length
        if length is not UNKNOWN_LENGTH and length > self.max_size:
            self._discard(response)
            if ok:
                raise FetchError(
                    f"{what} at {url} is {length} bytes, more than the "
                    f"{self.max_size} this server reads",
                    answered=True,
                )
            data = None
        else:
            remaining = self.timeout - (self._clock.seconds() - started)
            try:
                data = await self._read(response, url, remaining, what)
            except FetchError:
                if ok:
                    raise
                data = None
        if not ok:
            phrase = response.phrase.decode("latin-1", "replace") if response.phrase else ""
            status = f"HTTP {code} {phrase}".rstrip()
            message = error_message(data) if data is not None else None
            raise FetchError(
                f"{what} at {url}: {status}" + (f": {message}" if message else ""),
                answered=True,
            )
        assert data is not None
        return data

    async def _read(self, response: Any, url: str, remaining: float, what: str) -> bytes:
        expired = False
        reading = _read_capped(response, self.max_size)

        def expire() -> None:
            nonlocal expired
            expired = True
            reading.cancel()

        timer = self._clock.callLater(max(remaining, 0.0), expire)
        try:
            return await reading
        except _TooBig:
            raise FetchError(
                f"{what} at {url} is over the {self.max_size} bytes this server reads",
                answered=True,
            ) from None
        except CancelledError:
            if expired:
                raise FetchError(
                    f"{what} at {url} was not complete within {self.timeout:g} s",
                    answered=True,
                ) from None
            raise
        except Exception as e:
            raise FetchError(
                f"{what} at {url}: reading the answer failed: {_describe(e)}", answered=True
            ) from None
        finally:
            if timer.active():
                timer.cancel()


class _CappedBody(Protocol):
    """
    Reads an answer's body up to ``limit`` bytes; past that, or when
    cancelled, closes the connection.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.finished: Deferred[bytes] = Deferred(lambda _: self._close())

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._close()
            self.finished.errback(_TooBig())
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def _read_capped(response: Any, limit: int) -> Deferred[bytes]:
    """
    The body of ``response``, at most ``limit`` bytes (else :class:`_TooBig`);
    cancelling closes the connection.
    """
    protocol = _CappedBody(limit)
    response.deliverBody(protocol)
    return protocol.finished
