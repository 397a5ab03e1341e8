"""
The signed HTTP client one distwit server uses to talk to another.

Every request is signed (:func:`~distwit.s2s.signatures.sign_request`),
bounded in time (``timeout`` covers connecting, the answer's head and its
body) and in size (a ``Content-Length`` over the cap is refused unread; a
body that grows past it is cut off as soon as it does), and never follows
redirects (a signature is for one URL).  Whatever goes wrong reaches the
caller as :class:`~distwit.s2s.interfaces.S2SResponseError` saying what.

Plain ``http://`` peers are for development: a server whose own public URL
is ``https://`` refuses to send to an ``http://`` URL, before connecting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from http.cookiejar import DefaultCookiePolicy
from typing import Any, cast
from urllib.parse import urlsplit

import treq
from hyperlink import EncodedURL
from treq.client import HTTPClient
from treq.cookies import IndexableCookieJar
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.client import _HTTP11ClientFactory
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH
from zope.interface import implementer

from distwit import __version__
from distwit.s2s.interfaces import IS2SClient, S2SResponseError
from distwit.s2s.keys import ServerKey, b64url_encode
from distwit.s2s.outbound import CheckedEndpointFactory, OutboundPolicy
from distwit.s2s.signatures import sign_request

#: Seconds a request may take, from connecting to the last byte.
DEFAULT_TIMEOUT = 10.0

#: The largest answer read, in bytes.
DEFAULT_MAX_SIZE = 1_000_000

#: The most read of an error answer, for its message.
MAX_ERROR_BODY = 64 * 1024

#: The longest peer error message quoted in our exceptions.
MAX_QUOTED = 300


class PooledHTTPClient(HTTPClient):
    """
    A treq client on its own persistent connection pool, which
    :meth:`close` empties (call it when the service stops).  It keeps no
    cookies: servers have no sessions with each other.

    :param policy: where it may connect (checked on the address connected
        to, see :mod:`distwit.s2s.outbound`); ``None``: anywhere.
    """

    def __init__(
        self,
        reactor: Any,
        ca_file: str | None = None,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.pool = quiet_pool(reactor)
        self.policy = policy
        agent: Agent
        if policy is None:
            agent = Agent(reactor, contextFactory=tls_policy(ca_file), pool=self.pool)
        else:
            agent = Agent.usingEndpointFactory(
                reactor,
                CheckedEndpointFactory(reactor, tls_policy(ca_file), policy),
                pool=self.pool,
            )
        super().__init__(
            agent,
            cookiejar=IndexableCookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )

    def close(self) -> Deferred[None]:
        """
        Close the idle connections; the Deferred fires when they are.
        """
        d: Deferred[None] = self.pool.closeCachedConnections()
        return d


class _QuietHTTP11ClientFactory(_HTTP11ClientFactory):
    noisy = False


def quiet_pool(reactor: Any) -> HTTPConnectionPool:
    """
    A persistent connection pool that logs no line for each connection
    (they come and go).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool._factory = _QuietHTTP11ClientFactory
    return pool


def tls_policy(ca_file: str | None) -> BrowserLikePolicyForHTTPS:
    """
    Checks certificates and host names (service-identity, through
    twisted[tls]) against the system's authorities, or those of ``ca_file``.
    """
    return BrowserLikePolicyForHTTPS(
        trustRoot=None if ca_file is None else trust_root_from(ca_file)
    )


def trust_root_from(ca_file: str) -> Any:
    """
    The certificate authorities of a PEM file, as a Twisted trust root.

    :raise OSError: the file cannot be read.
    :raise ValueError: it holds no certificate, or a broken one.
    """
    with open(ca_file, "rb") as f:
        data = f.read()
    marker = b"-----BEGIN CERTIFICATE-----"
    blocks = [marker + part for part in data.split(marker)[1:]]
    if not blocks:
        raise ValueError("no PEM certificate in it")
    try:
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except Exception as e:
        raise ValueError(f"a certificate in it cannot be read ({e})") from None
    return trustRootFromCertificates(certificates)


def make_http_client(
    reactor: Any, ca_file: str | None = None, policy: OutboundPolicy | None = None
) -> PooledHTTPClient:
    """
    One connection pool, an ``Agent`` on it and a treq ``HTTPClient`` on
    that: what a service builds once and closes when it stops.

    :param ca_file: a PEM file of the authorities to trust for https
        (default: the system's).
    :param policy: where it may connect (default: anywhere).
    """
    return PooledHTTPClient(reactor, ca_file, policy)


class _TooBig(Exception):
    pass


def _headers(fields: dict[str, str]) -> Headers:
    return Headers(
        {name.encode("ascii"): [value.encode("latin-1")] for name, value in fields.items()}
    )


