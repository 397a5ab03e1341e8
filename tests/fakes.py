"""
Fakes of the server-to-server layer, providing the same interfaces, and
signed JSON requests through them to a role's routes in memory.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from distwit.federation.interfaces import IFetcher
from distwit.s2s.interfaces import (
    IRequestVerifier,
    IS2SClient,
    S2SResponseError,
    SignatureError,
)

#: The header through which a test says who "signed" a request.
SIGNER_HEADER = b"x-fake-signer"


@implementer(IRequestVerifier)
class FakeVerifier:
    """
    Takes the signer's URL from a test header: no header is an unsigned
    request; ``failure`` set makes every signature bad.
    """

    def __init__(self) -> None:
        self.failure: str | None = None
        self.bodies: list[bytes] = []

    def verify(self, request: Any, body: bytes) -> Deferred[str]:
        self.bodies.append(body)
        if self.failure is not None:
            return fail(SignatureError(self.failure))
        signer = request.getHeader(SIGNER_HEADER)
        if signer is None:
            return fail(SignatureError("the request is not signed"))
        return succeed(signer.decode("ascii"))


def post_signed(stub: Any, url: str, signer: str | None, body: Any) -> Deferred[Any]:
    """
    POST ``body`` (encoded as JSON unless it is bytes) through a
    ``StubTreq``, signed by ``signer`` as :class:`FakeVerifier` reads it;
    unsigned when ``signer`` is None.
    """
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    headers = {b"content-type": [b"application/json"]}
    if signer is not None:
        headers[SIGNER_HEADER] = [signer.encode("ascii")]
    result: Deferred[Any] = stub.post(url, data=data, headers=headers)
    return result


def json_answer(
    case: SynchronousTestCase, stub: Any, response_d: Deferred[Any], code: int = 200
) -> tuple[Any, bytes]:
    """
    The decoded answer of a ``StubTreq`` request, and its raw bytes, once
    ``case`` has checked that it is JSON with status ``code``.
    """
    stub.flush()
    response = case.successResultOf(response_d)
    raw = case.successResultOf(response.content())
    case.assertEqual(response.code, code, raw)
    case.assertEqual(
        response.headers.getRawHeaders(b"content-type"),
        [b"application/json; charset=utf-8"],
    )
    return json.loads(raw), raw


@implementer(IS2SClient)
class ScriptedClient:
    """
    Records every request; answers from ``routes`` (URL prefix -> a value,
    an exception, or a callable taking (url, body)), or leaves the request
    pending in ``pending`` when ``hold`` is set.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.routes: dict[str, Any] = {}
        self.hold = False
        self.pending: list[tuple[str, Any, Deferred[Any]]] = []

    def _answer(self, method: str, url: str, body: Any) -> Deferred[Any]:
        self.requests.append((method, url, body))
        if self.hold:
            d: Deferred[Any] = Deferred()
            self.pending.append((url, body, d))
            return d
        for prefix, answer in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
            if url.startswith(prefix):
                if callable(answer):
                    try:
                        answer = answer(url, body)
                    except Exception as e:
                        return fail(e)
                if isinstance(answer, Exception):
                    return fail(answer)
                return succeed(answer)
        return fail(S2SResponseError(f"no route for {url}"))

    def get_json(self, url: str) -> Deferred[Any]:
        return self._answer("GET", url, None)

    def post_json(self, url: str, value: Any, timeout: float | None = None) -> Deferred[Any]:
        return self._answer("POST", url, value)

    def get_bytes(self, url: str, max_size: int | None = None) -> Deferred[Any]:
        return self._answer("GET", url, None)

    def posts_to(self, prefix: str) -> list[Any]:
        return [body for method, url, body in self.requests
                if method == "POST" and url.startswith(prefix)]


@implementer(IFetcher)
class RecordingFetcher:
    """
    Remembers which accounts were wanted and how often it swept.
    """

    def __init__(self) -> None:
        self.wanted: list[Any] = []
        self.sweeps = 0

    def want(self, account: Any) -> None:
        self.wanted.append(account)

    async def sweep(self, limit: int = 1000) -> None:
        self.sweeps += 1
