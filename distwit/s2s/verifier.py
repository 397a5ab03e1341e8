"""
Checking the signature of a request another server sent us.

1. The ``keyid`` of the signature names the signer: its public URL.  It must
   be an ``http(s)`` origin URL (``https`` when we are ``https``).
2. Its key comes from its metadata document (``<keyid>/.well-known/distwit``),
   cached for five minutes.  When a signature fails with a cached key, the
   document is fetched again once (the signer may have a new key), at most
   once per ``refetch_interval`` per signer, so bad requests cannot make us
   hammer a server.
3. The signature must cover ``@method``, ``@target-uri`` and
   ``content-digest``, match the body, be fresh (``created`` within
   ``max_skew`` of our clock) and carry a nonce not seen before.  Nonces
   are remembered until their signature would be stale anyway, so the
   memory they take is bounded by the request rate times the time window.

The target URI is rebuilt from *our* public URL and the request's path and
query, not from the ``Host`` header or the scheme we were reached by: a
reverse proxy in front of us (TLS termination, another port, a path prefix
it strips) does not break signatures, and a peer cannot pick which URL it
claims to have signed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer

from distwit.s2s.client import decode_json, request_capped, user_agent
from distwit.s2s.interfaces import IRequestVerifier, S2SResponseError, SignatureError
from distwit.s2s.metadata import metadata_url, parse_metadata
from distwit.s2s.signatures import (
    BadSignature,
    SignatureParams,
    check_request,
    verify_signature,
)

#: How long a fetched key is trusted before fetching it again, in seconds.
KEY_CACHE_SECONDS = 300.0

#: The least time between two fetches of one signer's metadata, in seconds
#: (after a failed fetch, or to look for a new key after a bad signature).
REFETCH_INTERVAL = 10.0

#: Caps on a metadata document fetch.
METADATA_TIMEOUT = 10.0
METADATA_MAX_SIZE = 64 * 1024

FetchMetadata = Callable[[str], "Deferred[Any]"]


def metadata_fetcher(
    http_client: HTTPClient,
    clock: IReactorTime,
    timeout: float = METADATA_TIMEOUT,
    max_size: int = METADATA_MAX_SIZE,
) -> FetchMetadata:
    """
    The production ``fetch_metadata``: an unsigned GET of
    ``<key_id>/.well-known/distwit`` through ``http_client``, capped in time
    and size, firing with the decoded JSON (checked by the verifier).

    :param clock: the injected reactor (treq needs it for the timeout).
    """

    async def fetch(key_id: str) -> Any:
        url = metadata_url(key_id)
        data = await request_capped(
            http_client,
            clock,
            "GET",
            url,
            {"Accept": "application/json", "User-Agent": user_agent(key_id)},
            None,
            timeout,
            max_size,
        )
        return decode_json(data, f"GET {url}")

    def fetch_metadata(key_id: str) -> Deferred[Any]:
        return Deferred.fromCoroutine(fetch(key_id))

    return fetch_metadata


@dataclass
class _CachedKey:
    public_key: Ed25519PublicKey | None  # None: the last fetch failed
    error: str
    fetched: float


def request_headers(request: IRequest) -> dict[str, str]:
    """
    A ``twisted.web`` request's header fields by lower-case name, several
    lines of one field joined with ``", "`` (RFC 9421 section 2.1).
    """
    fields: dict[str, str] = {}
    for name, values in request.requestHeaders.getAllRawHeaders():
        fields[name.decode("latin-1").lower()] = ", ".join(
            value.decode("latin-1").strip() for value in values
        )
    return fields


@implementer(IRequestVerifier)
class SignatureVerifier:
    """
    Checks incoming server-to-server requests: signature, freshness,
    replays.

    :param fetch_metadata: key_id -> Deferred firing with the signer's
        metadata document (decoded JSON); :func:`metadata_fetcher` in
        production.
    :param clock: the injected reactor's clock.
    :param public_url: our public URL, no trailing slash (the target URIs
        we accept are under it).
    :param max_skew: seconds ``created`` may be off our clock, either way.
    """

    log = Logger()

    def __init__(
        self,
        fetch_metadata: FetchMetadata,
        clock: IReactorTime,
        public_url: str,
        max_skew: float = 60,
        key_cache_seconds: float = KEY_CACHE_SECONDS,
        refetch_interval: float = REFETCH_INTERVAL,
    ) -> None:
        self._fetch_metadata = fetch_metadata
        self._clock = clock
        self._public_url = public_url
        self._https_only = urlsplit(self._public_url).scheme == "https"
        self._max_skew = max_skew
        self._key_cache_seconds = key_cache_seconds
        self._refetch_interval = refetch_interval
        self._keys: dict[str, _CachedKey] = {}
        self._fetching: dict[str, list[Deferred[_CachedKey]]] = {}
        self._nonces: set[tuple[str, str]] = set()
        self._nonce_expiry: list[tuple[float, str, str]] = []
        self._next_key_sweep = 0.0

    def verify(self, request: IRequest, body: bytes) -> Deferred[str]:
        """
        See :meth:`IRequestVerifier.verify`.
        """
        return Deferred.fromCoroutine(self._verify(request, body))

    async def _verify(self, request: IRequest, body: bytes) -> str:
        headers = request_headers(request)
        # All that needs no key first: junk and stale requests cost no fetch.
        params = check_request(headers, body, self._clock.seconds(), self._max_skew)
        if not params.nonce:
            raise SignatureError("the signature has no nonce")
        key_id = params.keyid
        self._check_key_id(key_id)
        uri = request.uri.decode("latin-1")
        if not uri.startswith("/"):
            raise SignatureError("the request target is not a path")
        method = request.method.decode("ascii", "replace")
        url = self._public_url + uri

        cached = await self._key(key_id, refresh=False)
        try:
            self._check(method, url, headers, body, key_id, cached)
        except BadSignature:
            if self._clock.seconds() - cached.fetched < self._refetch_interval:
                raise
            # Maybe the signer has a new key: look once more.
            cached = await self._key(key_id, refresh=True)
            self._check(method, url, headers, body, key_id, cached)
        return key_id

    def _check_key_id(self, key_id: str) -> None:
        try:
            parts = urlsplit(key_id)
            parts.port  # noqa: B018 -- raises ValueError on a bad port
        except ValueError:
            raise SignatureError(f"keyid {key_id!r} is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SignatureError(f"keyid {key_id!r} is not an http(s) URL")
        if parts.username is not None or parts.query or parts.fragment or key_id.endswith("/"):
            raise SignatureError(
                f"keyid {key_id!r} is not a public URL (no credentials, query,"
                " fragment or trailing slash)"
            )
        if parts.scheme == "http" and self._https_only:
            raise SignatureError(
                f"keyid {key_id!r} is plain http://; this server only accepts https:// peers"
            )

    def _check(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        key_id: str,
        cached: _CachedKey,
    ) -> SignatureParams:
        """
        Verify and record the nonce; synchronous, so two copies of one
        request cannot both pass.
        """
        if cached.public_key is None:
            # One answer whatever went wrong (refused address, closed port,
            # a bad document): the details are in the log (_store), never
            # in the answer, or the verifier would be a port scanner.
            raise SignatureError(f"cannot get the key of {key_id}")
        now = self._clock.seconds()
        params = verify_signature(
            method, url, headers, body, cached.public_key, now, self._max_skew
        )
        if not params.nonce:
            raise SignatureError("the signature has no nonce")
        self._expire_nonces(now)
        seen = (key_id, params.nonce)
        if seen in self._nonces:
            raise SignatureError(f"replayed: nonce {params.nonce!r} was already used")
        assert params.created is not None  # verify_signature requires it
        self._nonces.add(seen)
        heapq.heappush(
            self._nonce_expiry, (params.created + self._max_skew, key_id, params.nonce)
        )
        return params

    def _expire_nonces(self, now: float) -> None:
        # A nonce whose signature is stale now can never pass again: forget it.
        while self._nonce_expiry and self._nonce_expiry[0][0] < now:
            _, key_id, nonce = heapq.heappop(self._nonce_expiry)
            self._nonces.discard((key_id, nonce))

    def remembered_nonces(self) -> int:
        """
        How many nonces are held (for tests and metrics).
        """
        self._expire_nonces(self._clock.seconds())
        return len(self._nonces)

    async def _key(self, key_id: str, refresh: bool) -> _CachedKey:
        now = self._clock.seconds()
        self._sweep_keys(now)
        cached = self._keys.get(key_id)
        if cached is not None:
            # A failure, or a key suspected of being old, is retried sooner.
            if cached.public_key is None or refresh:
                lifetime = self._refetch_interval
            else:
                lifetime = self._key_cache_seconds
            if now - cached.fetched < lifetime:
                return cached
        return await self._fetch(key_id)

    def _sweep_keys(self, now: float) -> None:
        if now < self._next_key_sweep:
            return
        self._next_key_sweep = now + self._key_cache_seconds
        for key_id, cached in list(self._keys.items()):
            if now - cached.fetched >= self._key_cache_seconds:
                del self._keys[key_id]

    def _fetch(self, key_id: str) -> Deferred[_CachedKey]:
        """
        The signer's key, fetched now; concurrent requests for one signer
        share one fetch.
        """
        waiting: Deferred[_CachedKey] = Deferred()
        if key_id in self._fetching:
            self._fetching[key_id].append(waiting)
            return waiting
        self._fetching[key_id] = [waiting]

        def done(result: Any) -> None:
            fetched = self._clock.seconds()
            if isinstance(result, Failure):
                error = result.value
                if not isinstance(error, S2SResponseError):
                    self.log.failure(
                        "fetching the metadata of {key_id} failed", result, key_id=key_id
                    )
                cached = _CachedKey(None, str(error) or type(error).__name__, fetched)
            else:
                try:
                    metadata = parse_metadata(result, key_id)
                except S2SResponseError as e:
                    cached = _CachedKey(None, str(e), fetched)
                else:
                    cached = _CachedKey(metadata.public_key, "", fetched)
            self._store(key_id, cached)

        maybeDeferred(self._fetch_metadata, key_id).addBoth(done)
        return waiting

    def _store(self, key_id: str, cached: _CachedKey) -> None:
        if cached.public_key is None:
            self.log.info(
                "no key for {key_id}: {error}", key_id=key_id, error=cached.error
            )
        self._keys[key_id] = cached
        for waiting in self._fetching.pop(key_id, []):
            waiting.callback(cached)
