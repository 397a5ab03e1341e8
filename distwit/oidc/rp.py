"""
The relying party: visitors from other servers sign in here with their
home server as OpenID Connect provider.

A visitor types ``handle@authority`` (or ``acct:handle@authority``, or a
profile URL ``https://authority/handle``).  :meth:`RelyingParty.begin`
finds the visitor's provider with no introduction in advance:

1. WebFinger ``acct:handle@authority`` on the authority gives the issuer
   (link ``http://openid.net/specs/connect/1.0/issuer``);
2. ``{issuer}/.well-known/openid-configuration`` gives the endpoints; its
   ``issuer`` must be the same, character for character;
3. on first contact this server registers itself as a client (dynamic
   client registration, RFC 7591) and keeps what it got per issuer
   (:class:`IRegistrations`);
4. the visitor goes to the authorization endpoint with a fresh state,
   nonce and PKCE S256 challenge, which :class:`PendingSignIn` keeps.

On the way back, :meth:`RelyingParty.finish` checks the state and the
``iss`` parameter (RFC 9207), exchanges the code (with the PKCE verifier),
checks the ID token (signature by a key of the provider's key set, from an
allow-list of algorithms; issuer; audience; expiry; nonce) and maps the
verified (issuer, subject) to ``handle@authority`` by asking WebFinger on
the issuer's own host whether that account names that issuer.  The
identity is what the provider vouches for, not what the visitor typed.

Everything that can go wrong ends as :class:`SignInError`, whose message
is for the visitor.  What the visitor typed or brought back
(:class:`VisitorError`: a malformed address, a stale or forged answer) is
explained; what another server answered, or that it could not be reached,
never is: the visitor reads only that the server they named did not answer
as it should, and the detail goes to the log (a stranger must not learn
from our pages what a host answers, nor whether a port is open on it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from twisted.internet.defer import CancelledError, DeferredList, DeferredLock, ensureDeferred
from twisted.logger import Logger
from zope.interface import implementer

from distwit.model import is_valid_handle
from distwit.oidc.interfaces import IRegistrations
from distwit.oidc.safe_fetch import FetchError, SafeFetcher, quoted
from distwit.s2s import client as s2s_client
from distwit.core.accts import authority_of
from distwit.store.shared import ISharedState

#: The WebFinger link relation naming an account's OpenID Connect issuer.
ISSUER_REL = "http://openid.net/specs/connect/1.0/issuer"

#: ID token signature algorithms accepted (never ``none`` nor a shared
#: secret).
ALLOWED_ALGORITHMS = ("RS256", "ES256", "EdDSA")

#: The scopes asked for.
SCOPE = "openid profile"

#: Seconds a sign-in may take from :meth:`RelyingParty.begin` to
#: :meth:`RelyingParty.finish`.
MAX_PENDING_AGE = 600.0

#: Seconds of clock difference tolerated with a provider.
LEEWAY = 60.0

#: Seconds a provider's key set is reused before it is fetched again.
JWKS_MAX_AGE = 3600.0

#: Key sets remembered at once.
JWKS_CACHE_SIZE = 256

#: The most characters of what the visitor typed that a message shows
#: back, unbroken: a failed sign-in page must not run off a phone's screen.
MAX_SHOWN = 30

#: The longest detail of a failed sign-in written to the log (one line).
MAX_LOGGED = 1000


class SignInError(Exception):
    """
    A sign-in with a home server failed; the message says why, for the
    visitor (it names what they typed when there is something to name).

    Raised inside the relying party, it may hold what another server
    answered: :meth:`RelyingParty.begin` and :meth:`RelyingParty.finish`
    log such a message and show the visitor a generic one instead (only a
    :class:`VisitorError` reaches the visitor as it is).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class VisitorError(SignInError):
    """
    A sign-in failed because of what the visitor typed or brought back (a
    malformed address, an expired or forged answer): the message says so,
    and says nothing another server answered.
    """


def shown(text: str) -> str:
    """
    What the visitor typed, on one line and short, for a message.
    """
    return s2s_client.quoted(text, MAX_SHOWN)