def _describe(error: BaseException) -> str:
    """
    Words for a connection-level failure; Twisted wraps the real reasons.
    """
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(_describe(reason.value) for reason in reasons)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _cancelled(error: BaseException) -> bool:
    """
    Whether a failure is a cancellation (Twisted's agent wraps it in
    ``ResponseNeverReceived``).
    """
    reasons = getattr(error, "reasons", None)
    if reasons:
        return all(reason.check(CancelledError) for reason in reasons)
    return isinstance(error, CancelledError)


def quoted(text: str, limit: int = MAX_QUOTED) -> str:
    """
    Another server's words, on one line and not too long, for our messages.
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_message(body: bytes, limit: int = MAX_QUOTED) -> str | None:
    """
    The message of a JSON error answer: distwit's ``{"error": "…"}``,
    OAuth's ``error`` with its ``error_description``, or Twitter's
    ``{"errors": [{"code": 34, "message": "…"}]}``; else ``None``.
    """
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    description = value.get("error_description")
    if isinstance(error, str) and isinstance(description, str) and description:
        return quoted(f"{description} ({error})", limit)
    if isinstance(error, str):
        return quoted(error, limit)
    errors = value.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        code = errors[0].get("code")
        if isinstance(message, str):
            if isinstance(code, int):
                return quoted(f"{message} (code {code})", limit)
            return quoted(message, limit)
    return None


def decode_json(body: bytes, what: str) -> Any:
    """
    A JSON answer, or :class:`S2SResponseError`.
    """
    try:
        return json.loads(body)
    except ValueError as e:
        raise S2SResponseError(f"{what}: the answer is not JSON ({e})") from None


def _discard(response: Any) -> None:
    """
    Close the connection of an answer we will not read.
    """

    def refuse(data: bytes) -> None:
        raise _TooBig()

    treq.collect(response, refuse).addErrback(lambda _: None)


async def _read_body(
    response: Any, limit: int, clock: IReactorTime, remaining: float, what: str
) -> bytes:
    chunks: list[bytes] = []
    size = 0

    def collector(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > limit:
            raise _TooBig()  # treq.collect closes the connection
        chunks.append(data)

    expired = False
    reading = treq.collect(response, collector)

    def expire() -> None:
        nonlocal expired
        expired = True
        reading.cancel()

    timer = clock.callLater(max(remaining, 0.0), expire)
    try:
        await reading
    except _TooBig:
        raise S2SResponseError(f"{what}: the answer is over {limit} bytes") from None
    except CancelledError:
        if expired:
            raise S2SResponseError(f"{what}: the answer was not complete in time") from None
        raise
    except Exception as e:
        raise S2SResponseError(f"{what}: reading the answer failed: {_describe(e)}") from None
    finally:
        if timer.active():
            timer.cancel()
    return b"".join(chunks)


async def request_capped(
    http_client: HTTPClient,
    clock: IReactorTime,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    max_size: int,
) -> bytes:
    """
    One HTTP exchange within ``timeout`` seconds and ``max_size`` bytes;
    the body of a 2xx answer.

    :param url: already checked and in wire form.
    :raise S2SResponseError: no answer in time, too big, not 2xx (with the
        peer's error message when it gave one), or the connection failed.
    :raise CancelledError: the caller cancelled.
    """
    what = f"{method} {url}"
    started = clock.seconds()

    def timed_out() -> bool:
        return clock.seconds() - started >= timeout

    try:
        response = await http_client.request(
            method,
            url,
            headers=_headers(headers),
            data=body,
            timeout=timeout,
            reactor=cast(Any, clock),  # treq only schedules the timeout with it
            allow_redirects=False,
            unbuffered=True,
        )
    except CancelledError:
        if timed_out():
            raise _no_answer(what, f"no answer within {timeout:g} s") from None
        raise
    except Exception as e:
        if timed_out():
            raise _no_answer(what, f"no answer within {timeout:g} s") from None
        if _cancelled(e):
            raise CancelledError() from None  # our caller cancelled: not the peer's doing
        raise _no_answer(what, _describe(e)) from None

    code = response.code
    ok = 200 <= code < 300
    limit = max_size if ok else min(max_size, MAX_ERROR_BODY)
    length = response.length
    remaining = timeout - (clock.seconds() - started)
    data: bytes | None
    if length is not UNKNOWN_LENGTH and length > limit:
        _discard(response)
        if ok:
            raise S2SResponseError(
                f"{what}: the answer is {length} bytes, more than the {limit} allowed"
            )
        data = None
    elif ok:
        data = await _read_body(response, limit, clock, remaining, what)
    else:
        try:
            data = await _read_body(response, limit, clock, remaining, what)
        except S2SResponseError:
            data = None
    if not ok:
        phrase = response.phrase.decode("latin-1", "replace") if response.phrase else ""
        status = f"HTTP {code} {phrase}".rstrip()
        message = error_message(data) if data is not None else None
        raise S2SResponseError(
            f"{what}: {status}: {message}" if message else f"{what}: {status}", status=code
        )
    assert data is not None
    return data


_log = Logger()


def _no_answer(what: str, detail: str) -> S2SResponseError:
    """
    The one error for every way of not getting an HTTP answer: refused by
    the outbound policy, no such host, connection refused, reset, timed
    out.  The words would tell a stranger whether a port is open or an
    address is private, so they go to the log only.
    """
    # At debug level: the callers log a failing peer once (distwit.http.PeerLog).
    _log.debug("{what}: {detail}", what=what, detail=detail)
    return S2SResponseError(f"{what}: no answer", detail=detail)


def new_nonce() -> str:
    """
    A signature nonce: 16 random bytes, base64url.
    """
    return b64url_encode(os.urandom(16))


def user_agent(public_url: str) -> str:
    return f"distwit/{__version__} (+{public_url})"


@implementer(IS2SClient)
class S2SClient:
    """
    Signed requests to other servers, with time and size caps.

    :param http_client: a treq client (:func:`make_http_client`).
    :param key: our key; requests are signed with it.
    :param public_url: our public URL (no trailing slash): the ``keyid``
        peers look us up by.
    :param clock: the injected reactor's clock.
    :param timeout: default seconds per request, connection to last byte.
    :param max_size: default largest answer, in bytes.
    """

    log = Logger()

    def __init__(
        self,
        http_client: HTTPClient,
        key: ServerKey,
        public_url: str,
        clock: IReactorTime,
        timeout: float = DEFAULT_TIMEOUT,
        max_size: int = DEFAULT_MAX_SIZE,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._http = http_client
        self._key = key
        self._public_url = public_url
        self._https_only = urlsplit(self._public_url).scheme == "https"
        self._clock = clock
        self._timeout = timeout
        self._max_size = max_size
        self._nonce = nonce

    def _target(self, url: str) -> str:
        """
        ``url`` as it goes on the wire (what we sign), if we may send to it.
        """
        try:
            parsed = EncodedURL.from_text(url)
        except Exception:
            raise S2SResponseError(f"not a URL: {url!r}") from None
        scheme = parsed.scheme.lower()
        if scheme not in ("http", "https") or not parsed.host:
            raise S2SResponseError(f"refusing {url!r}: not an http:// or https:// URL")
        if parsed.userinfo:
            raise S2SResponseError(f"refusing {url!r}: credentials in the URL")
        if scheme == "http" and self._https_only:
            raise S2SResponseError(
                f"refusing {url}: this server is https://, so its peers must be too"
            )
        wire: str = parsed.replace(scheme=scheme, fragment="").to_uri().to_text()
        return wire

    async def _signed(
        self,
        method: str,
        url: str,
        body: bytes | None,
        accept: str,
        timeout: float,
        max_size: int,
    ) -> bytes:
        wire_url = self._target(url)
        headers = sign_request(
            self._key,
            self._public_url,
            method,
            wire_url,
            body if body is not None else b"",
            now=self._clock.seconds(),
            nonce=self._nonce(),
        )
        headers["Accept"] = accept
        headers["User-Agent"] = user_agent(self._public_url)
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return await request_capped(
            self._http, self._clock, method, wire_url, headers, body, timeout, max_size
        )

    async def _json(self, method: str, url: str, body: bytes | None, timeout: float) -> Any:
        data = await self._signed(
            method, url, body, "application/json", timeout, self._max_size
        )
        return decode_json(data, f"{method} {url}")

    def get_json(self, url: str) -> Deferred[Any]:
        """
        Signed GET; the decoded JSON answer.
        """
        return Deferred.fromCoroutine(self._json("GET", url, None, self._timeout))

    def post_json(self, url: str, value: Any, timeout: float | None = None) -> Deferred[Any]:
        """
        Signed POST of ``value`` as JSON; the decoded JSON answer.
        ``timeout`` overrides the default (long-polls).
        """
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return Deferred.fromCoroutine(
            self._json("POST", url, body, self._timeout if timeout is None else timeout)
        )

    def get_bytes(self, url: str, max_size: int | None = None) -> Deferred[bytes]:
        """
        Signed GET; the raw answer, at most ``max_size`` bytes (default: the
        client's cap).
        """
        return Deferred.fromCoroutine(
            self._signed(
                "GET",
                url,
                None,
                "*/*",
                self._timeout,
                self._max_size if max_size is None else max_size,
            )
        )
