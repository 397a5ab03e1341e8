"""
The OpenID Connect provider of a twitter server: its users sign in to other
servers with their account here.

Authlib's framework-neutral server does the protocol: the authorization
code grant with PKCE (S256 only, required of every client), OpenID
Connect's ``openid`` scope with a required nonce, dynamic client
registration (RFC 7591), bearer tokens and the ``iss`` authorization
response parameter (RFC 9207).  This module adapts it to Twisted: Authlib
calls its storage hooks synchronously, so every request first loads, off
the reactor thread, what Authlib may ask for (the client), and writes what
Authlib kept (a new client) before answering.

Authorization codes (one minute, single use) and access tokens (one hour,
for the userinfo endpoint) live in memory: they are short-lived, and a
restart only means signing in again.

The JSON endpoints are here: discovery, JWKS, registration, token and
userinfo.  The authorization endpoint is a page (sign-in, then consent),
so :class:`distwit.web.pages.Pages` serves it with :meth:`consent_request`
and :meth:`authorize`.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from authlib.common.security import is_secure_transport
from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7591 import ClientMetadataClaims, ClientRegistrationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core.errors import LoginRequiredError
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.registration import ClientMetadataClaims as OIDCClientMetadataClaims
from klein import Klein
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from distwit.core.limits import RateLimiter, SharedRateLimiter
from distwit.http import HTTPError, client_address, read_body
from distwit.model import Account
from distwit.oidc.keys import ALGORITHM, SigningKeys
from distwit.core.microblog import Microblog
from distwit.store.shared import ISharedState

#: How long an authorization code may wait to be exchanged, in seconds.
CODE_LIFETIME = 60

#: How long an access token (for the userinfo endpoint) lasts, in seconds.
TOKEN_LIFETIME = 3600

#: How long an ID token is valid, in seconds.
ID_TOKEN_LIFETIME = 600

#: The largest registration or token request read, in bytes.
MAX_BODY = 16 * 1024

#: Clients kept in memory between requests; the cache is emptied when full.
CLIENT_CACHE = 1000

#: Registrations one address may make in :data:`REGISTRATION_WINDOW`
#: seconds: a relying party registers once per provider, and each is kept.
REGISTRATIONS_PER_ADDRESS = 20
REGISTRATION_WINDOW = 3600

SCOPES = ["openid", "profile"]

INSECURE = (
    "This server's public URL is plain http on a public address, so it signs "
    "nobody in elsewhere: OpenID Connect needs https."
)

CLAIMS = [
    "sub", "iss", "aud", "exp", "iat", "nonce", "auth_time",
    "preferred_username", "name", "profile",
]


class ConsentError(Exception):
    """
    An authorization request that must not be redirected back: the client
    or its redirect URI is unknown.  The visitor gets an error page.
    """


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    """
    A relying party registered here.
    """

    client_id: str
    client_secret: str
    client_metadata: dict[str, Any]

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.client_metadata.get("redirect_uris") or [])

    @property
    def name(self) -> str:
        return str(self.client_metadata.get("client_name") or "")

    @property
    def id_token_signed_response_alg(self) -> str:
        return ALGORITHM

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exactly as registered: no prefixes, no added paths or queries.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.client_secret:
            return False
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            registered = self.client_metadata.get(
                "token_endpoint_auth_method", "client_secret_basic"
            )
            return bool(method == registered)
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type in (self.client_metadata.get("response_types") or ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.client_metadata.get("grant_types") or ["authorization_code"])


@dataclass
class AuthorizationCode:
    """
    A code on its way back to a client, in memory.
    """

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    user: Account
    auth_time: int
    expires: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class AccessToken:
    user: Account
    client_id: str
    scope: str
    expires: float


@dataclass
class _Payload(OAuth2Payload):  # type: ignore[misc]
    values: dict[str, str]
    lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, str]:
        return self.values

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self.lists


class _Request(OAuth2Request):  # type: ignore[misc]
    """
    An Authlib request made from a Twisted one: query and form values
    (first value of each; all of them in ``datalist``, so repeated
    parameters are refused) and headers.
    """

    def __init__(self, method: str, uri: str, headers: dict[str, str],
                 query: dict[str, list[str]], form: dict[str, list[str]]) -> None:
        super().__init__(method, uri, headers=headers)
        lists = {k: [*query.get(k, []), *form.get(k, [])] for k in {*query, *form}}
        self.payload = _Payload({k: v[0] for k, v in lists.items()}, lists)
        self._query = {k: v[0] for k, v in query.items()}
        self._form = {k: v[0] for k, v in form.items()}

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _JsonPayload(JsonPayload):  # type: ignore[misc]
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    @property
    def data(self) -> dict[str, Any]:
        return self._body


class _JsonRequest(JsonRequest):  # type: ignore[misc]
    """
    A registration request, with the database writes Authlib's synchronous
    ``save_client`` started, for the answer to wait on.
    """

    def __init__(self, method: str, uri: str, headers: dict[str, str], body: Any) -> None:
        super().__init__(method, uri, headers)
        self.payload = _JsonPayload(body)
        self.writes: list[Deferred[None]] = []


class _Response:
    """
    What Authlib answers, for us to write out.  ``location`` is there for
    Authlib's RFC 9207 extension, which adds ``iss`` to it.
    """

    def __init__(self, status: int, body: Any, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"]
        self.headers.append(("Location", value))


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """
    PKCE, required of every client, and only with S256: ``plain`` sends
    the secret itself through the browser.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "Only code_challenge_method=S256 is accepted here (plain is refused)."
            )
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier': PKCE is required.")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, code: AuthorizationCode) -> str:
        return code.code_challenge_method


