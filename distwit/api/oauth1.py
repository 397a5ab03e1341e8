"""
OAuth for the Twitter API, as Twitter had it: OAuth 1.0a (three-legged,
with PIN for apps without a callback, and xAuth), and app-only bearer
tokens for public reads.

Routes (:class:`OAuthProvider`, mounted at ``/oauth/``, ``/api/oauth/``,
``/1.1/oauth/`` and, for the bearer tokens, ``/oauth2/``):

``GET|POST /oauth/request_token``
    signed by the app; ``oauth_callback`` a URL or ``oob``.
``GET|POST /oauth/authorize`` (and ``/oauth/authenticate``)
    the page where a user signs in and approves or denies the app.
``GET|POST /oauth/access_token``
    the request token and its ``oauth_verifier`` (a seven-digit PIN
    for ``oob``) for an access token; or
    with ``x_auth_mode=client_auth``, ``x_auth_username`` and
    ``x_auth_password`` (xAuth) one straight away.  Every app of this
    server may use xAuth.
``POST /oauth2/token``, ``POST /oauth2/invalidate_token``
    app-only bearer tokens (HTTP Basic with the consumer key and secret).

Signatures are checked with oauthlib against the URL made of the
configured public URL and the request's path, not the Host header: a
server behind a proxy checks what its clients signed.  ``oauth_*``
parameters (and xAuth's ``x_auth_*``) may come in the Authorization
header, the query or a form body; one sent alike in several of them is
counted once in the signature base string, as Twitter did (a signature
counting each copy, as RFC 5849 has it, is accepted too), and one sent
with different values is refused (32, naming it).  Errors are Twitter's
JSON, a wrong method or path too (never an HTML page).  A nonce is
taken once (stored, per app and token); timestamps more than five
minutes off are refused (code 135).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Any, Coroutine
from urllib.parse import parse_qsl, urlencode, urlsplit

from klein import Klein
from werkzeug.exceptions import MethodNotAllowed, NotFound
from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from distwit.api import errors
from distwit.api.errors import TwitterError
from distwit.api.interfaces import RenderPage
from distwit.http import client_address, json_body
from distwit.model import Account
from distwit.core.apps import TIMESTAMP_WINDOW, AppRecord, TokenRecord
from distwit.core.microblog import Microblog, RuleError

#: Seconds a request token waits for the user.
REQUEST_TOKEN_LIFETIME = 15 * 60

_SIGNATURE_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT")


@dataclass(frozen=True)
class Credentials:
    """
    Who a signed request speaks for: a user through an app, or (bearer)
    the app alone.
    """

    user: Account | None
    app_id: int
    kind: str  # "oauth1" or "bearer"
    #: The app's name, its ``source`` on the posts made through it.
    app_name: str


@dataclass(frozen=True)
class _Verified:
    """
    A request whose OAuth 1.0a signature checked.

    :ivar token: the token it names, ``None`` when it names none.
    :ivar params: its ``oauth_*`` parameters.
    :ivar signed: all its signed parameters.
    """

    app: AppRecord
    token: TokenRecord | None
    params: dict[str, str]
    #: every signed parameter (the first value of each), wherever it came.
    signed: dict[str, str]


#: The characters of keys and secrets: letters and digits, as Twitter's,
#: so that one pasted on a command line never starts with "-" (an option)
#: and needs no quoting.
_KEY_CHARACTERS = string.ascii_letters + string.digits


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_KEY_CHARACTERS) for _ in range(length))


def new_secret() -> str:
    return _random_text(40)  # 238 bits


def new_key() -> str:
    return _random_text(24)  # 142 bits


def new_pin() -> str:
    """
    A PIN for an app without a callback (``oob``): seven digits, as
    Twitter's, which PIN dialogs of the time accept (some take digits
    only).  Guessing it needs the request token's secret, which only the
    app holds, and the request token lasts 15 minutes.
    """
    return f"{secrets.randbelow(10**7):07d}"


def _form(request: IRequest) -> list[tuple[str, str]]:
    """
    The parameters of a urlencoded form body (the only body OAuth signs).
    """
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if kind != b"application/x-www-form-urlencoded":
        return []
    request.content.seek(0)
    raw = request.content.read()
    request.content.seek(0)
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid_parameter("body", "it is not a UTF-8 form") from None


class _Signed:
    """
    What oauthlib's verify functions read of a request.
    """

    def __init__(self, uri: str, http_method: str, params: list[tuple[str, str]],
                 signature: str) -> None:
        self.uri = uri
        self.http_method = http_method
        self.params = params
        self.signature = signature


def _once(sources: list[list[tuple[str, str]]]
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """
    The parameters of a request from its sources (query, Authorization
    header, form body), with an OAuth or xAuth parameter that several
    sources carry alike counted once, as Twitter did; and all of them as
    sent.

    :raise TwitterError: 32 when two sources give one such parameter
        different values.
    """
    everywhere = [p for source in sources for p in source]
    seen: dict[str, tuple[int, str]] = {}
    params = []
    for index, source in enumerate(sources):
        for name, value in source:
            if not name.startswith(("oauth_", "x_auth_")):
                params.append((name, value))
                continue
            first = seen.setdefault(name, (index, value))
            if first[0] == index:
                params.append((name, value))
            elif first[1] != value:
                raise _oauth_error(
                    f"Could not authenticate you: {name} is sent twice with different values."
                )
    return params, everywhere


@functools.lru_cache(maxsize=4096)
def _escaped(value: str) -> str:
    return oauth_utils.escape(value)


@functools.lru_cache(maxsize=1024)
def _base_string_uri(uri: str) -> str:
    return oauth_signature.base_string_uri(uri)


class _Secrets:
    """
    What oauthlib's ``sign_*_with_client`` read of a client.
    """

    def __init__(self, client_secret: str, resource_owner_secret: str) -> None:
        self.client_secret = client_secret
        self.resource_owner_secret = resource_owner_secret


def _hmac_verifier(sign: Any) -> Any:
    """
    oauthlib's ``verify_hmac_sha1`` (or ``_sha256``) made of the same
    oauthlib steps (normalized parameters, base string URI, signature base
    string, HMAC, constant-time comparison), with the escaped parameters
    and base string URIs kept: keys, the app's and token's values, the
    paths and queries come again request after request, and oauthlib's
    escaping is most of a signature's cost (issue 16).
    """

    def verify(request: _Signed, client_secret: str, resource_owner_secret: str) -> bool:
        pairs = sorted([(_escaped(k), _escaped(v)) for k, v in request.params])
        normalized = "&".join([f"{k}={v}" for k, v in pairs])
        base = oauth_signature.signature_base_string(
            request.http_method, _base_string_uri(request.uri), normalized
        )
        signature = sign(base, _Secrets(client_secret, resource_owner_secret))
        return bool(safe_string_equals(signature, request.signature))

    return verify


_VERIFY = {
    "HMAC-SHA1": _hmac_verifier(oauth_signature.sign_hmac_sha1_with_client),
    "HMAC-SHA256": _hmac_verifier(oauth_signature.sign_hmac_sha256_with_client),
    "PLAINTEXT": oauth_signature.verify_plaintext,
}


def _oauth_error(message: str, code: int = 32, status: int = 401) -> TwitterError:
    return TwitterError(code, message, status)


class OAuthProvider:
    """
    Apps, tokens and signatures.

    :param microblog: the :class:`~distwit.core.microblog.Microblog` (its
        store keeps apps and tokens; it checks passwords).
    :param clock: the injected reactor's clock.
    :param public_url: this server's public URL as the settings give it,
        without a trailing slash (signatures are checked against it).
    :param secret: a server secret (the CSRF tokens of the authorize page).
    :param render_page: renders the authorize page in the site's look;
        without it (the command line) the provider serves no page.
    :param local_https_url: where ``--local-https`` serves this site too
        (``https://localhost:8443``), or ``""``: a request that came on
        that port is checked as signed for that URL.
    """

    log = Logger()

    def __init__(self, microblog: Microblog, clock: Any, public_url: str, secret: bytes,
                 render_page: RenderPage | None = None, local_https_url: str = "") -> None:
        self._render_page = render_page
        self.microblog = microblog
        self.clock = clock
        self.public_url = public_url
        self.https = self.public_url.startswith("https:")
        self._secret = secret
        self.local_https_url = local_https_url
        self._local_https_port = urlsplit(local_https_url).port if local_https_url else None

    def _signed_for(self, request: IRequest) -> str:
        """
        The base URL a client signed its request for: the public URL, or
        the local https one for a request that came on that port.
        """
        if self._local_https_port is not None and request.isSecure():
            if getattr(request.getHost(), "port", None) == self._local_https_port:
                return self.local_https_url
        return self.public_url

    # Apps and tokens, for the command line and the settings page

    async def create_app(self, owner: Account, name: str, callback: str = "") -> tuple[str, str]:
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise ValueError("an app's name is 1 to 64 characters")
        key, secret = new_key(), new_secret()
        await self.microblog.apps.create_app(key, secret, name, owner.id, callback, self._now_ms())
        return key, secret

    async def create_access_token(self, consumer_key: str, user: Account) -> tuple[str, str]:
        app = await self.microblog.apps.get_app(consumer_key)
        if app is None:
            raise ValueError(f"no app has the consumer key {consumer_key!r}")
        token, secret = new_key(), new_secret()
        await self.microblog.apps.create_token(
            token, secret, "access", app.id, user.id, "", self._now_ms(), None
        )
        return token, secret

    def _now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    # Checking requests

    def carries_oauth(self, request: IRequest) -> bool:
        header = request.getHeader(b"authorization") or b""
        if header[:6].lower() == b"oauth " or header[:7].lower() == b"bearer ":
            return True
        return b"oauth_consumer_key" in (request.args or {})

    async def authenticate(self, request: IRequest) -> Credentials | None:
        """
        The credentials of an API request, ``None`` if it carries no
        OAuth.

        :raise TwitterError: 32 bad signature or unknown app, 89 unknown or
            revoked token, 135 timestamp out of bounds.
        """
        header = request.getHeader(b"authorization") or b""
        if header[:7].lower() == b"bearer ":
            return await self._bearer(header[7:].strip().decode("latin-1"))
        if not self.carries_oauth(request):
            return None
        checked = await self.verify(request, need_token=True)
        token = checked.token
        if token is None or token.kind != "access" or token.account_id is None:
            raise _oauth_error("Invalid or expired token.", 89)
        user = await self.microblog.timelines.account(token.account_id)
        if user is None:
            raise _oauth_error("Invalid or expired token.", 89)
        return Credentials(user, token.app_id, "oauth1", token.app_name)

    async def _bearer(self, value: str) -> Credentials:
        token = await self.microblog.apps.get_token(value)
        if token is None or token.kind != "bearer":
            raise _oauth_error("Invalid or expired token.", 89)
        return Credentials(None, token.app_id, "bearer", token.app_name)

    async def verify(self, request: IRequest, need_token: bool) -> _Verified:
        """
        Check an OAuth 1.0a signature.

        :return: the app, the token (or ``None`` when the request names
            none) and the oauth parameters.
        """
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        headers = {"Authorization": header} if header[:6].lower() == "oauth " else {}
        query = urlsplit(request.uri.decode("latin-1")).query
        try:
            sources = [
                oauth_signature.collect_parameters(uri_query=query, exclude_oauth_signature=False),
                oauth_signature.collect_parameters(headers=headers, exclude_oauth_signature=False),
                oauth_signature.collect_parameters(body=_form(request),
                                                   exclude_oauth_signature=False),
            ]
        except (ValueError, TypeError) as e:
            raise _oauth_error(f"Could not authenticate you: {e}.") from None
        params, everywhere = _once(sources)
        oauth = dict(p for p in params if p[0].startswith("oauth_"))
        signed_params = [p for p in params if p[0] != "oauth_signature"]
        for name in ("oauth_consumer_key", "oauth_signature", "oauth_signature_method",
                     "oauth_timestamp", "oauth_nonce"):
            if not oauth.get(name):
                raise _oauth_error(f"Could not authenticate you: {name} is missing.")
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise _oauth_error("Could not authenticate you: oauth_version must be 1.0.")
        method = oauth["oauth_signature_method"]
        signed_for = self._signed_for(request)
        if method not in _SIGNATURE_METHODS or (
            method == "PLAINTEXT" and not signed_for.startswith("https:")
        ):
            raise _oauth_error(
                f"Could not authenticate you: signature method {method} is not accepted"
                + (" over plain http" if method == "PLAINTEXT" else "") + "."
            )
        try:
            timestamp = int(oauth["oauth_timestamp"])
        except ValueError:
            raise _oauth_error("Timestamp out of bounds.", 135) from None
        now = self.clock.seconds()
        if abs(now - timestamp) > TIMESTAMP_WINDOW:
            raise _oauth_error("Timestamp out of bounds.", 135)
        app = await self.microblog.apps.get_app(oauth["oauth_consumer_key"])
        if app is None:
            raise _oauth_error("Could not authenticate you.")
        token = None
        token_secret = ""
        if oauth.get("oauth_token"):
            token = await self.microblog.apps.get_token(oauth["oauth_token"])
            if (
                token is None
                or token.consumer_key != app.consumer_key
                or (token.expires_at is not None and token.expires_at < self._now_ms())
            ):
                raise _oauth_error("Invalid or expired token.", 89)
            token_secret = token.secret
        elif need_token:
            raise _oauth_error("Invalid or expired token.", 89)
        uri = signed_for + request.uri.decode("latin-1")
        signed = _Signed(uri, request.method.decode("ascii").upper(), signed_params,
                         oauth["oauth_signature"])
        verify = _VERIFY[method]
        if not verify(signed, app.consumer_secret, token_secret):
            # A client that, as RFC 5849 3.4.1.3.1 has it, signed each
            # copy of a parameter it sent twice.
            everywhere = [p for p in everywhere if p[0] != "oauth_signature"]
            signed.params = everywhere
            if everywhere == signed_params or not verify(signed, app.consumer_secret,
                                                         token_secret):
                raise _oauth_error("Could not authenticate you.")
        fresh = await self.microblog.apps.use_nonce(
            app.consumer_key, oauth.get("oauth_token", ""), oauth["oauth_nonce"],
            timestamp, int(now) - 2 * TIMESTAMP_WINDOW,
        )
        if not fresh:
            raise _oauth_error("Could not authenticate you: the nonce was used before.")
        return _Verified(app, token, oauth, dict(reversed(signed_params)))

    # The routes

    app = Klein()

    def resource(self) -> IResource:
        return self.app.resource()

    def _answer(self, request: IRequest, body: dict[str, str]) -> bytes:
        request.setHeader(b"content-type", b"application/x-www-form-urlencoded")
        return urlencode(body).encode("ascii")

    def _route(self, request: IRequest, work: Coroutine[Any, Any, bytes]) -> "Deferred[bytes]":
        async def run() -> bytes:
            try:
                return await work
            except TwitterError as e:
                return json_body(request, e.body(), e.status)
            except RuleError as e:
                error = errors.from_rule(e)
                return json_body(request, error.body(), error.status)
            except Exception:
                self.log.failure("OAuth request {path} failed", path=request.path)
                error = errors.internal_error()
                return json_body(request, error.body(), error.status)

        return ensureDeferred(run())

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        error = errors.page_not_found()
        return json_body(request, error.body(), error.status)

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self, request: IRequest, failure: Any) -> bytes:
        allowed = ", ".join(sorted(failure.value.valid_methods or ()))
        request.setHeader(b"allow", allowed.encode("ascii"))
        error = TwitterError(
            34, f"Sorry, that page does not exist: it takes {allowed}.", 405
        )
        return json_body(request, error.body(), error.status)

    @app.route("/oauth/request_token", methods=["GET", "POST"])
    def request_token(self, request: IRequest) -> "Deferred[bytes]":
        return self._route(request, self._request_token(request))

    async def _request_token(self, request: IRequest) -> bytes:
        checked = await self.verify(request, need_token=False)
        callback = checked.params.get("oauth_callback", "")
        if not callback:
            raise TwitterError(32, "oauth_callback is required (a URL or oob).", 401)
        if callback != "oob":
            parts = urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise TwitterError(32, "oauth_callback must be an http(s) URL or oob.", 401)
        token, secret = new_key(), new_secret()
        await self.microblog.apps.create_token(
            token, secret, "request", checked.app.id, None, callback,
            self._now_ms(), self._now_ms() + REQUEST_TOKEN_LIFETIME * 1000,
        )
        return self._answer(request, {
            "oauth_token": token,
            "oauth_token_secret": secret,
            "oauth_callback_confirmed": "true",
        })

    def _csrf(self, token: str) -> str:
        return hmac.new(self._secret, b"authorize:" + token.encode(), hashlib.sha256).hexdigest()

    async def _request_token_for_page(self, request: IRequest) -> TokenRecord | None:
        value = request.args.get(b"oauth_token", [b""])[0].decode("utf-8", "replace")
        token = await self.microblog.apps.get_token(value) if value else None
        if (
            token is None
            or token.kind != "request"
            or token.account_id is not None
            or (token.expires_at or 0) < self._now_ms()
        ):
            return None
        return token

    def _page(self, request: IRequest, title: str, status: int = 200, *, message: str = "",
              pin: str = "", token: TokenRecord | None = None, error: str | None = None,
              ) -> bytes:
        """
        The authorize page (with the form when ``token`` is given), or one
        of its outcomes, in the site's look.
        """
        if self._render_page is None:
            raise RuntimeError("this OAuthProvider was made without render_page")
        # The form may lead only here, then to the app's own callback.
        html_text, policy = self._render_page(
            "oauth_authorize.html",
            [token.callback] if token is not None else [],
            {
                "viewer": None, "csrf": "", "open_registration": False,
                "title": title, "message": message, "pin": pin, "error": error,
                "app_name": token.app_name if token is not None else "",
                "oauth_token": token.token if token is not None else "",
                "form_csrf": self._csrf(token.token) if token is not None else "",
            },
        )
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", policy)
        return html_text.encode("utf-8")

    @app.route("/oauth/authorize", methods=["GET", "HEAD", "POST"])
    @app.route("/oauth/authenticate", methods=["GET", "HEAD", "POST"])
    def authorize(self, request: IRequest) -> "Deferred[bytes]":
        return self._route(request, self._authorize(request))

    async def _authorize(self, request: IRequest) -> bytes:
        token = await self._request_token_for_page(request)
        if token is None:
            return self._page(
                request, "This link has expired", 400,
                message="The app's request is unknown, used already, or expired. "
                "Go back to the app and start again.",
            )
        app_name = token.app_name
        error = None
        if request.method == b"POST":
            form = {k.decode(): v[0].decode("utf-8", "replace") for k, v in request.args.items()}
            if not hmac.compare_digest(form.get("csrf", ""), self._csrf(token.token)):
                return self._page(request, "Try again", 403, message="The form was stale.")
            if "deny" in form:
                await self.microblog.apps.delete_token(token.token)
                if token.callback == "oob":
                    return self._page(request, "Access denied",
                                      message=f"{app_name} will not have access.")
                request.redirect(_with_query(token.callback, {"denied": token.token}))
                return b""
            try:
                user = await self.microblog.authenticate(
                    form.get("session[username_or_email]", form.get("username", "")),
                    form.get("session[password]", form.get("password", "")),
                    client_address(request),
                )
            except RuleError as e:
                return self._page(request, "Try again later", 429, message=str(e))
            if user is None:
                error = "That handle and password do not match."
            else:
                verifier = new_pin() if token.callback == "oob" else new_key()
                if not await self.microblog.apps.approve_token(token.token, user.id, verifier):
                    return self._page(request, "This link has expired", 400,
                                      message="Start again from the app.")
                if token.callback == "oob":
                    return self._page(request, "Approved",
                                      message=f"Enter this PIN in {app_name}:", pin=verifier)
                request.redirect(_with_query(token.callback, {
                    "oauth_token": token.token, "oauth_verifier": verifier,
                }))
                return b""
        return self._page(request, f"Authorize {app_name}", token=token, error=error)

    @app.route("/oauth/access_token", methods=["GET", "POST"])
    def access_token(self, request: IRequest) -> "Deferred[bytes]":
        return self._route(request, self._access_token(request))

    async def _access_token(self, request: IRequest) -> bytes:
        checked = await self.verify(request, need_token=False)
        if checked.signed.get("x_auth_mode") == "client_auth":
            handle = checked.signed.get("x_auth_username", "")
            password = checked.signed.get("x_auth_password", "")
            user = await self.microblog.authenticate(handle, password, client_address(request))
            if user is None:
                raise TwitterError(32, "Could not authenticate you.", 401)
        else:
            token = checked.token
            verifier = checked.params.get("oauth_verifier", "")
            if (
                token is None
                or token.kind != "request"
                or token.account_id is None
                or token.verifier is None
                or not verifier
                or not hmac.compare_digest(verifier, token.verifier)
            ):
                raise TwitterError(89, "Invalid or expired token.", 401)
            await self.microblog.apps.delete_token(token.token)
            user = await self.microblog.timelines.account(token.account_id)
            if user is None:
                raise TwitterError(89, "Invalid or expired token.", 401)
        token_value, secret = new_key(), new_secret()
        await self.microblog.apps.create_token(
            token_value, secret, "access", checked.app.id, user.id, "",
            self._now_ms(), None,
        )
        return self._answer(request, {
            "oauth_token": token_value,
            "oauth_token_secret": secret,
            "user_id": str(user.id),
            "screen_name": user.screen_name,
        })

    async def _app_from_basic(self, request: IRequest) -> AppRecord:
        header = request.getHeader(b"authorization") or b""
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            raise TwitterError(99, "Unable to verify your credentials.", 403)
        try:
            key, _, secret = binascii.a2b_base64(encoded.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise TwitterError(99, "Unable to verify your credentials.", 403) from None
        app = await self.microblog.apps.get_app(key)
        if app is None or not hmac.compare_digest(app.consumer_secret, secret):
            raise TwitterError(99, "Unable to verify your credentials.", 403)
        return app

    @app.route("/oauth2/token", methods=["POST"])
    def bearer_token(self, request: IRequest) -> "Deferred[bytes]":
        return self._route(request, self._bearer_token(request))

    async def _bearer_token(self, request: IRequest) -> bytes:
        app = await self._app_from_basic(request)
        if request.args.get(b"grant_type", [b""])[0] != b"client_credentials":
            raise TwitterError(170, "Missing required parameter: grant_type.", 400)
        token = new_secret()
        await self.microblog.apps.create_token(
            token, "", "bearer", app.id, None, "", self._now_ms(), None
        )
        return json_body(request, {"token_type": "bearer", "access_token": token})

    @app.route("/oauth2/invalidate_token", methods=["POST"])
    def invalidate_token(self, request: IRequest) -> "Deferred[bytes]":
        return self._route(request, self._invalidate(request))

    async def _invalidate(self, request: IRequest) -> bytes:
        app = await self._app_from_basic(request)
        value = request.args.get(b"access_token", [b""])[0].decode("utf-8", "replace")
        token = await self.microblog.apps.get_token(value) if value else None
        if token is None or token.kind != "bearer" or token.app_id != app.id:
            raise TwitterError(89, "Invalid or expired token.", 401)
        await self.microblog.apps.delete_token(value)
        return json_body(request, {"access_token": value})


def _with_query(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return url + joiner + urlencode(params)


__all__ = ["Credentials", "OAuthProvider", "oauth_utils"]
