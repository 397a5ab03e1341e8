"""
The metadata document at ``/.well-known/distwit``: who a server is (its
authority and public URL), what it does (its roles and endpoints) and the
key its requests are signed with.

Example::

    {
      "authority": "social.example:8443",
      "public_url": "https://social.example:8443",
      "role": "twitter",
      "roles": ["twitter"],
      "key_id": "https://social.example:8443",
      "public_key": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs",
      "alg": "ed25519",
      "endpoints": {"s2s": "https://social.example:8443/s2s"},
      "software": {"name": "distwit", "version": "0.1.0"}
    }

``key_id`` is what signatures name in their ``keyid``; it is the public URL,
so a signer is found (and its authority known) from the signature alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from distwit.s2s import paths
from distwit.urls import authority_of
from distwit.s2s.interfaces import S2SResponseError
from distwit.s2s.keys import ServerKey, public_key_from_b64
from distwit.s2s.signatures import ALGORITHM

#: How long peers may cache the document, in seconds.
CACHE_SECONDS = 300


def metadata_url(public_url: str) -> str:
    """
    The metadata document's URL for a server's public URL, or for a
    signature's ``keyid`` (which may end in a slash).
    """
    return paths.metadata_url(public_url.rstrip("/"))


def metadata_document(
    public_url: str,
    role: str,
    roles: list[str],
    key: ServerKey,
    endpoints: dict[str, str],
    version: str,
) -> dict[str, Any]:
    """
    This server's metadata document.

    :param public_url: our public URL (no trailing slash).
    :param role: the role of this process (``all``, ``twitter``, …).
    :param roles: the roles it serves.
    :param endpoints: name -> absolute URL of what the roles offer.
    :param version: our software version.
    """
    return {
        "authority": authority_of(public_url),
        "public_url": public_url,
        "role": role,
        "roles": list(roles),
        "key_id": public_url,
        "public_key": key.public_key_b64(),
        "alg": ALGORITHM,
        "endpoints": dict(endpoints),
        "software": {"name": "distwit", "version": version},
    }


@dataclass(frozen=True)
class ServerMetadata:
    """
    A peer's metadata document, checked.
    """

    authority: str
    public_url: str
    role: str
    roles: tuple[str, ...]
    key_id: str
    public_key: Ed25519PublicKey
    public_key_b64: str
    alg: str
    endpoints: dict[str, str]
    software_name: str
    software_version: str


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise S2SResponseError(f"metadata: {name} must be a non-empty string")
    return value


def parse_metadata(data: Any, expected_url: str) -> ServerMetadata:
    """
    Check a metadata document fetched from ``expected_url``'s server.

    :param data: the decoded JSON.
    :param expected_url: the public URL we asked (a signature's keyid, a
        user's home server): the document must say exactly this.
    :raise S2SResponseError: not the expected shape, another server's
        document, or an unusable key.
    """
    if not isinstance(data, dict):
        raise S2SResponseError("metadata: expected a JSON object")
    public_url = _string(data, "public_url")
    if public_url != expected_url:
        raise S2SResponseError(
            f"metadata: public_url is {public_url!r}, expected {expected_url!r}"
        )
    authority = _string(data, "authority")
    if authority != authority_of(public_url):
        raise S2SResponseError(
            f"metadata: authority {authority!r} is not that of {public_url!r}"
        )
    key_id = _string(data, "key_id")
    if key_id != public_url:
        raise S2SResponseError(f"metadata: key_id {key_id!r} is not the public URL")
    alg = _string(data, "alg")
    if alg != ALGORITHM:
        raise S2SResponseError(f"metadata: unsupported alg {alg!r}, expected {ALGORITHM!r}")
    public_key_b64 = _string(data, "public_key")
    try:
        public_key = public_key_from_b64(public_key_b64)
    except ValueError as e:
        raise S2SResponseError(f"metadata: bad public_key: {e}") from None
    role = _string(data, "role")
    roles = data.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise S2SResponseError("metadata: roles must be a list of strings")
    endpoints = data.get("endpoints")
    if not isinstance(endpoints, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in endpoints.items()
    ):
        raise S2SResponseError("metadata: endpoints must map names to URLs")
    software = data.get("software")
    if not isinstance(software, dict):
        raise S2SResponseError("metadata: software must be an object")
    return ServerMetadata(
        authority=authority,
        public_url=public_url,
        role=role,
        roles=tuple(roles),
        key_id=key_id,
        public_key=public_key,
        public_key_b64=public_key_b64,
        alg=alg,
        endpoints=dict(endpoints),
        software_name=_string(software, "name"),
        software_version=_string(software, "version"),
    )


class MetadataResource(Resource):
    """
    ``GET /.well-known/distwit`` (and ``HEAD``): the document as JSON,
    cacheable for five minutes.  Other methods get 405.
    """

    isLeaf = True

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__()
        self._body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )

    def render_GET(self, request: IRequest) -> bytes:
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return b'{"error":"not found"}'
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", f"max-age={CACHE_SECONDS}".encode("ascii"))
        return self._body

    render_HEAD = render_GET