@implementer(IRegistrations)
class MemoryRegistrations:
    """
    Registrations in a dict: for tests, and for a server that does not
    mind registering again after a restart.
    """

    def __init__(self) -> None:
        self.registrations: dict[str, dict[str, Any]] = {}

    async def get(self, issuer: str) -> dict[str, Any] | None:
        info = self.registrations.get(issuer)
        return None if info is None else dict(info)

    async def put(self, issuer: str, info: dict[str, Any]) -> None:
        self.registrations[issuer] = dict(info)


@dataclass(frozen=True)
class PendingSignIn:
    """
    A sign-in between :meth:`RelyingParty.begin` and
    :meth:`RelyingParty.finish`.  The caller keeps it on the server side
    (it holds the PKCE verifier), e.g. as :meth:`to_json` in the visitor's
    session, and finds it again by :attr:`state`.
    """

    #: What the visitor typed (for messages).
    identifier: str
    issuer: str
    client_id: str
    state: str
    nonce: str
    code_verifier: str
    token_endpoint: str
    jwks_uri: str
    #: The provider sends ``iss`` with the answer (RFC 9207): it must then.
    iss_parameter_required: bool
    #: When :meth:`RelyingParty.begin` made it, by the relying party's clock.
    created: float

    def to_json(self) -> str:
        """
        This sign-in as JSON text, for :meth:`from_json`.
        """
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> PendingSignIn:
        """
        The sign-in that :meth:`to_json` gave.

        :raise SignInError: ``text`` is not such a sign-in.
        """
        broken = VisitorError("This sign-in cannot be read; please start again.")
        try:
            value = json.loads(text)
        except ValueError:
            raise broken from None
        if not isinstance(value, dict):
            raise broken
        kwargs: dict[str, Any] = {}
        for field in fields(cls):
            item = value.get(field.name)
            if field.name == "iss_parameter_required":
                ok = isinstance(item, bool)
            elif field.name == "created":
                ok = isinstance(item, (int, float)) and not isinstance(item, bool)
            else:
                ok = isinstance(item, str)
            if not ok:
                raise broken
            kwargs[field.name] = item
        return cls(**kwargs)


@dataclass(frozen=True)
class RemoteIdentity:
    """
    A visitor's identity as their home server vouched for it.
    """

    issuer: str
    #: The provider's ``sub``: stable for the account.
    subject: str
    #: The handle as the provider writes it (``preferred_username``).
    handle: str
    #: host[:port] of the issuer.
    authority: str

    @property
    def acct(self) -> str:
        """
        ``handle@authority``.
        """
        return f"{self.handle}@{self.authority}"


