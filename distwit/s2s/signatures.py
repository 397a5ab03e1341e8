"""
Signed server-to-server requests: RFC 9421 HTTP Message Signatures with
Ed25519, over the method, the target URI and an RFC 9530 Content-Digest.

What we sign (label ``sig1``)::

    Content-Digest: sha-256=:<base64 of SHA-256(body)>:
    Signature-Input: sig1=("@method" "@target-uri" "content-digest");\\
        created=<unix seconds>;keyid="<signer's public URL>";alg="ed25519";\\
        nonce="<16 random bytes, base64url>"
    Signature: sig1=:<base64 of the Ed25519 signature of the signature base>:

The ``keyid`` is the signer's public URL; its key is in the metadata
document there (:mod:`distwit.s2s.metadata`).  ``created`` and ``nonce``
let the receiver refuse stale and replayed requests
(:mod:`distwit.s2s.verifier` keeps the nonces).  A ``Date`` header is not
covered: ``created`` says the same thing inside the signature.

Library decision: we use ``http-message-signatures``
(github.com/pyauth/http-message-signatures) for the signature base, and
its dependency ``http-sf`` (Mark Nottingham, co-author of RFC 8941) for
Structured Fields, rather than write our own.  Checked before choosing
(version 3.0.0):

- it implements RFC 9421 as published (``@target-uri``, ``@signature-params``,
  the ``sf``/``key``/``bs``/``req`` parameters, strict component rules) and
  reproduces the Ed25519 example of Appendix B.2.6 byte for byte
  (``tests/test_s2s.py``);
- ``ed25519`` is one of its algorithms, built on ``cryptography``;
- messages are duck-typed (``method``, ``url``, ``headers``): no
  ``requests`` objects, so Twisted requests and treq calls fit in a few
  lines (:class:`_Message`);
- it generates RFC 9530 ``Content-Digest`` (sha-256 by default).

What we add around it, and why:

- Time: the library compares ``created`` with the wall clock
  (``datetime.now()``) and a 5 s skew.  Our clock is injected (tests run on
  ``task.Clock``) and the skew is ours, so :class:`_Verifier` turns its
  check off and :func:`verify_signature` checks ``created``/``expires``
  against the ``now`` it is given.
- Policy (:func:`check_request`, before any key is fetched): which
  components must be covered, exactly one signature, the ``alg``, the body
  against the digest (sha-256 and sha-512 members checked, others
  ignored as RFC 9530 asks), and one exception type
  (:class:`SignatureError`) whose message says precisely what is wrong.
  A failed cryptographic check is :class:`BadSignature`, so the verifier
  knows when refetching a (possibly rotated) key is worth it.
- Signing goes through ``prepare()``/``apply()`` so the private key stays
  inside :class:`~distwit.s2s.keys.ServerKey`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import http_sf
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
)
from http_message_signatures.algorithms import ED25519
from http_message_signatures.digests import ContentDigest
from http_message_signatures.exceptions import (
    HTTPMessageSignaturesException,
    InvalidSignature,
)

from distwit.s2s.interfaces import SignatureError
from distwit.s2s.keys import ServerKey

#: The signature's label in ``Signature-Input`` and ``Signature``.
LABEL = "sig1"

#: The one algorithm we sign and accept (RFC 9421 section 3.3.6).
ALGORITHM = "ed25519"

#: What every distwit request signature covers, and must cover.
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@target-uri", "content-digest")

_HEADER_NAMES = {
    "signature-input": "Signature-Input",
    "signature": "Signature",
    "content-digest": "Content-Digest",
}


class BadSignature(SignatureError):
    """
    The signature does not verify with the key we have: the request was
    changed, or signed by another key (perhaps the signer's new one).
    """


@dataclass(frozen=True)
class SignatureParams:
    """
    The signed parameters of a request's signature.

    :ivar keyid: who signed: the signer's public URL.
    :ivar created: when, in Unix seconds.
    :ivar nonce: the signer's one-time value, if it gave one.
    :ivar alg: the algorithm named, if any.
    :ivar expires: the signer's own deadline, if any.
    :ivar covered: the covered components, as written in the signature
        (bare names, or Structured Field strings when they have parameters).
    """

    keyid: str
    created: int | None
    nonce: str | None
    alg: str | None
    expires: int | None
    covered: tuple[str, ...]


class _Message:
    """
    The request shape the library reads: ``method``, ``url``, ``headers``.
    """

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class _OneKey(HTTPSignatureKeyResolver):
    """
    Resolves exactly one key id, to the key the caller already fetched.
    """

    def __init__(self, key_id: str, public_key: Ed25519PublicKey) -> None:
        self._key_id = key_id
        self._public_key = public_key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._public_key if key_id == self._key_id else None

    def resolve_private_key(self, key_id: str) -> Any:
        raise KeyError(key_id)


class _Verifier(HTTPMessageVerifier):
    """
    The library's verifier without its wall-clock time check:
    :func:`verify_signature` checks time against the injected clock.
    """

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def content_digest(body: bytes) -> str:
    """
    The RFC 9530 ``Content-Digest`` field value of ``body``, with sha-256.
    """
    return str(ContentDigest.create(body))


def create_signature(
    sign: Callable[[bytes], bytes],
    method: str,
    url: str,
    headers: Mapping[str, str],
    covered: Iterable[str],
    created: int,
    key_id: str,
    label: str = LABEL,
    include_alg: bool = True,
    nonce: str | None = None,
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """
    Sign a request with Ed25519: the general form behind
    :func:`sign_request`, also used to reproduce the RFC's examples.

    :param sign: makes the Ed25519 signature of the signature base
        (:meth:`ServerKey.sign`).
    :param headers: the request's header fields; a ``Content-Digest`` here
        is used as it is, otherwise one is made from ``body`` when given.
    :return: the signature base, and the header fields to add
        (``Content-Digest`` when made here, ``Signature-Input``,
        ``Signature``).
    :raise ValueError: the URL, a component or a parameter cannot be signed.
    """
    message = _Message(method.upper(), url, dict(headers))
    has_digest = any(name.lower() == "content-digest" for name in message.headers)
    signer = HTTPMessageSigner(signature_algorithm=ED25519)
    try:
        prepared = signer.prepare(
            message,
            key_id=key_id,
            created=datetime.datetime.fromtimestamp(created, datetime.timezone.utc),
            nonce=nonce,
            label=label,
            include_alg=include_alg,
            covered_component_ids=tuple(covered),
            body=body,
            use_existing_digest=has_digest,
        )
        signer.apply(message, prepared, sign(prepared.signature_base))
    except HTTPMessageSignaturesException as e:
        raise ValueError(f"cannot sign {method} {url}: {e}") from None
    added = {
        name: value
        for name, value in message.headers.items()
        if name.lower() in ("signature-input", "signature")
        or (name.lower() == "content-digest" and not has_digest)
    }
    return prepared.signature_base, added


def sign_request(
    key: ServerKey,
    key_id: str,
    method: str,
    url: str,
    body: bytes,
    now: float,
    nonce: str,
) -> dict[str, str]:
    """
    The header fields that sign a distwit request: ``Content-Digest``,
    ``Signature-Input`` and ``Signature``.

    :param key_id: our public URL, where peers find our key.
    :param url: the absolute URL exactly as it goes on the wire.
    :param now: the current time (the injected clock's ``seconds()``).
    :param nonce: a fresh random value, never used before.
    """
    _, headers = create_signature(
        key.sign,
        method,
        url,
        {},
        COVERED_COMPONENTS,
        created=int(now),
        key_id=key_id,
        nonce=nonce,
        body=body,
    )
    return headers


def _fields(headers: Mapping[str, str]) -> dict[str, str]:
    """
    Header fields by lower-case name.
    """
    return {name.lower(): value for name, value in headers.items()}


def _parse_dictionary(value: str, title: str) -> dict[str, Any]:
    """
    A Dictionary Structured Field (RFC 8941), or :class:`SignatureError`.
    """

    def duplicate(key: str, context: str) -> None:
        if context == "dictionary":
            raise ValueError(f"{key!r} appears twice")

    try:
        parsed: Any = http_sf.parse(
            value.encode("latin-1"), tltype="dictionary", on_duplicate_key=duplicate
        )
    except Exception as e:  # untrusted input: whatever the parser refuses
        raise SignatureError(f"malformed {title} header: {e}") from None
    if not isinstance(parsed, dict):
        raise SignatureError(f"malformed {title} header: not a dictionary")
    return parsed


def _dictionary(fields: Mapping[str, str], name: str) -> dict[str, Any]:
    """
    The header field ``name`` as a Dictionary, or :class:`SignatureError`.
    """
    title = _HEADER_NAMES[name]
    value = fields.get(name)
    if value is None:
        raise SignatureError(f"missing {title} header")
    return _parse_dictionary(value, title)


def _component_name(item: Any) -> str:
    value, params = item
    if not isinstance(value, str):
        raise SignatureError("malformed Signature-Input header: a component is not a string")
    if not params:
        return value
    return str(http_sf.ser((value, params)))


def _signature_params(fields: Mapping[str, str]) -> tuple[str, SignatureParams]:
    """
    The label and parameters of the request's one signature.
    """
    inputs = _dictionary(fields, "signature-input")
    if len(inputs) != 1:
        raise SignatureError(
            f"expected one signature in Signature-Input, found {len(inputs)}"
        )
    [(label, (members, params))] = inputs.items()
    if not isinstance(members, list):
        raise SignatureError(
            f"malformed Signature-Input header: {label!r} is not a list of components"
        )
    covered = tuple(_component_name(item) for item in members)
    keyid = params.get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureError("the signature has no keyid")
    created, expires = params.get("created"), params.get("expires")
    for name, value in (("created", created), ("expires", expires)):
        if value is not None and (type(value) is not int):
            raise SignatureError(f"malformed Signature-Input header: {name} is not an integer")
    alg, nonce = params.get("alg"), params.get("nonce")
    for name, value in (("alg", alg), ("nonce", nonce)):
        if value is not None and not isinstance(value, str):
            raise SignatureError(f"malformed Signature-Input header: {name} is not a string")
    return label, SignatureParams(
        keyid=keyid, created=created, nonce=nonce, alg=alg, expires=expires, covered=covered
    )


def parse_key_id(headers: Mapping[str, str]) -> str:
    """
    Who says they signed the request: the ``keyid`` of its signature, so
    the caller can fetch that key before :func:`verify_signature`.

    :param headers: the request's header fields (any case).
    :raise SignatureError: no signature, or a malformed one.
    """
    return _signature_params(_fields(headers))[1].keyid


def _check_time(params: SignatureParams, now: float, max_skew: float) -> None:
    if params.created is None:
        raise SignatureError("the signature has no created time")
    age = now - params.created
    if age > max_skew:
        raise SignatureError(
            f"stale signature: created {age:.0f} s ago, more than the {max_skew:g} s allowed"
        )
    if -age > max_skew:
        raise SignatureError(
            f"signature created {-age:.0f} s in the future, more than the"
            f" {max_skew:g} s of clock skew allowed"
        )
    if params.expires is not None and params.expires < now:
        raise SignatureError(f"the signature expired {now - params.expires:.0f} s ago")


_DIGESTS: dict[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-512": hashlib.sha512,
}


def _check_digest(value: str, body: bytes) -> None:
    """
    ``body`` against a Content-Digest field value (RFC 9530): every
    sha-256 and sha-512 member must match; other algorithms are ignored,
    as the RFC asks, but at least one we know must be there.
    """
    parsed = _parse_dictionary(value, "Content-Digest")
    known = {name: member for name, member in parsed.items() if name in _DIGESTS}
    if not known:
        raise SignatureError("Content-Digest has no sha-256 or sha-512 digest")
    for name, (digest, _) in known.items():
        if not isinstance(digest, bytes):
            raise SignatureError(f"malformed Content-Digest header: {name} is not a byte sequence")
        if not hmac.compare_digest(digest, _DIGESTS[name](body).digest()):
            raise SignatureError(f"the body does not match its Content-Digest ({name})")


def check_request(
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_skew: float = 60,
    required_components: Iterable[str] = COVERED_COMPONENTS,
) -> SignatureParams:
    """
    Everything about a request's signature that needs no key: the headers
    are there and well formed, one signature, the algorithm, the covered
    components, the time, and the body against its digest.  A verifier
    calls this before fetching a key, so junk costs no fetch;
    :func:`verify_signature` calls it too.

    :return: the signature's parameters (``keyid`` says whose key to get).
    :raise SignatureError: what is wrong, said precisely.
    """
    fields = _fields(headers)
    required = tuple(required_components)
    label, params = _signature_params(fields)
    signatures = _dictionary(fields, "signature")
    if set(signatures) != {label}:
        raise SignatureError(
            f"Signature and Signature-Input disagree: {sorted(signatures)} and [{label!r}]"
        )
    if not isinstance(signatures[label][0], bytes):
        raise SignatureError("malformed Signature header: the signature is not a byte sequence")
    if params.alg is not None and params.alg != ALGORITHM:
        raise SignatureError(f"unsupported algorithm {params.alg!r}: only {ALGORITHM!r}")
    missing = [name for name in required if name not in params.covered]
    if missing:
        raise SignatureError(
            "the signature does not cover " + ", ".join(f'"{name}"' for name in missing)
        )
    _check_time(params, now, max_skew)
    if "content-digest" in required:
        if "content-digest" not in fields:
            raise SignatureError("missing Content-Digest header")
        _check_digest(fields["content-digest"], body)
    return params


def verify_signature(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    public_key: Ed25519PublicKey,
    now: float,
    max_skew: float = 60,
    required_components: Iterable[str] = COVERED_COMPONENTS,
) -> SignatureParams:
    """
    Check a request's signature.

    :param url: the absolute target URI as the signer saw it.
    :param headers: the request's header fields (any case; several lines
        of one field joined with ``", "``).
    :param body: the request body (checked against ``Content-Digest`` when
        ``content-digest`` is among ``required_components``).
    :param public_key: the key of the signer named by :func:`parse_key_id`.
    :param now: the current time, Unix seconds.
    :param max_skew: how far ``created`` may be from ``now``, either way.
    :param required_components: what the signature must cover.
    :return: the signature's parameters.
    :raise BadSignature: the signature does not verify with ``public_key``.
    :raise SignatureError: anything else wrong, said precisely.
    """
    required = tuple(required_components)
    params = check_request(headers, body, now, max_skew, required)
    verifier = _Verifier(
        signature_algorithm=ED25519, key_resolver=_OneKey(params.keyid, public_key)
    )
    try:
        verifier.verify(
            _Message(method.upper(), url, _fields(headers)),
            max_age=None,
            require_components=required,
        )
    except InvalidSignature as e:
        if isinstance(e.__cause__, CryptographyInvalidSignature):
            raise BadSignature(f"bad signature from {params.keyid}") from None
        raise SignatureError(f"bad signature: {e}") from None
    except HTTPMessageSignaturesException as e:
        raise SignatureError(f"bad signature: {e}") from None
    return params
