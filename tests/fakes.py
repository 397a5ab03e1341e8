"""
Fakes of the server-to-server layer, providing the same interfaces.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from distwit.s2s.interfaces import IS2SClient, S2SResponseError


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
