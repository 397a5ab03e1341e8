"""
The server-to-server layer: keys, RFC 9421 signatures, the metadata
document, the signed client and the verifier — in memory, on a Clock.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, cast

from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface.verify import verifyObject

from distwit.s2s.client import S2SClient, make_http_client
from distwit.s2s.interfaces import (
    IRequestVerifier,
    IS2SClient,
    S2SResponseError,
    SignatureError,
)
from distwit.config import DataFolder
from distwit.s2s.keys import ServerKey, b64url_decode, public_key_from_b64
from distwit.s2s.metadata import (
    MetadataResource,
    metadata_document,
    parse_metadata,
)
from distwit.s2s.signatures import (
    COVERED_COMPONENTS,
    BadSignature,
    content_digest,
    create_signature,
    parse_key_id,
    sign_request,
    verify_signature,
)
from distwit.s2s.verifier import SignatureVerifier, metadata_fetcher
from tests import rfc9421_vectors as rfc

SIGNER = "https://s1.example"
RECEIVER = "https://s2.example"
URL = RECEIVER + "/s2s/follow?x=1"
BODY = b'{"follower":"alice@s1.example"}'
NOW = 1_700_000_000.0


def _sign(
    key: ServerKey,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: float = NOW,
    nonce: str = "nonce-1",
    key_id: str = SIGNER,
) -> dict[str, str]:
    return sign_request(key, key_id, method, url, body, now, nonce)


class KeyTests(SynchronousTestCase):
    """
    ``ServerKey``: the file in the data folder and the public half.
    """

    def test_create_then_load(self) -> None:
        """
        The first start creates ``server-key.pem`` (PKCS#8 PEM, mode 0600);
        the next start loads the same key from it.
        """
        data = self.mktemp()
        path = DataFolder(data).server_key
        created = ServerKey.load_or_create(path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(b"-----BEGIN PRIVATE KEY-----\n"))
        loaded = ServerKey.load_or_create(path)
        self.assertEqual(loaded.public_key_b64(), created.public_key_b64())
        self.assertEqual(os.listdir(data), ["server-key.pem"])  # no temporary left

    def test_unusable_file_is_an_error(self) -> None:
        """
        A key file that holds no Ed25519 key is an error naming the file,
        never silently replaced by a new identity.
        """
        data = self.mktemp()
        os.makedirs(data)
        path = DataFolder(data).server_key
        with open(path, "wb") as f:
            f.write(b"not a key")
        error = self.assertRaises(ValueError, ServerKey.load_or_create, path)
        self.assertIn(path, str(error))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"not a key")

    def test_public_key_round_trip(self) -> None:
        """
        The published public key is 32 raw bytes in unpadded base64url, and
        reading it back verifies what the key signs.
        """
        key = ServerKey.generate()
        text = key.public_key_b64()
        self.assertEqual(len(b64url_decode(text)), 32)
        self.assertNotIn("=", text)
        public = public_key_from_b64(text)
        public.verify(key.sign(b"hello"), b"hello")  # raises if wrong

    def test_public_key_junk(self) -> None:
        """
        Junk where a public key should be is a ValueError: other alphabets,
        wrong lengths, not text at all.
        """
        good = ServerKey.generate().public_key_b64()
        for junk in ["", "!!!!", good[:-2], good + "AAAA", good.replace(good[0], "+"), "é" * 43]:
            self.assertRaises(ValueError, public_key_from_b64, junk)
        self.assertRaises(ValueError, public_key_from_b64, cast(str, None))

    def test_repr_hides_private_key(self) -> None:
        """
        A key in a log line or traceback shows only its public half.
        """
        key = ServerKey.generate()
        self.assertEqual(repr(key), f"<ServerKey public={key.public_key_b64()}>")


class RFCVectorTests(SynchronousTestCase):
    """
    Our signatures are RFC 9421's and our digests RFC 9530's: the published
    examples come out byte for byte.
    """

    def setUp(self) -> None:
        self.key = ServerKey.from_pem(rfc.ED25519_PRIVATE_PEM)

    def test_b14_key(self) -> None:
        """
        The B.1.4 private key has the public key the RFC's JWK gives.
        """
        self.assertEqual(self.key.public_key_b64(), rfc.ED25519_JWK_X)

    def test_b26_signature_base_and_signature(self) -> None:
        """
        Signing the B.2 test request as B.2.6 does gives the RFC's signature
        base, ``Signature-Input`` and ``Signature`` exactly (Ed25519 is
        deterministic, so this checks every byte of the base).
        """
        base, headers = create_signature(
            self.key.sign,
            rfc.TEST_REQUEST_METHOD,
            rfc.TEST_REQUEST_URL,
            rfc.TEST_REQUEST_HEADERS,
            rfc.B26_COVERED,
            created=rfc.B26_CREATED,
            key_id=rfc.ED25519_KEY_ID,
            label=rfc.B26_LABEL,
            include_alg=False,
        )
        self.assertEqual(base, rfc.B26_SIGNATURE_BASE)
        self.assertEqual(
            headers,
            {"Signature-Input": rfc.B26_SIGNATURE_INPUT, "Signature": rfc.B26_SIGNATURE},
        )

    def test_b26_verifies(self) -> None:
        """
        The RFC's B.2.6 signature verifies with the RFC's public key, and
        its parameters are read back.
        """
        headers = dict(
            rfc.TEST_REQUEST_HEADERS,
            **{"Signature-Input": rfc.B26_SIGNATURE_INPUT, "Signature": rfc.B26_SIGNATURE},
        )
        params = verify_signature(
            rfc.TEST_REQUEST_METHOD,
            rfc.TEST_REQUEST_URL,
            headers,
            rfc.TEST_REQUEST_BODY,
            public_key_from_b64(rfc.ED25519_JWK_X),
            now=rfc.B26_CREATED + 5,
            required_components=rfc.B26_COVERED,
        )
        self.assertEqual(
            (params.keyid, params.created, params.nonce, params.alg),
            (rfc.ED25519_KEY_ID, rfc.B26_CREATED, None, None),
        )
        self.assertEqual(parse_key_id(headers), rfc.ED25519_KEY_ID)

    def test_b26_is_not_enough_for_distwit(self) -> None:
        """
        A valid signature that covers neither the target URI nor the body
        is refused by distwit's policy, saying what is missing.
        """
        headers = dict(
            rfc.TEST_REQUEST_HEADERS,
            **{"Signature-Input": rfc.B26_SIGNATURE_INPUT, "Signature": rfc.B26_SIGNATURE},
        )
        error = self.assertRaises(
            SignatureError,
            verify_signature,
            rfc.TEST_REQUEST_METHOD,
            rfc.TEST_REQUEST_URL,
            headers,
            rfc.TEST_REQUEST_BODY,
            public_key_from_b64(rfc.ED25519_JWK_X),
            rfc.B26_CREATED,
        )
        self.assertEqual(
            str(error), 'the signature does not cover "@target-uri", "content-digest"'
        )

    def test_rfc9530_b1_content_digest(self) -> None:
        """
        Our Content-Digest of RFC 9530 B.1's body is the RFC's.
        """
        self.assertEqual(content_digest(rfc.DIGEST_B1_BODY), rfc.DIGEST_B1_SHA256)

    def test_rfc9421_test_request_sha512_digest(self) -> None:
        """
        The sha-512 Content-Digest of RFC 9421's test request is accepted
        for its body (we check sha-512 as well as sha-256) and refused for
        another body.
        """
        headers = {"Content-Digest": rfc.TEST_REQUEST_HEADERS["Content-Digest"]}
        _, added = create_signature(
            self.key.sign,
            "POST",
            URL,
            headers,
            COVERED_COMPONENTS,
            created=int(NOW),
            key_id=SIGNER,
            nonce="n",
        )
        headers.update(added)
        public = self.key.public_key
        verify_signature("POST", URL, headers, rfc.TEST_REQUEST_BODY, public, NOW)
        error = self.assertRaises(
            SignatureError, verify_signature, "POST", URL, headers, rfc.DIGEST_B1_BODY, public, NOW
        )
        self.assertEqual(str(error), "the body does not match its Content-Digest (sha-512)")


class SignatureTests(SynchronousTestCase):
    """
    ``sign_request`` and ``verify_signature``: a round trip, and each way a
    request can be wrong, refused with a message that says which.
    """

    def setUp(self) -> None:
        self.key = ServerKey.generate()
        self.headers = _sign(self.key)
        self.signature_input = self.headers["Signature-Input"]

    def with_input(self, signature_input: str) -> dict[str, str]:
        return dict(self.headers, **{"Signature-Input": signature_input})

    def refused(
        self,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        url: str = URL,
        body: bytes = BODY,
        now: float = NOW,
        key: ServerKey | None = None,
    ) -> SignatureError:
        return self.assertRaises(
            SignatureError,
            verify_signature,
            method,
            url,
            self.headers if headers is None else headers,
            body,
            (key or self.key).public_key,
            now,
        )

    def test_headers_added(self) -> None:
        """
        A signed request carries Content-Digest (sha-256 of the body) and a
        ``sig1`` signature over method, target URI and digest, with created,
        keyid, alg and nonce.
        """
        self.assertEqual(
            sorted(self.headers), ["Content-Digest", "Signature", "Signature-Input"]
        )
        self.assertEqual(self.headers["Content-Digest"], content_digest(BODY))
        self.assertEqual(
            self.headers["Signature-Input"],
            'sig1=("@method" "@target-uri" "content-digest");created=1700000000'
            ';keyid="https://s1.example";alg="ed25519";nonce="nonce-1"',
        )
        self.assertTrue(self.headers["Signature"].startswith("sig1=:"))

    def test_round_trip(self) -> None:
        """
        What ``sign_request`` signs, ``verify_signature`` accepts, whatever
        the case of the header names, and returns keyid, created and nonce.
        """
        lower = {name.lower(): value for name, value in self.headers.items()}
        for headers in (self.headers, lower):
            params = verify_signature("POST", URL, headers, BODY, self.key.public_key, NOW + 1)
            self.assertEqual(
                (params.keyid, params.created, params.nonce), (SIGNER, int(NOW), "nonce-1")
            )

    def test_empty_body(self) -> None:
        """
        A GET is signed over the digest of an empty body, and verifies.
        """
        headers = _sign(self.key, method="GET", body=b"")
        verify_signature("GET", URL, headers, b"", self.key.public_key, NOW)

    def test_tampered_body(self) -> None:
        """
        Another body than the one signed is refused: it does not match the
        signed digest.
        """
        error = self.refused(body=b'{"follower":"mallory@s1.example"}')
        self.assertEqual(str(error), "the body does not match its Content-Digest (sha-256)")

    def test_tampered_digest(self) -> None:
        """
        Changing the digest along with the body breaks the signature.
        """
        other = b"{}"
        headers = dict(self.headers, **{"Content-Digest": content_digest(other)})
        self.assertIsInstance(self.refused(headers, body=other), BadSignature)

    def test_tampered_path_or_query(self) -> None:
        """
        The signature is for one target URI: another path, query, host or
        scheme does not verify.
        """
        for url in (
            RECEIVER + "/s2s/unfollow?x=1",
            RECEIVER + "/s2s/follow?x=2",
            "https://evil.example/s2s/follow?x=1",
            "http://s2.example/s2s/follow?x=1",
        ):
            error = self.refused(url=url)
            self.assertIsInstance(error, BadSignature)
            self.assertEqual(str(error), "bad signature from https://s1.example")

    def test_other_method(self) -> None:
        """
        The signature is for one method.
        """
        self.assertIsInstance(self.refused(method="PUT"), BadSignature)

    def test_wrong_key(self) -> None:
        """
        A signature made by another key than the signer's is refused.
        """
        self.assertIsInstance(self.refused(key=ServerKey.generate()), BadSignature)

    def test_stale(self) -> None:
        """
        A signature created more than ``max_skew`` seconds ago is refused as
        stale; at exactly ``max_skew`` it still passes.
        """
        verify_signature("POST", URL, self.headers, BODY, self.key.public_key, NOW + 60)
        error = self.refused(now=NOW + 61)
        self.assertEqual(
            str(error), "stale signature: created 61 s ago, more than the 60 s allowed"
        )

    def test_future(self) -> None:
        """
        A signature created more than ``max_skew`` seconds in our future is
        refused.
        """
        verify_signature("POST", URL, self.headers, BODY, self.key.public_key, NOW - 60)
        error = self.refused(now=NOW - 61)
        self.assertEqual(
            str(error),
            "signature created 61 s in the future, more than the 60 s of clock skew allowed",
        )

    def test_missing_headers(self) -> None:
        """
        Each of the three headers missing is named.
        """
        for name in ("Signature", "Signature-Input", "Content-Digest"):
            headers = {k: v for k, v in self.headers.items() if k != name}
            self.assertEqual(str(self.refused(headers)), f"missing {name} header")

    def test_garbage_headers(self) -> None:
        """
        Headers that are not the Structured Fields they should be are
        refused as malformed, whichever one it is.
        """
        cases = {
            "Signature-Input": ["sig1=(((", "sig1", '"just a string"'],
            "Signature": ["sig1=not-bytes", "sig1=:!!!:"],
            "Content-Digest": ["sha-256=garbage(", "sha-256"],
        }
        for name, values in cases.items():
            for value in values:
                error = self.refused(dict(self.headers, **{name: value}))
                self.assertTrue(
                    str(error).startswith(f"malformed {name} header"),
                    f"{name}: {value!r} gave {error}",
                )

    def test_wrong_alg(self) -> None:
        """
        A signature naming another algorithm than ed25519 is refused.
        """
        headers = self.with_input(self.signature_input.replace("ed25519", "rsa-pss-sha512"))
        self.assertEqual(
            str(self.refused(headers)), "unsupported algorithm 'rsa-pss-sha512': only 'ed25519'"
        )

    def test_missing_components(self) -> None:
        """
        A genuine signature that leaves out a required component is refused,
        naming what is not covered.
        """
        _, headers = create_signature(
            self.key.sign,
            "POST",
            URL,
            {"Content-Digest": content_digest(BODY)},
            ("@method", "content-digest"),
            created=int(NOW),
            key_id=SIGNER,
            nonce="n",
        )
        headers["Content-Digest"] = content_digest(BODY)
        self.assertEqual(
            str(self.refused(headers)), 'the signature does not cover "@target-uri"'
        )

    def test_no_created(self) -> None:
        """
        A signature without ``created`` is refused: its age is unknown.
        """
        headers = self.with_input(self.signature_input.replace(";created=1700000000", ""))
        self.assertEqual(str(self.refused(headers)), "the signature has no created time")

    def test_two_signatures(self) -> None:
        """
        More than one signature is refused rather than guessed between.
        """
        headers = self.with_input(
            self.signature_input + ', sig2=("@method");created=1;keyid="x"'
        )
        self.assertEqual(
            str(self.refused(headers)), "expected one signature in Signature-Input, found 2"
        )

    def test_parse_key_id(self) -> None:
        """
        ``parse_key_id`` names the signer before any key is at hand, and an
        unsigned request has none.
        """
        self.assertEqual(parse_key_id(self.headers), SIGNER)
        self.assertRaises(SignatureError, parse_key_id, {})


class FakeRequest:
    """
    What the verifier reads of a ``twisted.web`` request.
    """

    def __init__(self, method: str, uri: str, headers: dict[str, str]) -> None:
        self.method = method.encode("ascii")
        self.uri = uri.encode("latin-1")
        self.requestHeaders = Headers()
        for name, value in headers.items():
            self.requestHeaders.addRawHeader(name.encode("ascii"), value.encode("latin-1"))


class FakeMetadata:
    """
    ``fetch_metadata`` from a dict of documents; counts the fetches; with
    ``hold`` set, leaves them pending in ``pending``.
    """

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.fetches: list[str] = []
        self.hold = False
        self.pending: list[Deferred[Any]] = []

    def publish(self, url: str, key: ServerKey) -> None:
        self.documents[url] = metadata_document(url, "twitter", ["twitter"], key, {}, "0.1.0")

    def __call__(self, key_id: str) -> Deferred[Any]:
        self.fetches.append(key_id)
        if self.hold:
            d: Deferred[Any] = Deferred()
            self.pending.append(d)
            return d
        if key_id not in self.documents:
            return fail(S2SResponseError(f"GET {key_id}/.well-known/distwit: HTTP 404 Not Found"))
        return succeed(self.documents[key_id])


class VerifierTests(SynchronousTestCase):
    """
    ``SignatureVerifier``: whose key, cached how long, which URL, replays.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.key = ServerKey.generate()
        self.metadata = FakeMetadata()
        self.metadata.publish(SIGNER, self.key)
        self.verifier = SignatureVerifier(self.metadata, self.clock, RECEIVER)
        self.nonces = 0

    def request(
        self,
        key: ServerKey | None = None,
        key_id: str = SIGNER,
        path: str = "/s2s/follow?x=1",
        signed_url: str | None = None,
        extra: dict[str, str] | None = None,
        nonce: str | None = None,
    ) -> FakeRequest:
        self.nonces += 1
        headers = sign_request(
            key or self.key,
            key_id,
            "POST",
            signed_url or RECEIVER + path,
            BODY,
            self.clock.seconds(),
            nonce or f"nonce-{self.nonces}",
        )
        headers.update(extra or {})
        return FakeRequest("POST", path, headers)

    def accepted(self, request: FakeRequest, body: bytes = BODY) -> str:
        return cast(str, self.successResultOf(self.verifier.verify(request, body)))

    def refused(self, request: FakeRequest, body: bytes = BODY) -> SignatureError:
        failure = self.failureResultOf(self.verifier.verify(request, body), SignatureError)
        return cast(SignatureError, failure.value)

    def test_interface(self) -> None:
        """
        The verifier provides IRequestVerifier.
        """
        self.assertTrue(verifyObject(IRequestVerifier, self.verifier))

    def test_accepts(self) -> None:
        """
        A request signed by a server with its published key is accepted and
        answered with the signer's public URL.
        """
        self.assertEqual(self.accepted(self.request()), SIGNER)
        self.assertEqual(self.metadata.fetches, [SIGNER])

    def test_target_from_our_public_url(self) -> None:
        """
        The target URI is our public URL plus the request's path and query,
        whatever Host the request came with: behind a reverse proxy that
        strips a path prefix, signatures still verify.
        """
        verifier = SignatureVerifier(self.metadata, self.clock, "https://s2.example/distwit")
        request = self.request(
            signed_url="https://s2.example/distwit/s2s/follow?x=1",
            extra={"Host": "127.0.0.1:8080"},
        )
        self.assertEqual(self.successResultOf(verifier.verify(request, BODY)), SIGNER)
        # …and a request signed for another server is not ours.
        request = self.request(signed_url="https://s3.example/s2s/follow?x=1")
        self.assertIsInstance(self.refused(request), BadSignature)

    def test_tampered_body(self) -> None:
        """
        A body changed on the way is refused.
        """
        error = self.refused(self.request(), body=b"{}")
        self.assertEqual(str(error), "the body does not match its Content-Digest (sha-256)")

    def test_replay(self) -> None:
        """
        The same signed request twice: the second is refused as replayed.
        """
        request = self.request()
        self.accepted(request)
        self.assertEqual(str(self.refused(request)), "replayed: nonce 'nonce-1' was already used")

    def test_nonce_memory_is_bounded(self) -> None:
        """
        Nonces are forgotten once their signature is stale anyway, so memory
        does not grow with time, and a replay after that is still refused
        (as stale).
        """
        first = self.request()
        self.accepted(first)
        for _ in range(10):
            self.clock.advance(10)
            self.accepted(self.request())
        self.assertEqual(self.verifier.remembered_nonces(), 7)
        self.clock.advance(61)
        self.assertEqual(self.verifier.remembered_nonces(), 0)
        self.assertTrue(str(self.refused(first)).startswith("stale signature"))

    def test_missing_nonce(self) -> None:
        """
        A signature without a nonce is refused: replays could not be told.
        """
        _, headers = create_signature(
            self.key.sign, "POST", URL, {}, COVERED_COMPONENTS, int(NOW), SIGNER, body=BODY
        )
        error = self.refused(FakeRequest("POST", "/s2s/follow?x=1", headers))
        self.assertEqual(str(error), "the signature has no nonce")

    def test_unsigned(self) -> None:
        """
        A request without a signature is refused before anything is fetched.
        """
        error = self.refused(FakeRequest("POST", "/s2s/follow", {}))
        self.assertEqual(str(error), "missing Signature-Input header")
        self.assertEqual(self.metadata.fetches, [])

    def test_stale_costs_no_fetch(self) -> None:
        """
        What can be refused without the signer's key is refused before
        fetching it: stale or tampered requests cost the signer nothing.
        """
        request = self.request()
        self.clock.advance(61)
        self.assertTrue(str(self.refused(request)).startswith("stale signature"))
        self.refused(self.request(), body=b"{}")
        self.assertEqual(self.metadata.fetches, [])

    def test_http_keyid_refused_when_https(self) -> None:
        """
        An https server takes no http:// signer, and does not even fetch its
        key; an http server (development) does.
        """
        key_id = "http://s3.example:8080"
        self.metadata.publish(key_id, self.key)
        error = self.refused(self.request(key_id=key_id))
        self.assertEqual(
            str(error),
            "keyid 'http://s3.example:8080' is plain http://;"
            " this server only accepts https:// peers",
        )
        self.assertEqual(self.metadata.fetches, [])
        plain = SignatureVerifier(self.metadata, self.clock, "http://s2.example")
        request = self.request(key_id=key_id, signed_url="http://s2.example/s2s/follow?x=1")
        self.assertEqual(self.successResultOf(plain.verify(request, BODY)), key_id)

    def test_keyid_must_be_a_public_url(self) -> None:
        """
        A keyid that is not an http(s) public URL is refused unfetched.
        """
        for key_id in (
            "test-key",
            "ftp://s1.example",
            "https://s1.example/",
            "https://s1.example?x",
            "https://u@s1.example",
        ):
            error = self.refused(self.request(key_id=key_id))
            self.assertIn(repr(key_id), str(error))
        self.assertEqual(self.metadata.fetches, [])

    def test_key_is_cached(self) -> None:
        """
        The signer's key is fetched once and kept five minutes.
        """
        self.accepted(self.request())
        self.clock.advance(299)
        self.accepted(self.request())
        self.assertEqual(self.metadata.fetches, [SIGNER])
        self.clock.advance(1)
        self.accepted(self.request())
        self.assertEqual(self.metadata.fetches, [SIGNER, SIGNER])

    def test_key_rotation(self) -> None:
        """
        When a signer's new key fails against our cached one, the key is
        fetched again, once, and the request accepted.
        """
        self.accepted(self.request())
        self.clock.advance(30)
        new_key = ServerKey.generate()
        self.metadata.publish(SIGNER, new_key)
        self.assertEqual(self.accepted(self.request(key=new_key)), SIGNER)
        self.assertEqual(self.metadata.fetches, [SIGNER, SIGNER])

    def test_forgery_refetches_at_most_once(self) -> None:
        """
        Requests signed by the wrong key make us look for a new key at most
        once per refetch interval, then are refused as a bad signature.
        """
        self.accepted(self.request())
        self.clock.advance(30)
        mallory = ServerKey.generate()
        for _ in range(5):
            error = self.refused(self.request(key=mallory))
            self.assertEqual(str(error), "bad signature from https://s1.example")
        self.assertEqual(self.metadata.fetches, [SIGNER, SIGNER])

    def test_unreachable_signer(self) -> None:
        """
        When the signer's metadata cannot be had, the request is refused
        without saying what the signer's server answered, and the failure is
        remembered for a while instead of fetching on every request.
        """
        key_id = "https://gone.example"
        error = self.refused(self.request(key_id=key_id))
        self.assertEqual(str(error), "cannot get the key of https://gone.example")
        self.refused(self.request(key_id=key_id))
        self.assertEqual(self.metadata.fetches, [key_id])
        self.clock.advance(10)
        self.refused(self.request(key_id=key_id))
        self.assertEqual(self.metadata.fetches, [key_id, key_id])

    def test_metadata_of_another_server(self) -> None:
        """
        A metadata document that names another public URL than the keyid
        gives no key.
        """
        key_id = "https://liar.example"
        self.metadata.documents[key_id] = self.metadata.documents[SIGNER]
        error = self.refused(self.request(key_id=key_id))
        self.assertEqual(str(error), "cannot get the key of https://liar.example")

    def test_concurrent_fetches_share_one(self) -> None:
        """
        Requests that arrive while the signer's key is being fetched wait
        for that one fetch.
        """
        self.metadata.hold = True
        first = self.verifier.verify(self.request(), BODY)
        second = self.verifier.verify(self.request(), BODY)
        self.assertNoResult(first)
        self.assertEqual(len(self.metadata.pending), 1)
        self.metadata.pending[0].callback(self.metadata.documents[SIGNER])
        self.assertEqual(self.successResultOf(first), SIGNER)
        self.assertEqual(self.successResultOf(second), SIGNER)


class MetadataTests(SynchronousTestCase):
    """
    The metadata document, its resource and its parser.
    """

    def setUp(self) -> None:
        self.key = ServerKey.generate()
        self.document = metadata_document(
            "https://s1.example:8443",
            "all",
            ["registry", "ping", "twitter"],
            self.key,
            {"s2s": "https://s1.example:8443/s2s"},
            "0.1.0",
        )

    def test_document(self) -> None:
        """
        The document gives authority, public URL, roles, key and endpoints.
        """
        self.assertEqual(
            self.document,
            {
                "authority": "s1.example:8443",
                "public_url": "https://s1.example:8443",
                "role": "all",
                "roles": ["registry", "ping", "twitter"],
                "key_id": "https://s1.example:8443",
                "public_key": self.key.public_key_b64(),
                "alg": "ed25519",
                "endpoints": {"s2s": "https://s1.example:8443/s2s"},
                "software": {"name": "distwit", "version": "0.1.0"},
            },
        )

    def test_resource(self) -> None:
        """
        GET serves the document as JSON, cacheable five minutes; HEAD the
        same without a body; other methods are not allowed.
        """
        stub = metadata_site(self.document)
        response = self.successResultOf(stub.get("https://s1.example:8443/.well-known/distwit"))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"cache-control"), [b"max-age=300"])
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"), [b"application/json; charset=utf-8"]
        )
        self.assertEqual(json.loads(self.successResultOf(response.content())), self.document)
        response = self.successResultOf(stub.head("https://s1.example:8443/.well-known/distwit"))
        self.assertEqual((response.code, self.successResultOf(response.content())), (200, b""))
        response = self.successResultOf(stub.post("https://s1.example:8443/.well-known/distwit"))
        self.assertEqual(response.code, 405)
        response = self.successResultOf(stub.get("https://s1.example:8443/.well-known/distwit/x"))
        self.assertEqual(response.code, 404)

    def test_parse(self) -> None:
        """
        A server's own document parses back to its key and fields.
        """
        metadata = parse_metadata(self.document, "https://s1.example:8443")
        self.assertEqual(metadata.authority, "s1.example:8443")
        self.assertEqual(metadata.public_key_b64, self.key.public_key_b64())
        self.assertEqual(metadata.roles, ("registry", "ping", "twitter"))

    def test_parse_mismatch(self) -> None:
        """
        The document must be the one of the URL asked, exactly: another
        URL, even only a trailing slash apart, is refused.
        """
        for expected in (
            "https://s2.example",
            "https://s1.example:8443/",
            "http://s1.example:8443",
        ):
            error = self.assertRaises(S2SResponseError, parse_metadata, self.document, expected)
            self.assertIn("public_url is", str(error))

    def test_parse_bad_shapes(self) -> None:
        """
        Documents of the wrong shape are refused, naming the field.
        """
        cases: list[tuple[Any, str]] = [
            ([], "expected a JSON object"),
            (dict(self.document, public_key="junk"), "bad public_key"),
            (dict(self.document, alg="rsa"), "unsupported alg"),
            (dict(self.document, key_id="https://other.example"), "key_id"),
            (dict(self.document, authority="other.example"), "authority"),
            (dict(self.document, roles="ping"), "roles"),
            (dict(self.document, endpoints=[]), "endpoints"),
            ({k: v for k, v in self.document.items() if k != "software"}, "software"),
        ]
        for data, words in cases:
            error = self.assertRaises(
                S2SResponseError, parse_metadata, data, "https://s1.example:8443"
            )
            self.assertIn(words, str(error))