class OIDCProvider:
    """
    The provider: an Authlib server with this server's users, clients and
    keys.

    :param microblog: whose users sign in.
    :param store: keeps registered clients.
    :param keys: the ID-token signing keys.
    :param issuer: this server's public URL as the settings give it (without
        a trailing slash), the issuer identifier.
    :param clock: an ``IReactorTime``.
    """

    app = Klein()
    log = Logger()

    def __init__(self, microblog: Microblog, keys: SigningKeys, issuer: str, clock: Any) -> None:
        self.microblog = microblog
        self.keys = keys
        self.issuer = issuer
        #: OpenID Connect needs https, but on loopback (development).
        self.insecure = not is_secure_transport(self.issuer)
        self.clock = clock
        self._clients: dict[str, Client] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        #: Used codes and the token each bought: a code seen again revokes it.
        self._spent: dict[str, tuple[str | None, float]] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._nonces: dict[tuple[str, str], float] = {}
        self._registrations = RateLimiter(
            clock, window=REGISTRATION_WINDOW, limits={"register": REGISTRATIONS_PER_ADDRESS}
        )
        #: The state shared with the other processes of this server
        #: (:meth:`share`), else ``None``.
        self._shared: ISharedState | None = None
        #: Codes and tokens made by the request in progress, to share.
        self._fresh_codes: list[str] = []
        self._fresh_tokens: list[tuple[str, str | None]] = []
        self._fresh_revoked: list[str] = []
        self.server = self._authorization_server()

    def share(self, state: ISharedState) -> None:
        """
        Keep codes, tokens, used codes, nonces and registration counts in
        ``state`` too, so that a code made by one process of this server is
        exchanged by another, and a token it bought answers at any
        (docs/design/several-processes.md).  Authlib asks for them without
        waiting, so each request brings what it needs from ``state`` before
        Authlib runs, and shares what Authlib made after.
        """
        self._shared = state
        self._registrations = SharedRateLimiter(
            state, self.clock, "oidc-register", window=REGISTRATION_WINDOW,
            limits={"register": REGISTRATIONS_PER_ADDRESS},
        )

    async def _load_nonce(self, params: Mapping[str, list[str]]) -> None:
        client_id = (params.get("client_id") or [""])[0]
        nonce = (params.get("nonce") or [""])[0]
        if self._shared is None or not nonce:
            return
        if await self._shared.get(f"oidc-nonce:{client_id}:{nonce}") is not None:
            self._nonces[(client_id, nonce)] = self._now() + TOKEN_LIFETIME

    async def _share_fresh(self) -> None:
        codes, self._fresh_codes = self._fresh_codes, []
        tokens, self._fresh_tokens = self._fresh_tokens, []
        revoked, self._fresh_revoked = self._fresh_revoked, []
        if self._shared is None:
            return
        for token in revoked:
            await self._shared.take("oidc-token:" + token)
        for code in codes:
            found = self._codes.get(code)
            if found is None:
                continue
            record = {
                "client_id": found.client_id, "redirect_uri": found.redirect_uri,
                "scope": found.scope, "nonce": found.nonce,
                "code_challenge": found.code_challenge,
                "code_challenge_method": found.code_challenge_method,
                "user": found.user.screen_name, "auth_time": found.auth_time,
                "expires": found.expires,
            }
            await self._shared.put("oidc-code:" + code, json.dumps(record), CODE_LIFETIME)
            if found.nonce:
                await self._shared.put(
                    f"oidc-nonce:{found.client_id}:{found.nonce}", "1", TOKEN_LIFETIME
                )
        for token, code_used in tokens:
            access = self._tokens.get(token)
            if access is None:
                continue
            record = {"user": access.user.screen_name, "client_id": access.client_id,
                      "scope": access.scope, "expires": access.expires}
            await self._shared.put("oidc-token:" + token, json.dumps(record), TOKEN_LIFETIME)
            if code_used is not None:
                await self._shared.put("oidc-spent:" + code_used, token, TOKEN_LIFETIME)

    async def _load_code(self, code: str) -> None:
        """
        Bring a code another process made (taken: a code is used once); a
        code used before revokes the token it bought, everywhere.
        """
        if self._shared is None or not code:
            return
        # Whoever made it, the shared copy decides: the one taking it first
        # is the one use (this process's own copy may be spent elsewhere).
        self._codes.pop(code, None)
        raw = await self._shared.take("oidc-code:" + code)
        if raw is None:
            spent = await self._shared.get("oidc-spent:" + code)
            if spent:
                await self._shared.take("oidc-token:" + spent)
                self._spent[code] = (spent, self._now() + TOKEN_LIFETIME)
            return
        record = json.loads(raw)
        user = await self.microblog.local_user(record.pop("user"))
        if user is not None:
            self._codes[code] = AuthorizationCode(code=code, user=user, **record)

    async def _load_token(self, token: str) -> None:
        if self._shared is None or not token:
            return
        # The shared copy decides (another process may have revoked it).
        self._tokens.pop(token, None)
        raw = await self._shared.get("oidc-token:" + token)
        if raw is None:
            return
        record = json.loads(raw)
        user = await self.microblog.local_user(record.pop("user"))
        if user is not None:
            self._tokens[token] = AccessToken(user=user, **record)

    def resource(self) -> Any:
        return self.app.resource()

    # Authlib, bound to this provider

    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                return provider._clients.get(client_id)

            def save_token(self, token: dict[str, Any], request: Any) -> None:
                provider._save_token(token, request)

            def create_oauth2_request(self, request: Any) -> Any:
                return request

            def create_json_request(self, request: Any) -> Any:
                return request

            def handle_response(self, status: int, body: Any, headers: Any) -> Any:
                return _Response(status, body, list(headers))

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        class Code(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                provider._save_code(code, request)

            def query_authorization_code(self, code: str, client: Client) -> Any:
                return provider._find_code(code, client)

            def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
                provider._codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthorizationCode) -> Account:
                return authorization_code.user

        class OpenID(OpenIDCode):  # type: ignore[misc]
            DEFAULT_EXPIRES_IN = ID_TOKEN_LIFETIME

            def resolve_client_private_key(self, client: Client) -> Any:
                return provider.keys.signing_key

            def get_client_algorithm(self, client: Client) -> str:
                return ALGORITHM

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": ALGORITHM, "kid": provider.keys.kid, "typ": "JWT"}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                now = int(provider.clock.seconds())
                return {
                    "iss": provider.issuer,
                    "aud": [client.get_client_id()],
                    "iat": now,
                    "exp": now + ID_TOKEN_LIFETIME,
                }

            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return (request.payload.client_id, nonce) in provider._nonces

            def generate_user_info(self, user: Account, scope: str) -> UserInfo:
                return provider.user_info(user)

        class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
            claims_classes = [ClientMetadataClaims, OIDCClientMetadataClaims]

            def authenticate_token(self, request: Any) -> bool:
                # Open registration: any server may register to let its
                # visitors sign in with an account of ours.
                return True

            def get_server_metadata(self) -> dict[str, Any]:
                return provider.metadata()

            def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any],
                            request: Any) -> Client:
                return provider._new_client(client_info, client_metadata, request)

            def generate_client_info(self, request: Any) -> dict[str, Any]:
                info = super().generate_client_info(request)
                if request.payload.data.get("token_endpoint_auth_method") == "none":
                    info["client_secret"] = ""
                return info

        server = Server(scopes_supported=SCOPES)
        server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda *args, **kwargs: secrets.token_urlsafe(32),
                expires_generator=lambda client, grant_type: TOKEN_LIFETIME,
            ),
        )
        server.register_grant(Code, [_S256Only(required=True), OpenID(require_nonce=True)])
        server.register_endpoint(Registration)
        issuer_parameter = IssuerParameter()
        issuer_parameter.get_issuer = lambda: self.issuer  # type: ignore[method-assign]
        server.register_extension(issuer_parameter)
        return server

    # What Authlib keeps

    def _now(self) -> float:
        return float(self.clock.seconds())

    def _save_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self._expire()
        self._codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(),
            scope=request.scope or "",
            nonce=data.get("nonce") or "",
            code_challenge=data.get("code_challenge") or "",
            code_challenge_method=data.get("code_challenge_method") or "S256",
            user=request.user,
            # When the user signed in (OpenID Connect Core 2), else now.
            auth_time=int(getattr(request, "auth_time", None) or self._now()),
            expires=self._now() + CODE_LIFETIME,
        )
        self._fresh_codes.append(code)
        if data.get("nonce"):
            self._nonces[(request.client.get_client_id(), data["nonce"])] = (
                self._now() + TOKEN_LIFETIME
            )

    def _find_code(self, code: str, client: Client) -> AuthorizationCode | None:
        found = self._codes.get(code)
        if found is None:
            spent = self._spent.get(code)
            if spent is not None and spent[0] is not None:
                # A code used twice: whoever holds it now may have stolen
                # it, so the token the first use bought stops working.
                self._tokens.pop(spent[0], None)
                self._fresh_revoked.append(spent[0])
                self.log.warn("authorization code used twice: its token is revoked")
            return None
        if found.client_id != client.get_client_id() or found.expires < self._now():
            return None
        self._spent[code] = (None, self._now() + TOKEN_LIFETIME)
        return found

    def _save_token(self, token: dict[str, Any], request: Any) -> None:
        self._tokens[token["access_token"]] = AccessToken(
            user=request.user,
            client_id=request.client.get_client_id(),
            scope=token.get("scope", ""),
            expires=self._now() + TOKEN_LIFETIME,
        )
        code = request.authorization_code
        self._fresh_tokens.append((token["access_token"], code.code if code else None))
        if code is not None:
            self._spent[code.code] = (token["access_token"], self._now() + TOKEN_LIFETIME)

    def _new_client(self, info: dict[str, Any], metadata: dict[str, Any], request: Any) -> Client:
        client = Client(info["client_id"], info.get("client_secret") or "", dict(metadata))
        self._remember(client)
        request.writes.append(
            self.microblog.oidc.create_oidc_client(
                client.client_id, client.client_secret, json.dumps(metadata),
                int(self._now() * 1000),
            )
        )
        return client

    def _expire(self) -> None:
        now = self._now()
        for code in [k for k, v in self._codes.items() if v.expires < now]:
            del self._codes[code]
        for token in [k for k, t in self._tokens.items() if t.expires < now]:
            del self._tokens[token]
        for key in [k for k, (_, expires) in self._spent.items() if expires < now]:
            del self._spent[key]
        for pair in [k for k, expires in self._nonces.items() if expires < now]:
            del self._nonces[pair]

    def _remember(self, client: Client) -> None:
        if len(self._clients) >= CLIENT_CACHE:
            self._clients.clear()
        self._clients[client.client_id] = client

    async def load_client(self, client_id: str | None) -> Client | None:
        """
        The registered client ``client_id``, read into the cache Authlib
        reads from.
        """
        if not client_id or len(client_id) > 200:
            return None
        if client_id in self._clients:
            return self._clients[client_id]
        found = await self.microblog.oidc.get_oidc_client(client_id)
        if found is None:
            return None
        client = Client(found.client_id, found.client_secret, json.loads(found.metadata))
        self._remember(client)
        return client

    # Documents

    def metadata(self) -> dict[str, Any]:
        """
        The discovery document (OpenID Connect Discovery, RFC 8414).
        """
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": base + "/oidc/authorize",
            "token_endpoint": base + "/oidc/token",
            "userinfo_endpoint": base + "/oidc/userinfo",
            "jwks_uri": base + "/oidc/jwks",
            "registration_endpoint": base + "/oidc/register",
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": CLAIMS,
            "authorization_response_iss_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }

    def user_info(self, user: Account) -> UserInfo:
        return UserInfo(
            sub=user.handle.lower(),
            preferred_username=user.handle,
            name=user.name or user.handle,
            profile=f"{self.issuer}/{user.handle}",
        )

    def _request(self, request: IRequest, form: bool = False) -> _Request:
        headers = {
            k.decode("latin-1"): v[0].decode("latin-1")
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        query: dict[str, list[str]] = {}
        posted: dict[str, list[str]] = {}
        target = posted if form else query
        for key, values in (request.args or {}).items():
            target[key.decode("utf-8", "replace")] = [
                v.decode("utf-8", "replace") for v in values
            ]
        if form:
            # Klein merges the query into args; Authlib wants them apart.
            for key in _query_keys(request):
                query[key] = posted.pop(key, [])
        uri = self.issuer + request.uri.decode("latin-1")
        return _Request(request.method.decode("ascii"), uri, headers, query, posted)

    # The authorization endpoint, for the pages

    async def consent_request(
        self, params: Mapping[str, list[str]], user: Account | None
    ) -> Any:
        """
        Check an authorization request before showing the consent page.

        :return: ``(grant, client)`` for a request that may be shown, or
            ``(None, location)``: an error to send back to the client
            (its redirect URI is known and registered, and ``user``
            approved this client before).
        :raise ConsentError: unknown client or redirect URI, or an error
            for a client ``user`` never approved: anyone may register a
            client, so sending a browser to its address without the user's
            say would make this server an open redirector.
        """
        if self.insecure:
            raise ConsentError(INSECURE)
        client = await self.load_client((params.get("client_id") or [""])[0])
        if client is None:
            raise ConsentError(
                "No server is registered here with that client_id; "
                "the link that brought you here is broken or forged."
            )
        if not (params.get("redirect_uri") or [""])[0]:
            raise ConsentError(
                "The request names no redirect_uri, which OpenID Connect requires; "
                "the server that sent you here has to fix its request."
            )
        await self._load_nonce(params)
        request = self._authorize_request(params)
        approved = user is not None and await self.approved(user, client.client_id)
        try:
            grant = self.server.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            if isinstance(error, LoginRequiredError) and not approved:
                # prompt=none, signed out: nobody here is known to have
                # approved this client, so it is not sent back there.
                raise ConsentError(SIGNED_OUT_PROMPT_NONE) from None
            if not approved:
                raise ConsentError(_describe(error)) from None
            return None, self._error_location(request, error)
        for name in ("request", "request_uri"):
            if params.get(name):
                unsupported = OAuth2Error(
                    f"This server does not take {name}: send the parameters themselves.",
                    error=f"{name}_not_supported",
                )
                if not approved:
                    raise ConsentError(_describe(unsupported))
                return None, self.refuse(grant, unsupported)
        return grant, client

    async def approved(self, user: Account, client_id: str) -> bool:
        """
        Whether ``user`` approved this client on the consent page before:
        only then may a browser be sent to it without asking.
        """
        grants = await self.microblog.oidc.oidc_grants_of(user.id)
        return any(g.client_id == client_id for g in grants)

    def refuse(self, grant: Any, error: OAuth2Error) -> str:
        """
        Where to send the browser with ``error`` for a checked request.
        """
        error.redirect_uri = grant.request.payload.redirect_uri
        return self._error_location(grant.request, error)

    def login_required(self, grant: Any) -> str:
        return self.refuse(grant, LoginRequiredError(
            "Signing in again is needed, and prompt=none forbids asking."
        ))

    async def silently(self, grant: Any, params: Mapping[str, list[str]], user: Account,
                       auth_time: int | None) -> str:
        """
        ``prompt=none``: approve at once if the user approved this client
        before, else send back ``consent_required``.
        """
        client_id = grant.request.payload.client_id
        if await self.approved(user, client_id):
            return await self.authorize(params, user, True, auth_time)
        # Not sent back as consent_required: that would send the browser
        # to a client the user never approved, without asking.
        raise ConsentError(
            "You have not approved this server yet, and it asked not to ask you."
        )

    def _authorize_request(self, params: Mapping[str, list[str]]) -> _Request:
        return _Request("GET", self.issuer + "/oidc/authorize", {}, dict(params), {})

    def _error_location(self, request: Any, error: OAuth2Error) -> str:
        if error.redirect_uri is None:
            raise ConsentError(_describe(error))
        error.state = request.payload.state
        location = self.server.handle_error_response(request, error).location or ""
        if "iss=" not in location:
            location = add_params_to_uri(location, [("iss", self.issuer)])
        return str(location)

    async def authorize(
        self, params: Mapping[str, list[str]], user: Account, approve: bool,
        auth_time: int | None = None,
    ) -> str:
        """
        The visitor approved (or denied) on the consent page: where to send
        their browser back to, with a code (or an error), the state and the
        issuer.

        :raise ConsentError: unknown client or redirect URI.
        """
        grant, found = await self.consent_request(params, user)
        if grant is None:
            return str(found)
        request = grant.request
        request.auth_time = auth_time
        self._fresh_codes = []
        location = self.server.create_authorization_response(
            request, grant_user=user if approve else None, grant=grant
        ).location
        await self._share_fresh()
        if not location:
            raise ConsentError("This sign-in request cannot be answered.")
        if approve:
            await self.microblog.oidc.record_oidc_grant(
                user.id, found.client_id, int(self._now() * 1000)
            )
        return str(location)

    # JSON endpoints

    @app.route("/jwks", methods=["GET"])
    def jwks(self, request: IRequest) -> bytes:
        request.setHeader(b"cache-control", b"public, max-age=300")
        return _json(request, 200, self.keys.public_jwks())

    def discovery(self, request: IRequest) -> bytes:
        request.setHeader(b"access-control-allow-origin", b"*")
        return _json(request, 200, self.metadata())

    @app.route("/register", methods=["POST"])
    async def register(self, request: IRequest) -> bytes:
        if self.insecure:
            return _oauth_error(request, 400, "invalid_request", INSECURE)
        address = client_address(request)
        if not (await self._registrations.take(address, "register", "register")).allowed:
            request.setHeader(b"retry-after", str(REGISTRATION_WINDOW).encode("ascii"))
            return _oauth_error(
                request, 429, "invalid_request",
                "Too many registrations from your address; a server registers once.",
            )
        try:
            body = read_body(request, MAX_BODY)
        except HTTPError as e:
            return _oauth_error(request, e.code, "invalid_request", e.message)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _oauth_error(
                request, 400, "invalid_client_metadata", "The body must be a JSON object."
            )
        uris = data.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(
            isinstance(u, str) and _is_web_uri(u) for u in uris
        ):
            return _oauth_error(
                request, 400, "invalid_redirect_uri",
                "redirect_uris must be a list of http(s) URLs without fragments.",
            )
        if data.get("id_token_signed_response_alg", ALGORITHM) != ALGORITHM:
            return _oauth_error(
                request, 400, "invalid_client_metadata",
                f"ID tokens are signed with {ALGORITHM} only.",
            )
        if "userinfo_signed_response_alg" in data:
            return _oauth_error(
                request, 400, "invalid_client_metadata",
                "userinfo answers are plain JSON here, never signed.",
            )
        if data.get("token_endpoint_auth_method", "client_secret_basic") not in (
            "client_secret_basic", "client_secret_post", "none"
        ):
            return _oauth_error(
                request, 400, "invalid_client_metadata",
                "token_endpoint_auth_method must be client_secret_basic, "
                "client_secret_post or none.",
            )
        # RFC 7591 section 3.2.1: the server may register fewer response
        # and grant types than asked, and says so in its answer.
        for name, supported in (("response_types", "code"),
                                ("grant_types", "authorization_code")):
            if name not in data:
                continue
            asked = data[name]
            if not isinstance(asked, list) or supported not in asked:
                return _oauth_error(
                    request, 400, "invalid_client_metadata",
                    f"{name} must include {supported!r}: the only one supported here.",
                )
            data[name] = [supported]
        headers = {"Content-Type": "application/json"}
        r = _JsonRequest("POST", self.issuer + "/oidc/register", headers, data)
        response = self.server.create_endpoint_response("client_registration", r)
        for d in r.writes:
            await d
        if response.status == 201:
            self.log.info(
                "a relying party registered: {name} ({uris})",
                name=data.get("client_name", ""), uris=", ".join(uris),
            )
        return _json(request, response.status, response.body)

    @app.route("/token", methods=["POST"])
    async def token(self, request: IRequest) -> bytes:
        if self.insecure:
            return _oauth_error(request, 400, "invalid_request", INSECURE)
        r = self._request(request, form=True)
        await self.load_client(_client_id_of(r))
        self._expire()
        await self._load_code(str(r.payload.data.get("code") or ""))
        self._fresh_tokens = []
        self._fresh_revoked = []
        response = self.server.create_token_response(r)
        await self._share_fresh()
        for name, value in response.headers:
            if name.lower() == "www-authenticate":
                request.setHeader(b"www-authenticate", value.encode("latin-1"))
        return _json(request, response.status, response.body)

    @app.route("/userinfo", methods=["GET", "POST"])
    async def userinfo(self, request: IRequest) -> bytes:
        auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, value = auth.partition(" ")
        posted = (request.args or {}).get(b"access_token") if request.method == b"POST" else None
        if posted and b"access_token=" in (request.uri.split(b"?", 1) + [b""])[1]:
            posted = None  # RFC 6750 2.2: in the body, never the query
        if auth and posted:
            return _oauth_error(
                request, 400, "invalid_request",
                "Send the access token one way: the Authorization header or the form body.",
            )
        if posted:
            scheme, value = "bearer", posted[0].decode("latin-1")
        if scheme.lower() == "bearer":
            await self._load_token(value.strip())
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.expires < self._now():
            request.setHeader(b"www-authenticate", b'Bearer error="invalid_token"')
            return _oauth_error(
                request, 401, "invalid_token", "The access token is missing, unknown or expired."
            )
        return _json(request, 200, dict(self.user_info(token.user)))


#: The answer to ``prompt=none`` from a signed-out browser.
SIGNED_OUT_PROMPT_NONE = (
    "You are not signed in here, and the server that sent you asked not to ask you to."
)


def _describe(error: OAuth2Error) -> str:
    description = error.description or error.error
    return f"{description} ({error.error})" if error.description else str(description)


def _query_keys(request: IRequest) -> list[str]:
    query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
    return [k for k in parse_qs(query.decode("latin-1"), keep_blank_values=True)]


def _client_id_of(request: _Request) -> str | None:
    """
    The client a token request comes from: HTTP Basic or the form.
    """
    auth = request.headers.get("Authorization") or request.headers.get("authorization") or ""
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])
    return request.payload.data.get("client_id")


def _is_web_uri(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def _json(request: IRequest, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    if not request.responseHeaders.hasHeader(b"cache-control"):
        request.setHeader(b"cache-control", b"no-store")
    if isinstance(body, (bytes, str)):
        return body.encode() if isinstance(body, str) else body
    return json.dumps(body).encode("utf-8")


def _oauth_error(request: IRequest, status: int, error: str, description: str) -> bytes:
    return _json(request, status, {"error": error, "error_description": description})

