"""
The relying party: visitors sign in here with their home server.

Most tests run without sockets: :class:`MemoryNetwork` gives the real
:class:`~distwit.oidc.safe_fetch.SafeFetcher` a memory reactor whose names,
addresses and connections lead to in-memory web servers, among them
:class:`HostileProvider`, an OpenID Connect provider whose every answer a
test can spoil.  Time is a clock the tests advance.

:class:`OidcProviderInteropTests` runs Node's ``oidc-provider`` (an
implementation we did not write, tests/clients/oidc-provider/) as a real
process on loopback, and signs in with it over real sockets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urljoin, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from klein import Klein
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IHostResolution
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, formatEvent
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

from distwit.oidc.interfaces import IRegistrations
from distwit.oidc.registrations import StoreRegistrations
from distwit.oidc.safe_fetch import SafeFetcher
from distwit.s2s.outbound import refused_address
from distwit.oidc.rp import (
    ISSUER_REL,
    MemoryRegistrations,
    PendingSignIn,
    RelyingParty,
    RemoteIdentity,
    SignInError,
    parse_identifier,
    s256,
)

from tests.processes import ROOT
from tests.support import synchronous_sqlite_store

#: When the tests' world begins (seconds).
T0 = 1_700_000_000.0

#: What the visitor reads when their server's answers (or silence) fail a
#: sign-in, at the start and at the end.
BEGIN_FAILED = "did not answer as a distwit/OpenID server."
FINISH_FAILED = "did not confirm who you are."

#: A public address the in-memory names resolve to.
PUBLIC_IP = "93.184.215.14"

OUR_URL = "https://here.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_KEYS: dict[str, Any] = {}


def rsa_key(kid: str) -> RSAKey:
    """
    An RSA key (made once per kid: key generation is slow).
    """
    if kid not in _KEYS:
        _KEYS[kid] = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
    key: RSAKey = _KEYS[kid]
    return key


# An in-memory network.


class MemoryResolver:
    """
    Names resolved from a dict, at once.
    """

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        self.asked.append(hostName)

        @implementer(IHostResolution)
        class Resolution:
            name = hostName

            def cancel(self) -> None:
                pass

        resolutionReceiver.resolutionBegan(Resolution())
        for address in self.names.get(hostName, []):
            kind = IPv6Address if ":" in address else IPv4Address
            resolutionReceiver.addressResolved(kind("TCP", address, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolutionReceiver


class MemoryNetwork:
    """
    A memory reactor whose TCP connections reach the in-memory servers
    listening at their (address, port); :meth:`run` pumps the bytes until
    a coroutine is done.
    """

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(T0)
        self.resolver = MemoryResolver()
        self.reactor.nameResolver = self.resolver
        self.servers: dict[tuple[str, int], Factory] = {}
        self.connected: list[tuple[str, int]] = []
        self._pumps: list[iosim.IOPump] = []
        self._seen = 0

    def listen(self, address: str, port: int, factory: Factory) -> None:
        self.servers[(address, port)] = factory

    def pump(self) -> None:
        for _ in range(100):
            moved = False
            while self._seen < len(self.reactor.tcpClients):
                host, port, factory, _timeout, _bind = self.reactor.tcpClients[self._seen]
                connector = self.reactor.connectors[self._seen]
                self._seen += 1
                moved = True
                self.connected.append((host, port))
                server = self.servers.get((host, port))
                if server is None:
                    factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
                    continue
                kind = IPv6Address if ":" in host else IPv4Address
                server_address = kind("TCP", host, port)
                client_address = kind("TCP", "::1" if kind is IPv6Address else "10.9.9.9", 50000)
                client = factory.buildProtocol(server_address)
                served = server.buildProtocol(client_address)
                self._pumps.append(
                    iosim.connect(
                        served,
                        iosim.FakeTransport(served, True, server_address, client_address),
                        client,
                        iosim.FakeTransport(client, False, client_address, server_address),
                        greet=False,
                    )
                )
            now = self.reactor.seconds()
            if any(call.getTime() <= now for call in self.reactor.getDelayedCalls()):
                self.reactor.advance(0)  # TLS gathers small writes for a moment
                moved = True
            for pump in self._pumps:
                if pump.pump():
                    moved = True
            if not moved:
                return

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Deferred[Any]:
        """
        Start ``coroutine`` and pump until nothing moves; its Deferred.
        """
        d = ensureDeferred(coroutine)
        self.pump()
        return d


# A provider whose answers the tests can spoil.


class _Spoilable(Resource):
    """
    ``resource``, except for the paths in ``spoiled``.
    """

    isLeaf = True

    def __init__(self, spoiled: dict[str, Callable[[Any], Any]], resource: Any) -> None:
        super().__init__()
        self._spoiled = spoiled
        self._resource = resource

    def render(self, request: Any) -> Any:
        spoil = self._spoiled.get(request.path.decode())
        if spoil is not None:
            return spoil(request)
        return self._resource.render(request)


class HostileProvider:
    """
    An OpenID Connect provider in memory, right by default: WebFinger for
    ``handle``, discovery, open registration, an authorization endpoint
    that approves at once (:meth:`approve`), a token endpoint that checks
    the code, PKCE verifier, redirect URI and client secret, and a key set.
    Each attribute changes one answer.
    """

    app = Klein()

    def __init__(self, network: MemoryNetwork, issuer: str, handle: str = "Carol") -> None:
        self.network = network
        self.issuer = issuer
        self.handle = handle
        self.webfinger_issuer = issuer
        self.discovery = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "registration_endpoint": f"{issuer}/register",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
            "subject_types_supported": ["public"],
        }
        self.key: Any = rsa_key("k1")
        self.published: list[Any] = [self.key]
        self.header: dict[str, Any] = {}
        self.claims: dict[str, Any] = {}
        self.token: str | None = None  # the ID token as given, when set
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.jwks_fetches = 0
        self.token_requests: list[dict[str, Any]] = []
        #: path -> what answers instead of the provider.
        self.spoiled: dict[str, Callable[[Any], Any]] = {}
        self.site = Site(_Spoilable(self.spoiled, self.app.resource()), reactor=network.reactor)

    @property
    def authority(self) -> str:
        return urlsplit(self.issuer).netloc

    def approve(self, authorization_url: str) -> dict[str, str]:
        """
        What the visitor's browser brings back after approving: the
        callback's parameters.
        """
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        code = b64url(os.urandom(12))
        self.codes[code] = query
        return {"code": code, "state": query["state"], "iss": self.issuer}

    def id_token(self, request: dict[str, str], client_id: str) -> str:
        now = int(self.network.reactor.seconds())
        claims = {
            "iss": self.issuer,
            "sub": self.handle.lower(),
            "aud": client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": request.get("nonce"),
            "preferred_username": self.handle,
            **self.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        alg = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[self.key.key_type]
        header = {"alg": alg, "kid": self.key.kid, **self.header}
        if header.get("alg") == "none":
            return ".".join(
                b64url(json.dumps(part).encode()) for part in (header, claims)
            ) + "."
        if header.get("alg") == "HS256":
            signing_input = ".".join(b64url(json.dumps(part).encode()) for part in (header, claims))
            secret = self.clients[client_id]["client_secret"].encode()
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{b64url(signature)}"
        return jwt.encode(header, claims, self.key, algorithms=[header["alg"]])

    @app.route("/.well-known/webfinger", methods=["GET"])
    def webfinger(self, request: Any) -> bytes:
        resource = request.args.get(b"resource", [b""])[0].decode()
        if resource.lower() != f"acct:{self.handle.lower()}@{self.authority}":
            request.setResponseCode(404)
            return b'{"error": "no such account"}'
        request.setHeader(b"content-type", b"application/jrd+json")
        return json.dumps({
            "subject": resource,
            "links": [{"rel": ISSUER_REL, "href": self.webfinger_issuer}],
        }).encode()

    @app.route("/.well-known/openid-configuration", methods=["GET"])
    def configuration(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self.discovery).encode()

    @app.route("/register", methods=["POST"])
    def register(self, request: Any) -> bytes:
        asked = json.loads(request.content.read())
        client_id = f"client-{len(self.clients) + 1}"
        info = {**asked, "client_id": client_id, "client_secret": b64url(os.urandom(24)),
                "client_secret_expires_at": 0}
        self.clients[client_id] = info
        request.setResponseCode(201)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(info).encode()

    @app.route("/token", methods=["POST"])
    def token_endpoint(self, request: Any) -> bytes:
        form = {k.decode(): v[0].decode() for k, v in request.args.items()}
        auth = request.getHeader(b"authorization") or b""
        self.token_requests.append({"form": form, "authorization": auth.decode()})
        request.setHeader(b"content-type", b"application/json")

        def error(code: str, description: str) -> bytes:
            request.setResponseCode(400)
            return json.dumps({"error": code, "error_description": description}).encode()

        user, _, secret = base64.b64decode(auth.split(b" ", 1)[-1]).decode().partition(":")
        client = self.clients.get(user)
        if client is None or client["client_secret"] != secret:
            return error("invalid_client", "client authentication failed")
        authorized = self.codes.pop(form.get("code", ""), None)
        if authorized is None or authorized["client_id"] != user:
            return error("invalid_grant", "the code is not valid")
        if form.get("redirect_uri") != authorized["redirect_uri"]:
            return error("invalid_grant", "redirect_uri mismatch")
        if s256(form.get("code_verifier", "")) != authorized["code_challenge"]:
            return error("invalid_grant", "PKCE verification failed")
        token = self.token or self.id_token(authorized, user)
        return json.dumps({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                           "id_token": token}).encode()

    @app.route("/hop/<int:n>", methods=["GET"])
    def hop(self, request: Any, n: int) -> bytes:
        """
        ``n`` redirects, then the discovery document.
        """
        if n == 0:
            return self.configuration(request)
        request.redirect(f"/hop/{n - 1}".encode())
        return b""

    @app.route("/jwks", methods=["GET"])
    def jwks(self, request: Any) -> bytes:
        self.jwks_fetches += 1
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(KeySet(self.published).as_dict(private=False)).encode()


# The relying party against the hostile provider.


class RelyingPartyTestCase(SynchronousTestCase):
    """
    A relying party at :data:`OUR_URL`, and Carol's home server
    ``http://home.example`` (a public address; http allowed, as on a test
    network).
    """

    issuer = "http://home.example"

    def setUp(self) -> None:
        self.network = MemoryNetwork()
        self.network.resolver.names["home.example"] = [PUBLIC_IP]
        self.fetcher = self.make_fetcher(allow_http=True)
        self.provider = HostileProvider(self.network, self.issuer)
        self.network.listen(PUBLIC_IP, 80, self.provider.site)
        self.registrations = MemoryRegistrations()
        self.rp = self.make_rp(self.fetcher)

    def make_fetcher(self, **kwargs: Any) -> SafeFetcher:
        fetcher = SafeFetcher(self.network.reactor, **kwargs)
        self.addCleanup(lambda: self.network.run(_wait(fetcher.close())))
        return fetcher

    def make_rp(self, fetcher: SafeFetcher) -> RelyingParty:
        rp = RelyingParty(
            fetcher, self.registrations, OUR_URL, self.network.reactor, "here.example"
        )
        self.logged = capture_log(rp)
        return rp

    def begin(self, identifier: str = "carol@home.example") -> tuple[str, PendingSignIn]:
        result: tuple[str, PendingSignIn] = self.successResultOf(
            self.network.run(self.rp.begin(identifier))
        )
        return result

    def sign_in(self) -> RemoteIdentity:
        url, pending = self.begin()
        identity: RemoteIdentity = self.successResultOf(
            self.network.run(self.rp.finish(pending, self.provider.approve(url)))
        )
        return identity

    def refused(self, work: Coroutine[Any, Any, Any]) -> str:
        """
        The message of the :class:`SignInError` that ``work`` ends with.
        """
        failure = self.failureResultOf(self.network.run(work), SignInError)
        return str(failure.value)

    def failed_remotely(
        self, work: Coroutine[Any, Any, Any], server: str = "home.example",
        failed: str = BEGIN_FAILED,
    ) -> str:
        """
        Check that the visitor reads only that ``server`` ``failed`` when
        ``work`` ends; the detail, which the log holds (on one line).
        """
        return remote_detail(self, self.refused(work), self.logged, server, failed)

    def refused_finish(
        self, spoil: Callable[[dict[str, str]], None] | None = None, visitor: bool = False
    ) -> str:
        """
        Begin, approve, let ``spoil`` change the callback's parameters,
        finish: the refusal's message if it is about the ``visitor``'s
        answer, else (checking that the visitor reads only that the server
        did not confirm them) the detail in the log.
        """
        url, pending = self.begin()
        params = self.provider.approve(url)
        if spoil is not None:
            spoil(params)
        if visitor:
            return self.refused(self.rp.finish(pending, params))
        return self.failed_remotely(self.rp.finish(pending, params), failed=FINISH_FAILED)


async def _wait(d: Deferred[Any]) -> Any:
    return await d


def capture_log(rp: RelyingParty) -> list[dict[str, Any]]:
    """
    The events ``rp`` logs from now on.
    """
    events: list[dict[str, Any]] = []
    rp.log = Logger(observer=events.append)
    return events


def remote_detail(
    test: SynchronousTestCase, message: str, logged: list[dict[str, Any]], server: str,
    failed: str,
) -> str:
    """
    Check that a sign-in that failed at the visitor's ``server`` showed them
    only the short generic ``message`` naming that server, and that the log
    holds one line about it; that line's detail (the log is emptied).
    """
    test.assertEqual(message, f"{server} {failed}")
    lines = [
        formatEvent(event) for event in logged
        if event["log_format"].startswith("signing in ")
    ]
    logged.clear()
    test.assertEqual(len(lines), 1, lines)
    [line] = lines
    test.assertNotIn("\n", line)
    prefix, _, detail = line.partition(" failed: ")
    test.assertTrue(prefix.startswith("signing in "), line)
    return detail


class SignInTests(RelyingPartyTestCase):
    def test_sign_in(self) -> None:
        """
        WebFinger, discovery, registration, an authorization request with
        state, nonce and PKCE S256, the code exchanged with the verifier
        and the client's secret, the ID token checked, the identity
        confirmed by WebFinger: Carol is Carol@home.example.
        """
        url, pending = self.begin()
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.assertTrue(url.startswith("http://home.example/authorize?"))
        self.assertEqual(query["response_type"], "code")
        self.assertEqual(query["scope"], "openid profile")
        self.assertEqual(query["redirect_uri"], f"{OUR_URL}/login/callback")
        self.assertEqual(query["code_challenge_method"], "S256")
        self.assertEqual(query["code_challenge"], s256(pending.code_verifier))
        self.assertEqual(query["state"], pending.state)
        self.assertEqual(query["nonce"], pending.nonce)
        self.assertEqual(query["client_id"], pending.client_id)
        self.assertEqual(pending.issuer, self.issuer)
        self.assertEqual(pending.identifier, "carol@home.example")
        identity = self.successResultOf(
            self.network.run(self.rp.finish(pending, self.provider.approve(url)))
        )
        self.assertEqual(
            identity, RemoteIdentity(self.issuer, "carol", "Carol", "home.example")
        )
        self.assertEqual(identity.acct, "Carol@home.example")
        [exchange] = self.provider.token_requests
        self.assertEqual(exchange["form"]["code_verifier"], pending.code_verifier)
        self.assertTrue(exchange["authorization"].startswith("Basic "))

    def test_fresh_secrets(self) -> None:
        """
        Every sign-in gets its own state, nonce and PKCE verifier.
        """
        first = self.begin()[1]
        second = self.begin()[1]
        for name in ("state", "nonce", "code_verifier"):
            self.assertNotEqual(getattr(first, name), getattr(second, name))
            self.assertGreaterEqual(len(getattr(first, name)), 43)

    def test_identifier_forms(self) -> None:
        """
        ``acct:``, a leading ``@`` and a profile URL all lead to the same
        provider.
        """
        for typed in ("acct:carol@home.example", "@Carol@Home.Example",
                      "http://home.example/carol"):
            url, pending = self.begin(typed)
            self.assertEqual(pending.issuer, self.issuer, typed)
            self.assertEqual(pending.identifier, typed)

    def test_registers_once(self) -> None:
        """
        The first sign-in with a provider registers this server there (with
        its redirect URI and name); later ones reuse the registration.
        """
        self.sign_in()
        self.sign_in()
        [client] = self.provider.clients.values()
        self.assertEqual(client["redirect_uris"], [f"{OUR_URL}/login/callback"])
        self.assertEqual(client["client_name"], "here.example")
        kept = self.successResultOf(ensureDeferred(self.registrations.get(self.issuer)))
        self.assertEqual(kept["client_id"], client["client_id"])

    def test_registers_again_for_a_new_redirect_uri(self) -> None:
        """
        A registration kept for another redirect URI (this server moved) is
        replaced by a new one.
        """
        self.sign_in()
        self.rp = RelyingParty(self.fetcher, self.registrations, "https://moved.example",
                               self.network.reactor, "here.example")
        self.sign_in()
        self.assertEqual(len(self.provider.clients), 2)

    def test_pending_as_json(self) -> None:
        """
        A pending sign-in kept as JSON finishes like the original; what is
        not one is refused.
        """
        url, pending = self.begin()
        kept = PendingSignIn.from_json(pending.to_json())
        self.assertEqual(kept, pending)
        identity = self.successResultOf(
            self.network.run(self.rp.finish(kept, self.provider.approve(url)))
        )
        self.assertEqual(identity.handle, "Carol")
        for broken in ("", "[]", '{"state": 1}', pending.to_json().replace('"created":', '"x":')):
            with self.assertRaises(SignInError) as raised:
                PendingSignIn.from_json(broken)
            self.assertIn("please start again", str(raised.exception))

    def test_es256(self) -> None:
        """
        An ID token signed with ES256 by a published EC key is accepted.
        """
        self.provider.key = ECKey.generate_key("P-256", parameters={"kid": "ec1"})
        self.provider.published = [rsa_key("k1"), self.provider.key]
        self.assertEqual(self.sign_in().acct, "Carol@home.example")

    def test_eddsa(self) -> None:
        """
        An ID token signed with EdDSA (Ed25519) by a published key is
        accepted.
        """
        self.provider.discovery["id_token_signing_alg_values_supported"] = ["EdDSA"]
        self.provider.key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed1"})
        self.provider.published = [self.provider.key]
        self.assertEqual(self.sign_in().acct, "Carol@home.example")
        [client] = self.provider.clients.values()
        self.assertEqual(client["id_token_signed_response_alg"], "EdDSA")

    def test_new_key(self) -> None:
        """
        A token signed by a key published since the key set was last
        fetched: the key set is fetched again, once, and the token passes.
        """
        self.sign_in()
        self.assertEqual(self.provider.jwks_fetches, 1)
        self.sign_in()
        self.assertEqual(self.provider.jwks_fetches, 1)  # kept
        self.provider.key = rsa_key("k2")
        self.provider.published = [rsa_key("k1"), rsa_key("k2")]
        self.sign_in()
        self.assertEqual(self.provider.jwks_fetches, 2)

    def test_services(self) -> None:
        """
        :class:`MemoryRegistrations` and :class:`StoreRegistrations` (in the
        database) provide :class:`IRegistrations`.
        """
        self.assertTrue(verifyObject(IRegistrations, MemoryRegistrations()))
        store = synchronous_sqlite_store(self.mktemp())
        self.addCleanup(store.close)
        registrations = StoreRegistrations(store, self.network.reactor)
        self.assertTrue(verifyObject(IRegistrations, registrations))


class RefusedSignInTests(RelyingPartyTestCase):
    """
    Each way a sign-in goes wrong ends as a :class:`SignInError`: one that
    says what, naming what the visitor typed, when the visitor's own input
    or answer is wrong; else one short sentence naming only their server,
    while the log says what that server answered.
    """

    def test_bad_state(self) -> None:
        """
        An answer whose state is not this sign-in's (a forged callback).
        """
        message = self.refused_finish(lambda p: p.update(state="forged"), visitor=True)
        self.assertEqual(
            message,
            "carol@home.example: the answer does not belong to this sign-in "
            "(its state is wrong); please start again",
        )
        self.assertEqual(self.provider.token_requests, [])

    def test_missing_state(self) -> None:
        message = self.refused_finish(lambda p: p.pop("state"), visitor=True)
        self.assertIn("its state is wrong", message)

    def test_denied(self) -> None:
        """
        The visitor said no at their home server.
        """
        def deny(params: dict[str, str]) -> None:
            params.pop("code")
            params["error"] = "access_denied"

        self.assertEqual(self.refused_finish(deny, visitor=True),
                         "carol@home.example: home.example did not approve the sign-in")

    def test_provider_error(self) -> None:
        """
        Another error from the provider is shown with its description.
        """
        def error(params: dict[str, str]) -> None:
            params.pop("code")
            params.update(error="server_error", error_description="database on fire")

        self.assertEqual(
            self.refused_finish(error),
            "home.example refused the sign-in: database on fire (server_error)",
        )

    def test_iss_parameter_mismatch(self) -> None:
        """
        An answer whose ``iss`` names another provider (a mix-up attack).
        """
        message = self.refused_finish(lambda p: p.update(iss="http://evil.example"))
        self.assertEqual(
            message,
            "the answer comes from http://evil.example, "
            "not from http://home.example",
        )
        self.assertEqual(self.provider.token_requests, [])

    def test_iss_parameter_missing(self) -> None:
        """
        The provider says it sends ``iss``; an answer without it is refused.
        """
        message = self.refused_finish(lambda p: p.pop("iss"))
        self.assertIn("does not say it comes from http://home.example (no iss)", message)

    def test_iss_parameter_optional(self) -> None:
        """
        From a provider that does not send ``iss``, its absence is fine.
        """
        self.provider.discovery["authorization_response_iss_parameter_supported"] = False
        url, pending = self.begin()
        params = self.provider.approve(url)
        del params["iss"]
        identity = self.successResultOf(self.network.run(self.rp.finish(pending, params)))
        self.assertEqual(identity.handle, "Carol")

    def test_discovery_issuer_mismatch(self) -> None:
        """
        A discovery document naming another issuer than WebFinger did.
        """
        self.provider.discovery["issuer"] = "http://home.example/"
        message = self.failed_remotely(self.rp.begin("carol@home.example"))
        self.assertEqual(
            message,
            "the discovery document at "
            "http://home.example/.well-known/openid-configuration names the issuer "
            "http://home.example/, not http://home.example",
        )

    def test_id_token_issuer_mismatch(self) -> None:
        self.provider.claims["iss"] = "http://evil.example"
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example says it was "
            "issued by http://evil.example, not by http://home.example",
        )

    def test_expired(self) -> None:
        """
        An ID token past its expiry (beyond a minute of leeway).
        """
        now = int(self.network.reactor.seconds())
        self.provider.claims.update(iat=now - 10, exp=now - 61)
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example has expired",
        )

    def test_issued_in_the_future(self) -> None:
        self.provider.claims["iat"] = int(self.network.reactor.seconds()) + 3600
        self.assertIn("was issued in the future", self.refused_finish())

    def test_wrong_nonce(self) -> None:
        self.provider.claims["nonce"] = "another sign-in's nonce"
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example was not made "
            "for this sign-in (its nonce is wrong)",
        )

    def test_no_nonce(self) -> None:
        self.provider.claims["nonce"] = None
        self.assertIn("its nonce is wrong", self.refused_finish())

    def test_wrong_audience(self) -> None:
        self.provider.claims["aud"] = "another-client"
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example was made for "
            "another client, not for this server",
        )

    def test_several_audiences_without_azp(self) -> None:
        self.provider.claims["aud"] = ["client-1", "another-client"]
        self.assertIn("several audiences and no azp", self.refused_finish())

    def test_alg_none(self) -> None:
        """
        An unsigned ID token (``alg: none``) is never accepted.
        """
        self.provider.header["alg"] = "none"
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example is signed with "
            "none, which this server does not accept (only RS256, ES256, EdDSA)",
        )

    def test_alg_hs256(self) -> None:
        """
        An ID token signed with the client secret (HS256) is not accepted.
        """
        self.provider.header["alg"] = "HS256"
        self.assertIn("is signed with HS256, which this server does not accept",
                      self.refused_finish())

    def test_unknown_kid(self) -> None:
        """
        A key the provider does not publish: the key set is fetched again
        once, then the token is refused.
        """
        self.provider.key = rsa_key("k2")
        self.assertEqual(
            self.refused_finish(),
            "the ID token from http://home.example is signed with "
            "a key that http://home.example does not publish (kid k2)",
        )
        self.assertEqual(self.provider.jwks_fetches, 2)

    def test_bad_signature(self) -> None:
        """
        A token signed by another key under a published kid.
        """
        impostor = rsa_key("impostor")
        self.provider.key = RSAKey.import_key(impostor.as_dict(private=True),
                                              parameters={"kid": "k1"})
        self.assertIn("has a bad signature", self.refused_finish())

    def test_tampered_claims(self) -> None:
        """
        A token whose claims were changed after signing.
        """
        url, pending = self.begin()
        params = self.provider.approve(url)
        token = self.provider.id_token(self.provider.codes[params["code"]], pending.client_id)
        head, body, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["preferred_username"] = "Mallory"
        self.provider.token = ".".join(
            [head, b64url(json.dumps(claims).encode()), signature])
        message = self.failed_remotely(self.rp.finish(pending, params), failed=FINISH_FAILED)
        self.assertIn("has a bad signature", message)

    def test_webfinger_names_another_issuer(self) -> None:
        """
        The provider signs Carol in, but WebFinger for Carol@home.example
        (asked again at the end) names another provider: no identity.
        """
        url, pending = self.begin()
        self.provider.webfinger_issuer = "http://elsewhere.example"
        message = self.failed_remotely(
            self.rp.finish(pending, self.provider.approve(url)), failed=FINISH_FAILED
        )
        self.assertEqual(
            message,
            "http://home.example signed you in as "
            "Carol@home.example, but WebFinger for Carol@home.example names another "
            "provider (http://elsewhere.example)",
        )

    def test_provider_vouches_only_for_its_own(self) -> None:
        """
        A provider whose ID token names an account it does not hold (here
        one that WebFinger on its host does not know).
        """
        self.provider.claims["preferred_username"] = "alice"
        message = self.refused_finish()
        self.assertIn("the WebFinger answer at http://home.example/.well-known/webfinger", message)
        self.assertIn("HTTP 404", message)

    def test_not_a_handle(self) -> None:
        self.provider.claims["preferred_username"] = "Carol Smith"
        self.assertIn("signed you in as Carol Smith, which is not a handle",
                      self.refused_finish())

    def test_too_old(self) -> None:
        """
        A sign-in finished more than 10 minutes after it began.
        """
        url, pending = self.begin()
        params = self.provider.approve(url)
        self.network.reactor.advance(601)
        self.assertEqual(
            self.refused(self.rp.finish(pending, params)),
            "carol@home.example: this sign-in was started more than 10 minutes ago; "
            "please start again",
        )

    def test_code_refused(self) -> None:
        """
        The token endpoint's refusal is shown with its description.
        """
        url, pending = self.begin()
        params = self.provider.approve(url)
        params["code"] = "used"
        self.assertEqual(
            self.failed_remotely(self.rp.finish(pending, params), failed=FINISH_FAILED),
            "the exchange of the authorization code at "
            "http://home.example/token: HTTP 400 Bad Request: the code is not valid "
            "(invalid_grant)",
        )

    def test_no_pkce(self) -> None:
        """
        A provider that does not offer PKCE S256 is not used.
        """
        self.provider.discovery["code_challenge_methods_supported"] = ["plain"]
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            "http://home.example does not say it supports PKCE "
            "with S256, which this server requires",
        )

    def test_only_weak_algorithms(self) -> None:
        self.provider.discovery["id_token_signing_alg_values_supported"] = ["HS256", "none"]
        self.assertIn("signs ID tokens only with HS256, none, none of which this server "
                      "accepts", self.failed_remotely(self.rp.begin("carol@home.example")))

    def test_no_account(self) -> None:
        """
        WebFinger does not know the account typed.
        """
        message = self.failed_remotely(self.rp.begin("nobody@home.example"))
        self.assertEqual(
            message,
            "the WebFinger answer at http://home.example/.well-known/"
            "webfinger?resource=acct%3Anobody%40home.example&rel=http%3A%2F%2Fopenid.net"
            "%2Fspecs%2Fconnect%2F1.0%2Fissuer: HTTP 404 Not Found: no such account",
        )

    def test_no_issuer_link(self) -> None:
        self.provider.webfinger_issuer = 17  # type: ignore[assignment]
        self.assertIn("names no OpenID Connect provider for this account",
                      self.failed_remotely(self.rp.begin("carol@home.example")))

    def test_no_port_scan(self) -> None:
        """
        A server that does not resolve, one whose port is closed, one whose
        port is open but silent and one that answers 404: the visitor
        reads the same sentence about each (only the name differs), so our
        page tells a stranger nothing about a host's ports or answers;
        the log tells the operator which was which.
        """
        from twisted.internet.protocol import Protocol

        self.network.resolver.names["closed.example"] = ["93.184.215.15"]
        self.network.resolver.names["silent.example"] = ["93.184.215.16"]
        for port in (80, 443):
            self.network.listen("93.184.215.16", port, Factory.forProtocol(Protocol))
        details = {}
        for server in ("nowhere.example", "closed.example", "home.example"):
            details[server] = self.failed_remotely(
                self.rp.begin(f"nobody@{server}"), server
            )
        d = self.network.run(self.rp.begin("carol@silent.example"))
        self.network.reactor.advance(10)
        self.network.pump()
        details["silent.example"] = remote_detail(
            self, str(self.failureResultOf(d, SignInError).value), self.logged,
            "silent.example", BEGIN_FAILED,
        )
        self.assertIn("the host name does not resolve", details["nowhere.example"])
        self.assertIn("the connection failed", details["closed.example"])
        self.assertIn("no answer within 10 s", details["silent.example"])
        self.assertIn("HTTP 404 Not Found: no such account", details["home.example"])

    def test_short_messages(self) -> None:
        """
        Whatever the visitor typed, what they read is short enough for a
        phone's screen: a long address is cut, in a remote failure and in
        a malformed address alike.
        """
        long_host = "a" * 60 + ".example"
        message = self.refused(self.rp.begin(f"carol@{long_host}"))
        self.assertEqual(message, "a" * 29 + "… " + BEGIN_FAILED)
        message = self.refused(self.rp.begin("x" * 300))
        self.assertEqual(message, "x" * 29 + "… is not an account: type it as handle@server "
                         "(for example alice@example.org) or as your profile's address")
        self.assertEqual(len(self.logged), 1)  # the remote failure only

    def test_not_an_account(self) -> None:
        for typed, expected in [
            ("carol", "carol is not an account: type it as handle@server"),
            ("carol@", "carol@ is not an account"),
            ("carol smith@home.example", "carol smith is not a handle"),
            ("ftp://home.example/carol", "is not an account"),
        ]:
            self.assertIn(expected, self.refused(self.rp.begin(typed)))
        self.assertEqual(self.network.connected, [])

    def test_unknown_server(self) -> None:
        """
        A name that does not resolve.
        """
        message = self.failed_remotely(
            self.rp.begin("carol@nowhere.example"), "nowhere.example"
        )
        self.assertIn("nowhere.example/.well-known/webfinger", message)
        self.assertIn("the host name does not resolve", message)

    def test_discovery_not_json(self) -> None:
        self.provider.discovery = "not an object"  # type: ignore[assignment]
        self.assertIn(
            "the discovery document at http://home.example/.well-known/"
            "openid-configuration is not a JSON object",
            self.failed_remotely(self.rp.begin("carol@home.example")),
        )


class ParseIdentifierTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """
        What a visitor may type, and what it means.
        """
        self.assertEqual(parse_identifier(" alice@Example.org "), ("alice", "example.org", None))
        self.assertEqual(parse_identifier("acct:alice@example.org:8443"),
                         ("alice", "example.org:8443", None))
        self.assertEqual(parse_identifier("@alice@127.0.0.1:8101"),
                         ("alice", "127.0.0.1:8101", None))
        self.assertEqual(parse_identifier("https://example.org/alice"),
                         ("alice", "example.org", "https"))
        self.assertEqual(parse_identifier("http://[::1]:8080/alice/"),
                         ("alice", "[::1]:8080", "http"))
        self.assertEqual(parse_identifier("alice@bücher.example"),
                         ("alice", "xn--bcher-kva.example", None))


class FetchLimitTests(RelyingPartyTestCase):
    """
    The fetches a sign-in makes stay within their limits, whatever the
    other server does; each refusal reaches the log as a sentence (the
    visitor reads only that their server did not answer as it should).
    """

    discovery_url = "http://home.example/.well-known/openid-configuration"

    def spoil_discovery(self, answer: Callable[[Any], Any]) -> None:
        self.provider.spoiled["/.well-known/openid-configuration"] = answer

    def test_private_address(self) -> None:
        """
        A name that resolves to a private address is not connected to.
        """
        self.network.resolver.names["intranet.example"] = ["10.1.2.3"]
        message = self.failed_remotely(
            self.rp.begin("carol@intranet.example"), "intranet.example"
        )
        self.assertIn(
            "intranet.example is at 10.1.2.3, a private address, and this server does "
            "not connect to such addresses", message)
        self.assertTrue(message.startswith("the WebFinger answer at "))
        self.assertEqual(self.network.connected, [])

    def test_issuer_on_a_private_address(self) -> None:
        """
        A public WebFinger naming an issuer on this server's own network
        (the request forgery a stranger would try): discovery is refused.
        """
        self.provider.webfinger_issuer = "http://127.0.0.1:8080"
        message = self.failed_remotely(self.rp.begin("carol@home.example"))
        self.assertEqual(
            message,
            "the provider's discovery document at "
            "http://127.0.0.1:8080/.well-known/openid-configuration: 127.0.0.1 is at "
            "127.0.0.1, a loopback address, and this server does not connect to such "
            "addresses",
        )
        self.assertNotIn(("127.0.0.1", 8080), self.network.connected)

    def test_any_private_address(self) -> None:
        """
        A name with a public and a private address (one way to rebind) is
        refused whole; and the address connected to is the one checked,
        as the name is resolved once per connection.
        """
        self.network.resolver.names["home.example"] = [PUBLIC_IP, "169.254.169.254"]
        message = self.failed_remotely(self.rp.begin("carol@home.example"))
        self.assertIn("home.example is at 169.254.169.254, a link-local address", message)
        self.assertEqual(self.network.connected, [])

    def test_private_allowed(self) -> None:
        """
        With ``allow_private`` (tests on loopback), private addresses are
        reached.
        """
        self.network.resolver.names["home.example"] = ["10.1.2.3"]
        self.network.listen("10.1.2.3", 80, self.provider.site)
        self.rp = self.make_rp(self.make_fetcher(allow_http=True, allow_private=True))
        self.assertEqual(self.sign_in().acct, "Carol@home.example")

    def test_http_refused(self) -> None:
        """
        Without ``allow_http``, an http URL is not fetched.
        """
        self.rp = self.make_rp(self.make_fetcher())
        message = self.failed_remotely(self.rp.begin("http://home.example/carol"))
        self.assertEqual(
            message,
            "the WebFinger answer is at http://home.example/"
            ".well-known/webfinger?resource=acct%3Acarol%40home.example&rel=http%3A%2F"
            "%2Fopenid.net%2Fspecs%2Fconnect%2F1.0%2Fissuer, which is not https; this "
            "server fetches only https",
        )
        self.assertEqual(self.network.connected, [])

    def test_https_only(self) -> None:
        """
        Without ``allow_http``, handle@authority is looked up over https
        only (here nothing answers there).
        """
        self.rp = self.make_rp(self.make_fetcher())
        message = self.failed_remotely(self.rp.begin("carol@home.example"))
        self.assertIn("https://home.example/.well-known/webfinger", message)
        self.assertIn("the connection failed", message)
        self.assertEqual(self.network.connected, [(PUBLIC_IP, 443)])

    def test_oversized(self) -> None:
        """
        An answer over 256 kB, announced as such, is not read.
        """
        self.spoil_discovery(lambda request: b"{" + b" " * 300_000 + b"}")
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            f"the provider's discovery document at {self.discovery_url}"
            " is 300002 bytes, more than the 262144 this server reads",
        )

    def test_oversized_unannounced(self) -> None:
        """
        An answer that grows past 256 kB without saying so is cut off.
        """
        def endless(request: Any) -> Any:
            for _ in range(5):
                request.write(b" " * 100_000)
            return NOT_DONE_YET

        self.spoil_discovery(endless)
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            f"the provider's discovery document at {self.discovery_url}"
            " is over the 262144 bytes this server reads",
        )

    def test_redirects(self) -> None:
        """
        Three redirects are followed; a fourth is refused.
        """
        self.spoil_discovery(lambda request: request.redirect(b"/hop/2") or b"")
        url, pending = self.begin()
        self.assertEqual(pending.issuer, self.issuer)
        self.registrations.registrations.clear()
        self.spoil_discovery(lambda request: request.redirect(b"/hop/3") or b"")
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            "the provider's discovery document at "
            "http://home.example/.well-known/openid-configuration: more than 3 redirects",
        )

    def test_redirect_checked(self) -> None:
        """
        A redirect leads only where the first URL could have: not to a
        private address.
        """
        self.spoil_discovery(
            lambda request: request.redirect(b"http://127.0.0.1/secrets") or b"")
        message = self.failed_remotely(self.rp.begin("carol@home.example"))
        self.assertIn("the provider's discovery document at http://127.0.0.1/secrets: "
                      "127.0.0.1 is at 127.0.0.1, a loopback address", message)

    def test_post_not_redirected(self) -> None:
        """
        A POST (here the registration) follows no redirect.
        """
        def moved(request: Any) -> bytes:
            request.setResponseCode(307)
            request.setHeader(b"location", b"/register-here")
            return b""

        self.provider.spoiled["/register"] = moved
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            "the registration of this server at "
            "http://home.example/register: the server answered with a redirect, which is "
            "not followed for a POST",
        )

    def test_slow_server(self) -> None:
        """
        A server that never answers: the sign-in ends after 10 seconds.
        """
        asked: list[Any] = []
        self.spoil_discovery(lambda request: asked.append(request) or NOT_DONE_YET)
        d = self.network.run(self.rp.begin("carol@home.example"))
        self.assertEqual(len(asked), 1)
        self.assertNoResult(d)
        self.network.reactor.advance(9)
        self.assertNoResult(d)
        self.network.reactor.advance(1)
        self.network.pump()
        message = str(self.failureResultOf(d, SignInError).value)
        self.assertEqual(
            remote_detail(self, message, self.logged, "home.example", BEGIN_FAILED),
            f"the provider's discovery document at {self.discovery_url}"
            ": no answer within 10 s",
        )

    def test_slow_body(self) -> None:
        """
        A server that starts answering and stops: 10 seconds in all.
        """
        def stall(request: Any) -> Any:
            request.setHeader(b"content-length", b"1000")
            request.write(b'{"issuer": ')
            return NOT_DONE_YET

        self.spoil_discovery(stall)
        d = self.network.run(self.rp.begin("carol@home.example"))
        self.network.reactor.advance(10)
        self.network.pump()
        message = str(self.failureResultOf(d, SignInError).value)
        self.assertEqual(
            remote_detail(self, message, self.logged, "home.example", BEGIN_FAILED),
            f"the provider's discovery document at {self.discovery_url}"
            " was not complete within 10 s",
        )

    def test_not_json(self) -> None:
        self.spoil_discovery(lambda request: b"<html>hello</html>")
        self.assertEqual(
            self.failed_remotely(self.rp.begin("carol@home.example")),
            f"the provider's discovery document at {self.discovery_url}"
            " is not JSON",
        )


class TLSTests(SynchronousTestCase):
    """
    https to a host found at a checked address still checks the
    certificate against the host's name.
    """

    def setUp(self) -> None:
        import trustme
        from twisted.internet.ssl import PrivateCertificate
        from twisted.protocols.tls import TLSMemoryBIOFactory

        ca = trustme.CA()
        certificate = ca.issue_cert("home.example")
        ca_file = self.mktemp()
        ca.cert_pem.write_to_path(ca_file)
        self.network = MemoryNetwork()
        self.network.resolver.names["home.example"] = [PUBLIC_IP]
        self.network.resolver.names["other.example"] = [PUBLIC_IP]
        self.provider = HostileProvider(self.network, "https://home.example")
        options = PrivateCertificate.loadPEM(
            certificate.private_key_and_cert_chain_pem.bytes()).options()
        self.network.listen(PUBLIC_IP, 443,
                            TLSMemoryBIOFactory(options, False, self.provider.site,
                                               clock=self.network.reactor))
        self.fetcher = SafeFetcher(self.network.reactor, ca_file=ca_file)
        self.rp = RelyingParty(self.fetcher, MemoryRegistrations(), OUR_URL,
                               self.network.reactor, "here.example")
        self.logged = capture_log(self.rp)

    def test_sign_in(self) -> None:
        """
        All over https, no http and no private address allowed.
        """
        url, pending = self.successResultOf(self.network.run(self.rp.begin("carol@home.example")))
        identity = self.successResultOf(
            self.network.run(self.rp.finish(pending, self.provider.approve(url))))
        self.assertEqual(identity.acct, "Carol@home.example")

    def test_wrong_name(self) -> None:
        """
        The same server under a name its certificate does not hold.
        """
        d = self.network.run(self.rp.begin("carol@other.example"))
        message = remote_detail(
            self, str(self.failureResultOf(d, SignInError).value), self.logged,
            "other.example", BEGIN_FAILED,
        )
        self.assertTrue(
            message.startswith("the WebFinger answer at https://other.example/"), message
        )
        self.assertTrue(message.endswith(": its certificate is not for this host name"), message)

    def test_http_issuer(self) -> None:
        """
        An https WebFinger naming an http issuer: refused before any fetch.
        """
        self.provider.webfinger_issuer = "http://home.example"
        d = self.network.run(self.rp.begin("carol@home.example"))
        self.assertEqual(
            remote_detail(
                self, str(self.failureResultOf(d, SignInError).value), self.logged,
                "home.example", BEGIN_FAILED,
            ),
            "the issuer named by https://home.example/.well-known/"
            "webfinger?resource=acct%3Acarol%40home.example&rel=http%3A%2F%2Fopenid.net"
            "%2Fspecs%2Fconnect%2F1.0%2Fissuer is at http://home.example, which is not "
            "https; this server fetches only https",
        )


class AddressTests(SynchronousTestCase):
    def test_refused_addresses(self) -> None:
        """
        Which addresses a stranger's URL may not lead to.
        """
        for address, why in [
            ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"),
            ("172.16.5.4", "private"), ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"), ("240.0.0.1", "private"), ("fc00::1", "private"),
            ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
            ("100.64.0.1", "not public"),
        ]:
            self.assertEqual(refused_address(address), why, address)
        for address in ("93.184.215.14", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
            self.assertIsNone(refused_address(address), address)


# Interoperability: a provider we did not write.

OIDC_PROVIDER = os.path.join(ROOT, "tests", "clients", "oidc-provider")

#: The account of the Node provider.
INTEROP_HANDLE, INTEROP_PASSWORD = "Carol", "correct horse battery"


def oidc_provider_skip() -> str | None:
    """
    Why the Node ``oidc-provider`` test cannot run here, or ``None``.
    """
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            "(.ci/run installs them): the sign-in "
            "with Node oidc-provider (tests/clients/oidc-provider) as the provider of "
            "this relying party does not run"
        )
    return None


class NodeProvider:
    """
    ``node provider.mjs`` on 127.0.0.1 (a port the system picks), its
    ``npm install`` done first if ``node_modules`` is missing.
    """

    def __init__(self, test: TestCase) -> None:
        if not os.path.isdir(os.path.join(OIDC_PROVIDER, "node_modules", "oidc-provider")):
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--silent"],
                cwd=OIDC_PROVIDER, check=True, timeout=600,
            )
        self.log_path = os.path.abspath(test.mktemp() + ".log")
        log = open(self.log_path, "w")
        test.addCleanup(log.close)
        self.process = subprocess.Popen(
            ["node", os.path.join(OIDC_PROVIDER, "provider.mjs"),
             INTEROP_HANDLE, INTEROP_PASSWORD],
            cwd=OIDC_PROVIDER, stdout=log, stderr=subprocess.STDOUT,
        )
        test.addCleanup(self.stop)
        self.issuer = self._wait_for_issuer()

    def log_text(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def _wait_for_issuer(self) -> str:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"^listening (\S+)$", self.log_text(), re.MULTILINE)
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"oidc-provider did not start:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class OidcProviderInteropTests(TestCase):
    """
    Node's ``oidc-provider`` (8.8.1; tests/clients/oidc-provider), a
    certified provider we did not write, as the visitor's home server: our
    relying party, with a real reactor, real sockets and the real
    :class:`SafeFetcher` (http and loopback allowed), signs Carol in.
    """

    skip = oidc_provider_skip()
    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.provider = NodeProvider(self)
        self.authority = urlsplit(self.provider.issuer).netloc
        self.fetcher = SafeFetcher(reactor, allow_http=True, allow_private=True)
        self.addCleanup(self.fetcher.close)
        self.registrations = MemoryRegistrations()
        # Our server is never fetched from: its callback URL is only where
        # the provider sends the browser back.
        self.rp = RelyingParty(self.fetcher, self.registrations, "http://127.0.0.1:9",
                               reactor, "distwit interop test")

    async def browse(self, url: str) -> dict[str, str]:
        """
        What Carol does in her browser: open the authorization URL, sign in
        on the provider's form, approve; the parameters it sends her back
        to this server with.
        """
        from http.cookiejar import CookieJar

        from treq.client import HTTPClient
        from twisted.web.client import Agent, HTTPConnectionPool

        pool = HTTPConnectionPool(self.reactor)
        self.addCleanup(pool.closeCachedConnections)
        browser = HTTPClient(Agent(self.reactor, pool=pool), cookiejar=CookieJar())
        response = await browser.get(url, allow_redirects=False, timeout=30)
        for _ in range(12):
            if response.code in (302, 303):
                await response.content()
                url = urljoin(url, response.headers.getRawHeaders("location")[0])
                if url.startswith(self.rp.redirect_uri):
                    return dict(parse_qsl(urlsplit(url).query))
                response = await browser.get(url, allow_redirects=False, timeout=30)
                continue
            page = await response.text()
            self.assertEqual(response.code, 200, page)
            form = re.search(r'<form method="post" action="([^"]+)"', page)
            self.assertIsNotNone(form, page)
            assert form is not None
            fields = {}
            if 'name="login"' in page:
                fields = {"login": INTEROP_HANDLE, "password": INTEROP_PASSWORD}
            url = urljoin(url, form.group(1))
            response = await browser.post(url, data=fields, allow_redirects=False, timeout=30)
        self.fail(f"no way back to this server; the provider said:\n{self.provider.log_text()}")

    def test_sign_in(self) -> Deferred[None]:
        """
        ``carol@127.0.0.1:PORT``: WebFinger (the shim), discovery,
        registration, the provider's login and consent, the code exchange,
        the ID token and the WebFinger round trip all pass; twice, the
        second time with the registration kept.
        """

        async def sign_in() -> RemoteIdentity:
            url, pending = await self.rp.begin(f"carol@{self.authority}")
            self.assertEqual(pending.issuer, self.provider.issuer)
            params = await self.browse(url)
            self.assertEqual(params.get("iss"), self.provider.issuer, params)
            result: RemoteIdentity = await self.rp.finish(pending, params)
            return result

        async def run() -> None:
            for _ in range(2):
                identity = await sign_in()
                self.assertEqual(
                    identity,
                    RemoteIdentity(self.provider.issuer, "carol", "Carol", self.authority),
                )
            self.assertEqual(len(self.registrations.registrations), 1)

        return Deferred.fromCoroutine(run())

    def test_replayed_code(self) -> Deferred[None]:
        """
        The provider refuses a code used twice; the visitor reads that their
        server did not confirm them, the log says why.
        """

        async def run() -> None:
            url, pending = await self.rp.begin(f"carol@{self.authority}")
            params = await self.browse(url)
            await self.rp.finish(pending, params)
            logged = capture_log(self.rp)
            with self.assertRaises(SignInError) as raised:
                await self.rp.finish(pending, params)
            detail = remote_detail(
                self, str(raised.exception), logged, self.authority, FINISH_FAILED
            )
            self.assertTrue(detail.startswith(
                f"the exchange of the authorization code at "
                f"{self.provider.issuer}/token: HTTP 400 Bad Request: "), detail)
            self.assertIn("(invalid_grant)", detail)

        return Deferred.fromCoroutine(run())


class SchemeTests(RelyingPartyTestCase):
    """
    ``handle@authority`` names no scheme: https, or with http allowed
    (development), https and http at once.
    """

    def test_http_answers_while_https_hangs(self) -> None:
        """
        A plain-http server never answers a TLS hello: with http allowed,
        its http answer is taken at once, without waiting out the time
        limit on https.
        """
        from twisted.internet.protocol import Protocol

        self.network.listen(PUBLIC_IP, 443, Factory.forProtocol(Protocol))
        url, pending = self.begin()
        self.assertEqual(pending.issuer, self.issuer)
        self.assertIn((PUBLIC_IP, 443), self.network.connected)

    def test_https_only_without_http(self) -> None:
        """
        Without http allowed, only https is asked.
        """
        self.rp = self.make_rp(self.make_fetcher())
        self.assertIn("https://home.example/.well-known/webfinger",
                      self.failed_remotely(self.rp.begin("carol@home.example")))
        self.assertNotIn((PUBLIC_IP, 80), self.network.connected)
