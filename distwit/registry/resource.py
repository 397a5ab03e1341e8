"""
The registry role's HTTP routes (relative: the role is mounted under
``/registry/`` in ``--role=all`` and at the root when it runs alone).

``POST /register``
    Signed by a ping server.  Registration and heartbeat are the same
    call, made at start and then every ``heartbeat_interval`` seconds::

        {"public_url": "<the ping server's public URL>",   # must be the signer
         "public_key": "<its Ed25519 key, unpadded base64url>"}

    The answer: ``{"version": "...", "heartbeat_interval": 10.0,
    "admission": "listed"}``, or ``"pending"`` when the registry lists
    only the ping servers its operator approved and this one is not (yet).

``GET /pings``
    Public.  The live list, sorted by URL::

        {"version": "...", "heartbeat_interval": 10.0,
         "pings": [{"url": "...", "public_key": "...", "last_heard": 1700000000.5}]}

Errors are JSON ``{"error": "..."}``: 400 malformed, 401 unsigned or badly
signed, 403 signed by another server than ``public_url``, 409 another URL of the
same authority (``host[:port]``) is listed or pending, or it is pending
with another key, 413 over 64 KB, 429 too many wait for approval, 503
while the registry stops.

Why the key in the body is trusted: the verifier checked the request's
signature against the key in the signer's metadata document, and
``public_url`` must be the signer.  So a registration can only ever speak
for the server that signed it, and only that server can state its key.  A
server that states a key other than its metadata's harms no one but
itself (its peers would distrust its answers), so the registry fetches
nothing more and keeps what the server says about itself.  The key must
still be a well-formed Ed25519 public key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from klein import Klein
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from distwit.http import HTTPError, json_body, json_object, read_body, verified_signer
from distwit.registry.service import RegistrationRefused, RegistryService, RegistryStopped
from distwit.s2s import paths
from distwit.s2s.interfaces import IRequestVerifier

#: The largest registration body accepted, in bytes.
MAX_BODY = 64 * 1024

#: The longest public URL accepted.
MAX_URL_LENGTH = 2048

_BASE64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Registration:
    """
    A checked registration: the URL without trailing slash, the key in
    canonical (unpadded) base64url.
    """

    public_url: str
    public_key: str


def check_public_url(value: Any) -> str:
    """
    An absolute http(s) URL with a host and nothing after the path.

    :return: the URL without trailing slash.
    :raise ValueError: it is not one, with the reason.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("public_url must be the ping server's public URL (a string)")
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"public_url is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public_url must be an http(s) URL with a host, not {value!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("public_url must have no user, query or fragment")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"public_url has a bad port: {value!r}") from None
    return value.rstrip("/")


def check_public_key(value: Any) -> str:
    """
    An Ed25519 public key: its raw 32 bytes in base64url.

    :return: the key in unpadded base64url.
    :raise ValueError: it is not one, with the reason.
    """
    if not isinstance(value, str):
        raise ValueError("public_key must be the Ed25519 public key in base64url (a string)")
    raw = value.encode("utf-8").rstrip(b"=")
    # The lenient decoder would skip characters of the other alphabet.
    if not set(raw) <= _BASE64URL:
        raise ValueError("public_key is not base64url")
    try:
        key = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not base64url") from None
    if len(key) != 32:
        raise ValueError(f"public_key must be 32 bytes (Ed25519), not {len(key)}")
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def parse_registration(body: bytes) -> Registration:
    """
    Check and decode a registration body.

    :raise HTTPError: 400, with a message that says what is wrong.
    """
    value = json_object(body, '{"public_url", "public_key"}')
    try:
        return Registration(
            public_url=check_public_url(value.get("public_url")),
            public_key=check_public_key(value.get("public_key")),
        )
    except ValueError as e:
        raise HTTPError(400, str(e)) from None


class RegistryResource:
    """
    The registry's routes over a :class:`RegistryService`, built by the
    composition root (``distwit.tap``) with the service passed in.

    :param registry: the service keeping the list.
    :param verifier: checks the signature of every registration.
    """

    app = Klein()
    log = Logger()

    def __init__(self, registry: RegistryService, verifier: IRequestVerifier) -> None:
        self.registry = registry
        self.verifier = verifier

    def resource(self) -> IResource:
        return self.app.resource()  # type: ignore[no-any-return]

    def _error(self, request: IRequest, error: HTTPError) -> bytes:
        return json_body(request, {"error": error.message}, error.code)

    @app.route(paths.REGISTRY_REGISTER, methods=["POST"])
    async def register(self, request: IRequest) -> bytes:
        return await self._guard(request, self._register)

    @app.route(paths.REGISTRY_PINGS, methods=["GET", "HEAD"])
    async def pings(self, request: IRequest) -> bytes:
        return await self._guard(request, self._pings)

    async def _guard(
        self, request: IRequest, handler: Callable[[IRequest], Awaitable[bytes]]
    ) -> bytes:
        try:
            return await handler(request)
        except HTTPError as e:
            return self._error(request, e)
        except Exception:
            self.log.failure(
                "registry request {method} {path} failed",
                method=request.method,
                path=request.path,
            )
            return self._error(request, HTTPError(500, "internal error"))

    async def _pings(self, request: IRequest) -> bytes:
        await self.registry.when_loaded()
        return json_body(request, self.registry.listing())

    async def _register(self, request: IRequest) -> bytes:
        body = read_body(request, MAX_BODY)
        signer = await verified_signer(request, body, self.verifier, self.log, "a registration")
        registration = parse_registration(body)
        if registration.public_url != signer:
            message = (
                f"public_url is {registration.public_url} but the request is signed by "
                f"{signer}: a ping server registers itself only"
            )
            self.log.warn(
                "refused a registration signed by {signer}: {reason}",
                signer=signer,
                reason=message,
            )
            raise HTTPError(403, message)
        await self.registry.when_loaded()
        try:
            answer = self.registry.register(registration.public_url, registration.public_key)
        except RegistryStopped as e:
            raise HTTPError(503, str(e)) from None
        except RegistrationRefused as e:
            self.log.info(
                "refused a registration of {url}: {reason}",
                url=registration.public_url,
                reason=e.message,
            )
            raise HTTPError(e.code, e.message) from None
        return json_body(request, answer)