def metadata_site(document: dict[str, Any]) -> Any:
    """
    A StubTreq serving ``document`` at ``/.well-known/distwit``.
    """
    root = Resource()
    well_known = Resource()
    root.putChild(b".well-known", well_known)
    well_known.putChild(b"distwit", MetadataResource(document))
    return StubTreq(root)


class Recorder(Resource):
    """
    A peer for the client: records requests and answers as told.  With
    ``hold`` set, never answers.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.code = 200
        self.headers: dict[bytes, bytes] = {b"content-type": b"application/json"}
        self.body = b'{"ok":true}'
        self.chunks: list[bytes] | None = None
        self.hold = False
        self.hold_body = False

    def render(self, request: Any) -> Any:
        headers = {
            name.decode("latin-1").lower(): ", ".join(v.decode("latin-1") for v in values)
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        self.requests.append(
            (request.method.decode(), request.uri.decode(), headers, request.content.read())
        )
        if self.hold:
            return NOT_DONE_YET
        request.setResponseCode(self.code)
        for name, value in self.headers.items():
            request.setHeader(name, value)
        if self.chunks is not None:  # no Content-Length: chunked
            for chunk in self.chunks:
                request.write(chunk)
            if not self.hold_body:
                request.finish()
            return NOT_DONE_YET
        return self.body


class ClientTests(SynchronousTestCase):
    """
    ``S2SClient``: signed, capped in time and size, errors mapped.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.key = ServerKey.generate()
        self.peer = Recorder()
        self.stub: Any = StubTreq(self.peer)
        self.client = self.make_client(SIGNER)

    def make_client(self, public_url: str, **kwargs: Any) -> S2SClient:
        return S2SClient(
            cast(HTTPClient, self.stub), self.key, public_url, self.clock, **kwargs
        )

    def error(self, d: Deferred[Any]) -> str:
        self.stub.flush()
        return str(self.failureResultOf(d, S2SResponseError).value)

    def test_interface(self) -> None:
        """
        The client provides IS2SClient.
        """
        self.assertTrue(verifyObject(IS2SClient, self.client))

    def test_get_json_is_signed(self) -> None:
        """
        A GET carries a signature by our key, for the URL asked, that the
        peer verifies; the JSON answer is decoded.
        """
        d = self.client.get_json(RECEIVER + "/ping/lookup?acct=a@b.example")
        self.assertEqual(self.successResultOf(d), {"ok": True})
        [(method, uri, headers, body)] = self.peer.requests
        self.assertEqual((method, uri, body), ("GET", "/ping/lookup?acct=a@b.example", b""))
        self.assertEqual(parse_key_id(headers), SIGNER)
        params = verify_signature(
            "GET", RECEIVER + uri, headers, body, self.key.public_key, self.clock.seconds()
        )
        self.assertEqual(len(b64url_decode(cast(str, params.nonce))), 16)
        self.assertEqual(headers["accept"], "application/json")

    def test_post_json_is_signed(self) -> None:
        """
        A POST sends the value as JSON, digested and signed.
        """
        d = self.client.post_json(URL, {"follower": "alice@s1.example"})
        self.assertEqual(self.successResultOf(d), {"ok": True})
        [(method, uri, headers, body)] = self.peer.requests
        self.assertEqual(json.loads(body), {"follower": "alice@s1.example"})
        self.assertEqual(headers["content-type"], "application/json; charset=utf-8")
        verify_signature("POST", URL, headers, body, self.key.public_key, self.clock.seconds())

    def test_nonces_differ(self) -> None:
        """
        Two requests never share a nonce.
        """
        self.successResultOf(self.client.get_json(URL))
        self.successResultOf(self.client.get_json(URL))
        nonces = {parse_nonce(headers) for _, _, headers, _ in self.peer.requests}
        self.assertEqual(len(nonces), 2)

    def test_oversized_content_length(self) -> None:
        """
        An answer whose Content-Length is over the cap is refused unread.
        """
        client = self.make_client(SIGNER, max_size=100)
        self.peer.body = b'"' + b"x" * 200 + b'"'
        self.assertEqual(
            self.error(client.get_json(URL)),
            f"GET {URL}: the answer is 202 bytes, more than the 100 allowed",
        )

    def test_oversized_chunked(self) -> None:
        """
        An answer of unknown length is cut off once it passes the cap.
        """
        self.peer.chunks = [b"x" * 60] * 5
        self.assertEqual(
            self.error(self.client.get_bytes(URL, max_size=100)),
            f"GET {URL}: the answer is over 100 bytes",
        )
        self.peer.chunks = [b"x" * 60]
        d = self.client.get_bytes(URL, max_size=100)
        self.stub.flush()
        self.assertEqual(self.successResultOf(d), b"x" * 60)

    def test_non_2xx_mapped(self) -> None:
        """
        An error status becomes S2SResponseError with the status and, for
        Twitter or distwit JSON errors, the peer's message.
        """
        cases = [
            (404, b'{"errors":[{"code":34,"message":"Sorry, that page does not exist"}]}',
             "HTTP 404 Not Found: Sorry, that page does not exist (code 34)"),
            (401, b'{"error":"replayed: nonce \'x\' was already used"}',
             "HTTP 401 Unauthorized: replayed: nonce 'x' was already used"),
            (502, b"<html>Bad gateway</html>", "HTTP 502 Bad Gateway"),
            (302, b"", "HTTP 302 Found"),  # redirects are not followed
        ]
        for code, body, words in cases:
            self.peer.code, self.peer.body = code, body
            self.peer.headers[b"location"] = b"https://elsewhere.example/"
            self.assertEqual(self.error(self.client.get_json(URL)), f"GET {URL}: {words}")
        self.assertEqual(len(self.peer.requests), 4)

    def test_not_json(self) -> None:
        """
        A 200 answer that is not JSON, where JSON is expected, is refused.
        """
        self.peer.body = b"<html></html>"
        self.assertIn("the answer is not JSON", self.error(self.client.get_json(URL)))
        d = self.client.get_bytes(URL)
        self.assertEqual(self.successResultOf(d), b"<html></html>")

    def test_timeout(self) -> None:
        """
        A peer that does not answer fails the request after the timeout.
        """
        self.peer.hold = True
        d = self.client.get_json(URL)
        self.clock.advance(9.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.error(d), f"GET {URL}: no answer")

    def test_slow_body(self) -> None:
        """
        The timeout covers the body too: a peer that sends the head and
        then stalls fails the request when the time is up.
        """
        self.peer.chunks, self.peer.hold_body = [b'{"partial":'], True
        d = self.client.get_json(URL)
        self.stub.flush()
        self.clock.advance(9)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.assertEqual(self.error(d), f"GET {URL}: the answer was not complete in time")

    def test_timeout_override(self) -> None:
        """
        ``post_json(timeout=…)`` gives a long-poll its own, longer timeout.
        """
        self.peer.hold = True
        d = self.client.post_json(URL, {}, timeout=40)
        self.clock.advance(39)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.assertEqual(self.error(d), f"POST {URL}: no answer")

    def test_caller_cancel(self) -> None:
        """
        A caller cancelling a request (a service stopping) gets its
        cancellation, not a peer error.
        """
        from twisted.internet.defer import CancelledError

        self.peer.hold = True
        d = self.client.get_json(URL)
        d.cancel()
        self.failureResultOf(d, CancelledError)

    def test_http_refused_when_https(self) -> None:
        """
        An https server refuses to send to an http:// URL, before any
        connection; an http server (development) may.
        """
        error = self.error(self.client.get_json("http://s3.example/ping/lookup"))
        self.assertEqual(
            error,
            "refusing http://s3.example/ping/lookup:"
            " this server is https://, so its peers must be too",
        )
        self.assertEqual(self.peer.requests, [])
        plain = self.make_client("http://localhost:8080")
        self.assertEqual(self.successResultOf(plain.get_json("http://s3.example/x")), {"ok": True})

    def test_bad_urls(self) -> None:
        """
        URLs that are not http(s) are refused before any connection.
        """
        for url in ("ftp://s3.example/x", "/relative", "https://user:pw@s3.example/"):
            self.assertIn("refusing", self.error(self.client.get_json(url)))
        self.assertEqual(self.peer.requests, [])

    def test_end_to_end(self) -> None:
        """
        A request from the client is accepted by a verifier that fetched the
        signer's metadata over HTTP (``metadata_fetcher``), and its replay
        is refused.
        """
        signer_site = metadata_site(
            metadata_document(SIGNER, "twitter", ["twitter"], self.key, {}, "0.1.0")
        )
        verifier = SignatureVerifier(
            metadata_fetcher(cast(HTTPClient, signer_site), self.clock), self.clock, RECEIVER
        )
        self.successResultOf(self.client.post_json(URL, {"a": 1}))
        [(method, uri, headers, body)] = self.peer.requests
        request = FakeRequest(method, uri, headers)
        self.assertEqual(self.successResultOf(verifier.verify(request, body)), SIGNER)
        self.failureResultOf(verifier.verify(request, body), SignatureError)

    def test_make_http_client(self) -> None:
        """
        ``make_http_client`` builds a pooled treq client whose ``close``
        empties the pool.
        """
        client = make_http_client(MemoryReactorClock())
        self.assertIsInstance(client, HTTPClient)
        self.assertTrue(client.pool.persistent)
        self.successResultOf(client.close())


def parse_nonce(headers: dict[str, str]) -> str:
    """
    The nonce of a request we signed (its last signature parameter).
    """
    return headers["signature-input"].rsplit(';nonce="', 1)[1].rstrip('"')
