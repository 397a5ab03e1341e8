"""
Shared HTTP pieces: JSON answers and request bodies, the ``/health``
resource and the root that puts the roles of one process behind one port.
"""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from distwit import __version__
from distwit.s2s.interfaces import ForbiddenAuthority, IRequestVerifier, SignatureError


class HTTPError(Exception):
    """
    A request refused with ``code`` and a JSON ``{"error": message}``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def client_address(request: IRequest) -> str:
    """
    The address a request came from (its host), or ``""`` if unknown.
    """
    return str(getattr(request.getClientAddress(), "host", "") or "")


def read_body(request: IRequest, limit: int) -> bytes:
    """
    The request body, at most ``limit`` bytes.

    :raises HTTPError: 413 when it is bigger.
    """
    length = request.getHeader(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"the body is over {limit} bytes")
    request.content.seek(0)
    body: bytes = request.content.read(limit + 1)
    if len(body) > limit:
        raise HTTPError(413, f"the body is over {limit} bytes")
    return body


async def verified_signer(
    request: IRequest, body: bytes, verifier: IRequestVerifier, log: Logger, what: str
) -> str:
    """
    The public URL (no trailing slash) of the server that signed
    ``request`` and ``body``.

    :param what: what the request is (``"an exchange"``), for the log.
    :raises HTTPError: 401 when the signature is missing or bad (logged
        on ``log``); 403 when the signer may not speak for its authority.
    """
    try:
        signer: str = await verifier.verify(request, body)
    except SignatureError as e:
        log.warn(
            "refused {what} from {client}: {reason}",
            what=what,
            client=str(request.getClientAddress()),
            reason=str(e),
        )
        raise HTTPError(401, str(e)) from None
    except ForbiddenAuthority as e:
        raise HTTPError(403, str(e)) from None
    return signer.rstrip("/")


#: A \\u escape of a UTF-16 surrogate, in a JSON body.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_object(body: bytes, shape: str = "") -> dict[str, Any]:
    """
    Decode a request body that must be a JSON object, strictly: UTF-8, no
    ``NaN`` or ``Infinity`` (Python's extensions to JSON), and no lone
    surrogate escapes (``"\\ud800"`` is JSON but no text: it could be
    neither logged nor answered).

    :param shape: how the object looks (``{"public_url", "public_key"}``),
        for the error message.
    :raises HTTPError: 400, with a message that says what is wrong.
    """

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise HTTPError(400, f"the body is not UTF-8 JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(body) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(400, "the body is not UTF-8 JSON: a lone surrogate") from None
    if not isinstance(value, dict):
        raise HTTPError(400, f"the body must be a JSON object {shape}".rstrip())
    return value


def json_body(request: IRequest, value: Any, code: int = 200) -> bytes:
    """
    Encode ``value`` as the UTF-8 JSON response to ``request``.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid in JSON text, not in UTF-8), say echoed
        # from a request: as \u escapes, which JSON allows.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


class Health(Resource):
    """
    ``GET /health``: 200 with the role(s) and version, for monitors and
    load balancers.
    """

    isLeaf = True

    def __init__(self, role: str, roles: list[str]) -> None:
        super().__init__()
        self._body = {"status": "ok", "role": role, "roles": roles, "version": __version__}

    def render_GET(self, request: IRequest) -> bytes:
        return json_body(request, self._body)

    render_HEAD = render_GET


class Root(Resource):
    """
    Named children first (``health``, and in ``--role=all`` the ``ping`` and
    ``registry`` roles), everything else to ``fallback`` with the path
    untouched.
    """

    def __init__(self, fallback: IResource | None) -> None:
        super().__init__()
        self._fallback = fallback

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        if self._fallback is None:
            return super().getChild(path, request)  # a 404 page
        # Give the whole path back to the fallback, as if it were the root.
        request.postpath.insert(0, request.prepath.pop())
        return self._fallback