@dataclass(frozen=True)
class _Provider:
    """
    What discovery said, checked.
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...]
    algorithms: tuple[str, ...]
    iss_parameter_supported: bool


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(code_verifier: str) -> str:
    """
    The PKCE ``S256`` challenge of ``code_verifier`` (RFC 7636).
    """
    return _b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


def parse_identifier(identifier: str) -> tuple[str, str, str | None]:
    """
    ``(handle, authority, scheme)`` from what a visitor typed:
    ``handle@authority``, ``@handle@authority``, ``acct:handle@authority``
    or a profile URL ``https://authority/handle`` (whose scheme is then
    given; else ``None``).  The authority comes back in lower case, a
    non-ASCII host name in its IDNA form.

    :raise SignInError: it is none of those.
    """
    typed = identifier.strip()
    typed_shown = shown(typed) or "(nothing)"
    usage = VisitorError(
        f"{typed_shown} is not an account: type it as handle@server "
        "(for example alice@example.org) or as your profile's address"
    )
    scheme: str | None = None
    if "://" in typed:
        url = typed
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise usage
    else:
        if typed.lower().startswith("acct:"):
            typed = typed[5:]
        handle, at, authority = typed.removeprefix("@").rpartition("@")
        if not at or "/" in authority:
            raise usage
        url = f"//{authority}/{handle}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise usage from None
    host = parts.hostname
    if not host or parts.username is not None or parts.query or parts.fragment:
        raise usage
    handle = parts.path.strip("/")
    if not is_valid_handle(handle):
        raise VisitorError(
            f"{typed_shown}: {shown(handle) or 'the handle'} is not a handle "
            "(1 to 15 letters, digits or underscores)"
        )
    if not host.isascii():
        try:
            import idna

            host = idna.encode(host, uts46=True).decode("ascii")
        except Exception:
            raise usage from None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None else f"{host}:{port}"
    return handle, authority.lower(), scheme


def _random() -> str:
    return secrets.token_urlsafe(32)


class RelyingParty:
    """
    Signs visitors in with their home server.

    :param fetcher: fetches what the provider publishes (its limits apply:
        https only, no private addresses, unless it allows them).
    :param registrations: where registrations are kept per issuer.
    :param public_url: this server's public URL as the settings hold it
        (no trailing slash); the redirect URI is
        ``{public_url}/login/callback``.
    :param clock: the time (``seconds()``) of pending sign-ins and tokens.
    :param client_name: the name this server registers under, shown on
        providers' consent pages.
    """

    log = Logger()

    def __init__(
        self,
        fetcher: SafeFetcher,
        registrations: IRegistrations,
        public_url: str,
        clock: Any,
        client_name: str,
    ) -> None:
        self._fetcher = fetcher
        self._registrations = registrations
        self.public_url = public_url
        self.redirect_uri = f"{self.public_url}/login/callback"
        self._clock = clock
        self.client_name = client_name
        self._registering: dict[str, DeferredLock] = {}
        self._jwks: dict[str, tuple[float, KeySet]] = {}
        #: The state shared by the processes of this server (``--redis``),
        #: set by the composition root: sign-ins on their way are kept
        #: there, since the callback may come to another process.
        self.shared: ISharedState | None = None

    async def keep_pending(self, token: str, pending: PendingSignIn, next_path: str,
                           lifetime: float) -> bool:
        """
        Keep a sign-in on its way, found by ``token`` (the visitor's
        cookie), in the shared state; ``False`` when there is none (the
        caller keeps it in memory).
        """
        if self.shared is None:
            return False
        record = json.dumps({"pending": pending.to_json(), "next": next_path})
        await self.shared.put("signin:" + token, record, lifetime)
        return True

    async def claim_pending(self, token: str) -> tuple[PendingSignIn, str] | None:
        """
        The sign-in kept by :meth:`keep_pending` (gone from the shared state
        at once: a callback is used once), and where to go after; ``None``
        if there is none, or it expired.
        """
        if self.shared is None:
            return None
        raw = await self.shared.take("signin:" + token)
        if raw is None:
            return None
        record = json.loads(raw)
        return PendingSignIn.from_json(record["pending"]), str(record["next"])

    # The two steps.

    async def begin(self, identifier: str) -> tuple[str, PendingSignIn]:
        """
        Find the provider of ``identifier``, register with it if this is
        the first contact, and make an authorization request.

        :return: the URL to send the visitor to, and the sign-in to keep
            for :meth:`finish`.
        :raise SignInError: saying why the sign-in cannot start.
        """
        return await self._guarded(
            self._begin(identifier), identifier, "did not answer as a distwit/OpenID server"
        )

    async def finish(
        self, pending: PendingSignIn, params: Mapping[str, str]
    ) -> RemoteIdentity:
        """
        Complete a sign-in from the parameters of the callback request.

        :param params: the callback's query parameters (``code``,
            ``state``, ``iss``, or ``error``, ``error_description``).
        :return: the visitor's verified identity.
        :raise SignInError: saying why the sign-in failed.
        """
        return await self._guarded(
            self._finish(pending, params), pending.identifier, "did not confirm who you are"
        )

    async def _guarded(self, work: Any, identifier: str, failed: str) -> Any:
        """
        The result of ``work``, or the :class:`SignInError` the visitor
        reads: a :class:`VisitorError` as it is (after what they typed);
        for anything another server answered or did not, only that the
        server they named ``failed``, the detail in the log.
        """
        typed = identifier.strip()
        prefix = shown(typed) or "sign-in"
        try:
            return await work
        except VisitorError as e:
            if e.message.startswith(prefix):
                raise
            raise VisitorError(f"{prefix}: {e.message}") from None
        except (SignInError, FetchError) as e:
            self.log.info(
                "signing in {identifier} failed: {detail}",
                identifier=quoted(typed),
                detail=s2s_client.quoted(e.message, MAX_LOGGED),
            )
            raise SignInError(f"{self._server_of(typed)} {failed}.") from None
        except CancelledError:
            raise  # our caller gave up: not a failure of the sign-in
        except Exception:
            self.log.failure("signing in {identifier} failed", identifier=identifier)
            raise SignInError(
                f"{prefix}: the sign-in failed because of an error on this server"
            ) from None

    @staticmethod
    def _server_of(identifier: str) -> str:
        """
        The server in what the visitor typed, short, for a message.
        """
        try:
            authority = parse_identifier(identifier)[1]
        except SignInError:
            return "Your server"
        return shown(authority)

    async def _begin(self, identifier: str) -> tuple[str, PendingSignIn]:
        handle, authority, scheme = parse_identifier(identifier)
        issuer = await self.issuer_of(handle, authority, scheme)
        provider = await self._discover(issuer)
        registration = await self._registration(provider)
        state, nonce, code_verifier = _random(), _random(), secrets.token_urlsafe(48)
        pending = PendingSignIn(
            identifier=identifier.strip(),
            issuer=provider.issuer,
            client_id=registration["client_id"],
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
            token_endpoint=provider.token_endpoint,
            jwks_uri=provider.jwks_uri,
            iss_parameter_required=provider.iss_parameter_supported,
            created=self._clock.seconds(),
        )
        query = {
            "response_type": "code",
            "client_id": pending.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": s256(code_verifier),
            "code_challenge_method": "S256",
        }
        return _with_query(provider.authorization_endpoint, query), pending

    async def _finish(
        self, pending: PendingSignIn, params: Mapping[str, str]
    ) -> RemoteIdentity:
        now = self._clock.seconds()
        if now - pending.created > MAX_PENDING_AGE:
            raise VisitorError(
                f"this sign-in was started more than {MAX_PENDING_AGE / 60:g} minutes "
                "ago; please start again"
            )
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode("utf-8"), pending.state.encode("utf-8")):
            raise VisitorError(
                "the answer does not belong to this sign-in (its state is wrong); "
                "please start again"
            )
        iss = params.get("iss")
        if iss is not None and iss != pending.issuer:
            raise SignInError(
                f"the answer comes from {quoted(iss)}, not from {pending.issuer}"
            )
        if iss is None and pending.iss_parameter_required:
            raise SignInError(
                f"the answer does not say it comes from {pending.issuer} (no iss)"
            )
        error = params.get("error")
        if error is not None:
            if error == "access_denied":
                # The visitor's own choice, which their browser brought back.
                raise VisitorError(
                    f"{self._server_of(pending.identifier)} did not approve the sign-in"
                )
            description = params.get("error_description")
            detail = f"{description} ({error})" if description else error
            raise SignInError(
                f"{authority_of(pending.issuer)} refused the sign-in: {quoted(detail)}"
            )
        code = params.get("code")
        if not code:
            raise SignInError("the answer holds no authorization code")
        registration = await self._registrations.get(pending.issuer)
        if registration is None or registration.get("client_id") != pending.client_id:
            raise VisitorError(
                "this server's registration with your server changed during "
                "the sign-in; please start again"
            )
        id_token = await self._exchange(pending, registration, code)
        claims = await self._validate(pending, id_token, now)
        return await self._identity(pending.issuer, claims)

    # Discovery.

    async def issuer_of(self, handle: str, authority: str, scheme: str | None = None) -> str:
        """
        The issuer WebFinger names for ``acct:handle@authority``.

        :param scheme: ask over this scheme only; by default https, or,
            when the fetcher allows http (development), https and http at
            once: a plain-http server never answers a TLS hello, so asking
            https first would cost the whole time limit.  The first answer
            wins.
        :raise SignInError: no issuer could be found.
        """
        resource = f"acct:{handle}@{authority}"
        if scheme or not self._fetcher.allow_http:
            return await self._issuer_over(scheme or "https", authority, resource)
        attempts = [
            ensureDeferred(self._issuer_over(each, authority, resource))
            for each in ("https", "http")
        ]
        done = await DeferredList(attempts, fireOnOneCallback=True, consumeErrors=True)
        for attempt in attempts:
            attempt.cancel()
        if isinstance(done, tuple):
            return str(done[0])
        errors = [failure.value for _, failure in done]
        # A server that answered (wrongly) says more than one not reached.
        for error in errors:
            if not isinstance(error, FetchError) or error.answered:
                raise error
        raise errors[0]

    async def _issuer_over(self, scheme: str, authority: str, resource: str) -> str:
        url = (
            f"{scheme}://{authority}/.well-known/webfinger?"
            + urlencode({"resource": resource, "rel": ISSUER_REL})
        )
        jrd = await self._fetcher.get_json(url, "the WebFinger answer")
        return self._issuer_in(jrd, url)

    def _issuer_in(self, jrd: Any, url: str) -> str:
        if not isinstance(jrd, dict) or not isinstance(jrd.get("links", []), list):
            raise SignInError(f"the WebFinger answer at {url} is not a JRD document")
        for link in jrd.get("links", []):
            if isinstance(link, dict) and link.get("rel") == ISSUER_REL:
                href = link.get("href")
                if not isinstance(href, str):
                    break
                self._check_issuer(href, f"the issuer named by {url}")
                return href
        raise SignInError(
            f"the WebFinger answer at {url} names no OpenID Connect provider "
            "for this account"
        )

    def _check_issuer(self, issuer: str, what: str) -> None:
        self._fetcher.check_url(issuer, what)
        parts = urlsplit(issuer)
        if parts.query or parts.fragment:
            raise SignInError(f"{what}, {quoted(issuer)}, is not an issuer URL")

    async def _discover(self, issuer: str) -> _Provider:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._fetcher.get_json(url, "the provider's discovery document")
        if not isinstance(document, dict):
            raise SignInError(f"the discovery document at {url} is not a JSON object")
        if document.get("issuer") != issuer:
            said = document.get("issuer")
            raise SignInError(
                f"the discovery document at {url} names the issuer "
                f"{quoted(str(said)) if said is not None else '(none)'}, "
                f"not {issuer}"
            )

        def endpoint(name: str, required: bool = True) -> str | None:
            value = document.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str):
                raise SignInError(f"the discovery document at {url} gives no {name}")
            self._fetcher.check_url(value, f"the {name} of {issuer}")
            return value

        def names(name: str, default: list[str]) -> list[str]:
            value = document.get(name, default)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SignInError(f"the discovery document at {url}: {name} is not a list")
            return value

        authorization_endpoint = endpoint("authorization_endpoint")
        token_endpoint = endpoint("token_endpoint")
        jwks_uri = endpoint("jwks_uri")
        registration_endpoint = endpoint("registration_endpoint", required=False)
        assert authorization_endpoint and token_endpoint and jwks_uri
        if "code" not in names("response_types_supported", []):
            raise SignInError(f"{issuer} does not offer the authorization code flow")
        if "S256" not in names("code_challenge_methods_supported", []):
            raise SignInError(
                f"{issuer} does not say it supports PKCE with S256, "
                "which this server requires"
            )
        offered = names("id_token_signing_alg_values_supported", ["RS256"])
        algorithms = tuple(a for a in offered if a in ALLOWED_ALGORITHMS)
        if not algorithms:
            raise SignInError(
                f"{issuer} signs ID tokens only with {quoted(', '.join(offered))}, "
                f"none of which this server accepts ({', '.join(ALLOWED_ALGORITHMS)})"
            )
        methods = names("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        return _Provider(
            issuer=issuer,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            jwks_uri=jwks_uri,
            registration_endpoint=registration_endpoint,
            token_endpoint_auth_methods=tuple(methods),
            algorithms=algorithms,
            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
            is True,
        )

    # Registration.

    async def _registration(self, provider: _Provider) -> dict[str, Any]:
        lock = self._registering.setdefault(provider.issuer, DeferredLock())
        await lock.acquire()
        try:
            known = await self._registrations.get(provider.issuer)
            if known is not None and self._usable(known):
                return dict(known)
            info = await self._register(provider)
            await self._registrations.put(provider.issuer, info)
            return info
        finally:
            lock.release()
            if not lock.waiting and not lock.locked:
                self._registering.pop(provider.issuer, None)

    def _usable(self, registration: Mapping[str, Any]) -> bool:
        """
        Whether a kept registration still serves: same redirect URI, and a
        secret that has not expired.
        """
        if not isinstance(registration.get("client_id"), str):
            return False
        if self.redirect_uri not in (registration.get("redirect_uris") or []):
            return False
        expires = registration.get("client_secret_expires_at") or 0
        if isinstance(expires, (int, float)) and 0 < expires <= self._clock.seconds() + 60:
            return False
        return True

    async def _register(self, provider: _Provider) -> dict[str, Any]:
        if provider.registration_endpoint is None:
            raise SignInError(
                f"{provider.issuer} does not let other servers register "
                "(its discovery document gives no registration_endpoint)"
            )
        for method in ("client_secret_basic", "client_secret_post", "none"):
            if method in provider.token_endpoint_auth_methods:
                break
        else:
            raise SignInError(
                f"{provider.issuer} offers no way of authenticating clients that "
                "this server knows"
            )
        algorithm = "RS256" if "RS256" in provider.algorithms else provider.algorithms[0]
        request = {
            "redirect_uris": [self.redirect_uri],
            "client_name": self.client_name,
            "client_uri": self.public_url,
            "application_type": "web",
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": method,
            "id_token_signed_response_alg": algorithm,
        }
        answer = await self._fetcher.post_json(
            provider.registration_endpoint, request, "the registration of this server"
        )
        where = f"the registration at {provider.registration_endpoint}"
        if not isinstance(answer, dict) or not isinstance(answer.get("client_id"), str):
            raise SignInError(f"{where} gave no client_id")
        method = answer.get("token_endpoint_auth_method", method)
        if method not in ("client_secret_basic", "client_secret_post", "none"):
            raise SignInError(f"{where} chose {quoted(str(method))}, which this server cannot use")
        if method != "none" and not isinstance(answer.get("client_secret"), str):
            raise SignInError(f"{where} gave no client_secret")
        redirect_uris = answer.get("redirect_uris", [self.redirect_uri])
        if redirect_uris != [self.redirect_uri]:
            raise SignInError(f"{where} did not keep this server's redirect URI")
        info: dict[str, Any] = {
            "client_id": answer["client_id"],
            "token_endpoint_auth_method": method,
            "redirect_uris": [self.redirect_uri],
            "registered_at": self._clock.seconds(),
        }
        if method != "none":
            info["client_secret"] = answer["client_secret"]
            expires = answer.get("client_secret_expires_at", 0)
            info["client_secret_expires_at"] = expires if isinstance(expires, int) else 0
        self.log.info(
            "registered with {issuer} as client {client_id}",
            issuer=provider.issuer,
            client_id=info["client_id"],
        )
        return info

    # The code and the ID token.

    async def _exchange(
        self, pending: PendingSignIn, registration: Mapping[str, Any], code: str
    ) -> str:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        method = registration.get("token_endpoint_auth_method", "client_secret_basic")
        auth: tuple[str, str] | None = None
        if method == "client_secret_basic":
            auth = (pending.client_id, str(registration.get("client_secret", "")))
        elif method == "client_secret_post":
            form["client_id"] = pending.client_id
            form["client_secret"] = str(registration.get("client_secret", ""))
        else:
            form["client_id"] = pending.client_id
        answer = await self._fetcher.post_form(
            pending.token_endpoint, form, auth, "the exchange of the authorization code"
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            raise SignInError(
                f"the token endpoint of {pending.issuer} gave no ID token"
            )
        token: str = answer["id_token"]
        return token

    async def _keys(self, jwks_uri: str, fresh: bool) -> KeySet:
        now = self._clock.seconds()
        cached = self._jwks.get(jwks_uri)
        if cached is not None and not fresh and now - cached[0] < JWKS_MAX_AGE:
            return cached[1]
        document = await self._fetcher.get_json(jwks_uri, "the provider's keys (JWKS)")
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise SignInError(f"the keys at {jwks_uri} are not a JWK set")
        usable = [
            key
            for key in document["keys"]
            if isinstance(key, dict) and key.get("use", "sig") == "sig"
            and key.get("kty") in ("RSA", "EC", "OKP")
        ]
        try:
            keys = KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError) as e:
            raise SignInError(f"the keys at {jwks_uri} cannot be read ({quoted(str(e))})") from None
        if len(self._jwks) >= JWKS_CACHE_SIZE:
            oldest = min(self._jwks, key=lambda uri: self._jwks[uri][0])
            del self._jwks[oldest]
        self._jwks[jwks_uri] = (now, keys)
        return keys

    async def _validate(self, pending: PendingSignIn, id_token: str, now: float) -> dict[str, Any]:
        issuer = pending.issuer
        bad = f"the ID token from {issuer}"
        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as e:
            raise SignInError(f"{bad} cannot be read ({quoted(str(e))})") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise SignInError(
                f"{bad} is signed with {quoted(str(alg))}, which this server does not "
                f"accept (only {', '.join(ALLOWED_ALGORITHMS)})"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise SignInError(f"{bad} names its key strangely (kid)")
        key = await self._key(pending.jwks_uri, kid, alg, fresh=False)
        if key is None:
            # A key new since we last looked: the provider may have rotated.
            key = await self._key(pending.jwks_uri, kid, alg, fresh=True)
        if key is None:
            raise SignInError(
                f"{bad} is signed with a key that {issuer} does not publish"
                + (f" (kid {quoted(kid)})" if kid else "")
            )
        try:
            token = jwt.decode(id_token, key, algorithms=[alg])
        except JoseError as e:
            raise SignInError(f"{bad} has a bad signature ({quoted(str(e))})") from None
        claims: dict[str, Any] = dict(token.claims)
        self._check_claims(pending, claims, now, bad)
        return claims

    async def _key(self, jwks_uri: str, kid: str | None, alg: str, fresh: bool) -> Any:
        keys = await self._keys(jwks_uri, fresh)
        kty = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}[alg]
        candidates = [
            key
            for key in keys.keys
            if key.key_type == kty and (kid is None or key.kid == kid)
        ]
        if kid is None and len(candidates) != 1:
            # Without a kid, only a lone key of the right type is certain.
            return None
        return candidates[0] if candidates else None

    def _check_claims(
        self, pending: PendingSignIn, claims: Mapping[str, Any], now: float, bad: str
    ) -> None:
        if claims.get("iss") != pending.issuer:
            raise SignInError(
                f"{bad} says it was issued by {quoted(str(claims.get('iss')))}, "
                f"not by {pending.issuer}"
            )
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or pending.client_id not in audiences:
            raise SignInError(f"{bad} was made for another client, not for this server")
        azp = claims.get("azp")
        if len(audiences) > 1 and azp is None:
            raise SignInError(f"{bad} has several audiences and no azp")
        if azp is not None and azp != pending.client_id:
            raise SignInError(f"{bad} was made for another client (azp), not for this server")

        def number(name: str) -> float | None:
            value = claims.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SignInError(f"{bad} has a bad {name}")
            return float(value)

        exp, iat, nbf = number("exp"), number("iat"), number("nbf")
        if exp is None or iat is None:
            raise SignInError(f"{bad} has no {'exp' if exp is None else 'iat'}")
        if exp + LEEWAY <= now:
            raise SignInError(f"{bad} has expired")
        if iat - LEEWAY > now:
            raise SignInError(f"{bad} was issued in the future (iat); is a clock wrong?")
        if iat + LEEWAY < pending.created:
            raise SignInError(f"{bad} was issued before this sign-in started (iat)")
        if nbf is not None and nbf - LEEWAY > now:
            raise SignInError(f"{bad} is not valid yet (nbf)")
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(
            nonce.encode("utf-8"), pending.nonce.encode("utf-8")
        ):
            raise SignInError(f"{bad} was not made for this sign-in (its nonce is wrong)")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise SignInError(f"{bad} names no subject (sub)")

    # The identity.

    async def _identity(self, issuer: str, claims: Mapping[str, Any]) -> RemoteIdentity:
        subject: str = claims["sub"]
        preferred = claims.get("preferred_username")
        handle = preferred if isinstance(preferred, str) and preferred else subject
        authority = authority_of(issuer)
        if not is_valid_handle(handle):
            raise SignInError(
                f"{issuer} signed you in as {quoted(handle)}, which is not a handle "
                "this server can use (1 to 15 letters, digits or underscores)"
            )
        # The provider vouches for its own accounts only: its host must
        # name it as the issuer of handle@host.
        named = await self.issuer_of(handle, authority, urlsplit(issuer).scheme)
        if named != issuer:
            raise SignInError(
                f"{issuer} signed you in as {handle}@{authority}, but WebFinger for "
                f"{handle}@{authority} names another provider ({quoted(named)})"
            )
        return RemoteIdentity(issuer=issuer, subject=subject, handle=handle, authority=authority)


def _with_query(url: str, query: Mapping[str, str]) -> str:
    """
    ``url`` with ``query`` added to the query it already has.
    """
    parts = urlsplit(url)
    items = parse_qsl(parts.query, keep_blank_values=True) + list(query.items())
    return urlunsplit(parts._replace(query=urlencode(items, quote_via=quote)))
