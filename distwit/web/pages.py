"""
The HTML pages of a twitter server: the public timeline, sign-up and
sign-in, a signed-in user's home with a post box, and profiles with
follow buttons.

Pages are rendered on the server from the Jinja2 templates in
``templates/`` (autoescaped) and work without JavaScript.

Sessions: signing in sets the ``dw_session`` cookie to 32 random bytes;
the database keeps only their SHA-256, so a copy of the database does not
sign anyone in.  Every sign-in starts a new session.

Forms: every form carries a ``csrf`` token that each POST must send back.
A signed-in user's token is their session's; a visitor's is an HMAC of a
random ``dw_anon`` cookie under the server's secret, so a sign-in form
posted from another site fails too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from klein import Klein
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from werkzeug.exceptions import MethodNotAllowed, NotFound

from distwit.core.limits import RateLimiter
from distwit.http import client_address
from distwit.model import MAX_STATUS_ID, Account, Post, is_valid_handle
from distwit.oidc.provider import ConsentError
from distwit.oidc.rp import MAX_PENDING_AGE, SignInError
from distwit.core.accts import authority_of
from distwit.core.microblog import MIN_PASSWORD_LENGTH, Microblog, NoSuchUser, RuleError
from distwit.web.templating import content_security_policy, templates

SESSION_COOKIE = b"dw_session"
ANON_COOKIE = b"dw_anon"
#: Binds a sign-in with a home server to the browser that started it.
SIGNIN_COOKIE = b"dw_signin"

#: How long a sign-in with a home server may take, in seconds: as long as
#: the relying party keeps it.
SIGNIN_LIFETIME = int(MAX_PENDING_AGE)

#: Remote sign-ins waiting at most; the oldest go first beyond this.
MAX_PENDING_SIGNINS = 10000

#: Sign-ins with a home server one address may begin in a window.
ADDRESS_REMOTE_SIGNINS = 30

#: That window, in seconds.
ADDRESS_WINDOW = 15 * 60

#: How long a sign-in lasts, in seconds.
SESSION_LIFETIME = 30 * 24 * 60 * 60

#: Posts per page of a timeline.
PAGE_SIZE = 20

#: What ``secrets.token_urlsafe(32)`` makes: the only cookie values read.
_TOKEN = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")

#: A path on this site: one leading slash, printable ASCII, no backslash.
#: "//host" and "/\\host" are other sites to a browser, and browsers drop
#: tabs and newlines from URLs, so whitespace is refused as well.
_LOCAL_PATH = re.compile(r"\A/(?![/\\])[!-\[\]-~]*\Z")

_STATUS_ID = re.compile(r"\A[0-9]{1,19}\Z")

EXPIRED_FORM = (
    "This form has expired or did not come from this site; "
    "reload the page and try again."
)
WRONG_CREDENTIALS = "Wrong handle or password."


_HEADERS = {
    b"content-type": b"text/html; charset=utf-8",
    b"x-frame-options": b"DENY",
    b"content-security-policy": content_security_policy(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    # Pages carry form tokens and a user's own timeline: never cache them.
    b"cache-control": b"no-store",
}

#: Written without the templates, in case rendering is what failed.
INTERNAL_ERROR_PAGE = (
    b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    b"<title>Server error</title></head><body><h1>Server error</h1>"
    b"<p>Something went wrong on this server. Please try again later.</p>"
    b"</body></html>\n"
)


class Redirect(Exception):
    """
    Answer with a redirect (303) to ``location`` instead of a page.
    """

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageError(Exception):
    """
    A request answered with an error page.

    :param status: the HTTP status.
    :param title: the page's heading.
    :param message: what went wrong, for a person.
    """

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True)
class Visitor:
    """
    Who sent a request.

    :ivar user: the signed-in user, or ``None``.
    :ivar session_hash: the SHA-256 of their session cookie, when signed in.
    :ivar csrf: the form token this visitor's forms carry, or ``None`` if
        they have none yet (a visitor without a ``dw_anon`` cookie).
    """

    user: Account | None
    session_hash: str | None
    csrf: str | None
    #: When the signed-in user signed in (ms since the epoch).
    signed_in_at: int | None = None


def session_hash(token: str) -> str:
    """
    What the database keeps of a session cookie.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def local_path(value: str | None) -> str | None:
    """
    ``value`` if it is a path on this site (safe to redirect to), else
    ``None``.
    """
    if value is None or _LOCAL_PATH.match(value) is None:
        return None
    return value


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def _login_url(next_path: str) -> str:
    return "/login?" + urlencode({"next": next_path})


Handler = Callable[..., Awaitable[bytes]]


class Pages:
    """
    The pages, as a Klein app mounted at the root of the site.

    :param microblog: the :class:`Microblog` whose users and posts are shown.
    :param secret: the server's web secret (for visitors' form tokens).
    :param clock: an ``IReactorTime``; sessions are timed by it.
    :param open_registration: whether anyone may sign up here.
    :param secure_cookies: mark cookies ``Secure`` (the site is on HTTPS).
    """

    app = Klein()
    log = Logger()

    def __init__(self, microblog: Microblog, secret: bytes, clock: Any,
                 open_registration: bool, secure_cookies: bool,
                 public_url: str = "http://localhost:8080", oauth: Any = None,
                 oidc: Any = None, rp: Any = None) -> None:
        self.microblog = microblog
        #: The :class:`~distwit.oidc.provider.OIDCProvider` (our users
        #: signing in elsewhere) and :class:`~distwit.oidc.rp.RelyingParty`
        #: (visitors signing in here with their home server).
        self._oidc = oidc
        self._rp = rp
        #: Remote sign-ins on their way, by the ``dw_signin`` cookie.
        self._pending: dict[str, tuple[Any, str, float]] = {}
        #: Per address: sign-ins with a home server begun (each makes this
        #: server fetch from, maybe register with, another).
        self._limits = RateLimiter(clock, window=ADDRESS_WINDOW, limits={
            "remote-sign-in": ADDRESS_REMOTE_SIGNINS,
        })
        #: The :class:`~distwit.api.oauth1.OAuthProvider` (the apps page).
        self._oauth = oauth
        self._public_url = public_url.rstrip("/")
        self._secret = secret
        self._clock = clock
        self._open_registration = open_registration
        self._secure_cookies = secure_cookies
        self._templates = templates()
        folder = files("distwit.web") / "static"
        self._static = {
            "site.css": (b"text/css; charset=utf-8", (folder / "site.css").read_bytes()),
            "compose.js": (
                b"text/javascript; charset=utf-8", (folder / "compose.js").read_bytes()
            ),
        }

    def resource(self) -> Any:
        return self.app.resource()

    # Routes

    @app.route("/", methods=["GET"])
    def public_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.public)

    @app.route("/signup", methods=["GET"])
    def signup_form_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.signup_form)

    @app.route("/signup", methods=["POST"])
    def signup_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.signup)

    @app.route("/login", methods=["GET"])
    def login_form_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.login_form)

    @app.route("/login", methods=["POST"])
    def login_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.login)

    @app.route("/login/remote", methods=["POST"])
    def remote_login_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.remote_login)

    @app.route("/login/callback", methods=["GET"])
    def callback_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.callback)

    @app.route("/oidc/authorize", methods=["GET"])
    def consent_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.consent)

    @app.route("/oidc/authorize", methods=["POST"])
    def authorize_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.authorize)

    @app.route("/settings", methods=["GET"])
    def settings_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.settings)

    @app.route("/settings/profile", methods=["POST"])
    def profile_settings_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.update_profile)

    @app.route("/settings/password", methods=["POST"])
    def password_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.change_password)

    @app.route("/settings/servers", methods=["GET"])
    def servers_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.servers)

    @app.route("/settings/servers/forget", methods=["POST"])
    def servers_forget_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.forget_server)

    @app.route("/logout", methods=["POST"])
    def logout_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.logout)

    @app.route("/home", methods=["GET"])
    def home_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.home)

    @app.route("/home", methods=["POST"])
    def post_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.post)

    @app.route("/settings/apps", methods=["GET"])
    def apps_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.apps)

    @app.route("/settings/apps", methods=["POST"])
    def apps_create_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.create_app)

    @app.route("/settings/apps/revoke", methods=["POST"])
    def apps_revoke_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.revoke_token)

    @app.route("/docs/clients", methods=["GET"])
    def clients_route(self, request: Any) -> Deferred[bytes]:
        return self._serve(request, self.clients)

    @app.route("/static/<name>", methods=["GET"])
    def static(self, request: Any, name: str) -> Any:
        """
        ``/static/site.css`` and ``/static/compose.js``, read once at start.
        """
        found = self._static.get(name)
        if found is None:
            return self._serve(request, self.not_found)
        content_type, body = found
        request.setHeader(b"content-type", content_type)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"public, max-age=3600")
        return body

    @app.route("/<handle>", methods=["GET"])
    def profile_route(self, request: Any, handle: str) -> Deferred[bytes]:
        return self._serve(request, self.profile, handle)

    @app.route("/<handle>/follow", methods=["POST"])
    def follow_route(self, request: Any, handle: str) -> Deferred[bytes]:
        return self._serve(request, self.follow, handle, True)

    @app.route("/<handle>/unfollow", methods=["POST"])
    def unfollow_route(self, request: Any, handle: str) -> Deferred[bytes]:
        return self._serve(request, self.follow, handle, False)

    @app.handle_errors(NotFound)
    def not_found_route(self, request: Any, failure: Failure) -> Deferred[bytes]:
        return self._serve(request, self.not_found)

    @app.handle_errors(MethodNotAllowed)
    def wrong_method_route(self, request: Any, failure: Failure) -> Deferred[bytes]:
        allowed = getattr(failure.value, "valid_methods", None) or []
        if allowed:
            request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
        return self._serve(request, self.wrong_method)

    # Pages

    async def public(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /``: everyone's posts, newest first.
        """
        posts = await self.microblog.timelines.public_timeline(PAGE_SIZE + 1, None, self._max_id(request))
        return self._render(request, "public.html", visitor, **self._timeline("/", posts))

    async def apps(self, request: Any, visitor: Visitor, status: int = 200,
                   name: str = "", callback: str = "", error: str | None = None) -> bytes:
        """
        ``GET /settings/apps``: the apps one registered, and those that may
        use one's account (with a revoke button each).
        """
        user = self._member(visitor, "/settings/apps")
        if self._oauth is None:
            raise PageError(404, "No apps here", "This server has no OAuth.")
        return self._render(
            request, "apps.html", visitor, status,
            apps=await self.microblog.apps.apps_of(user.id),
            tokens=await self.microblog.apps.tokens_of(user.id),
            name=name, callback=callback, error=error,
        )

    async def create_app(self, request: Any, visitor: Visitor) -> bytes:
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/settings/apps")
        name = (self._field(request, "name") or "").strip()
        callback = (self._field(request, "callback") or "").strip()
        if callback and not callback.startswith(("http://", "https://")):
            return await self.apps(request, visitor, 400, name, callback,
                                   "The callback must be an http:// or https:// URL.")
        try:
            await self._oauth.create_app(user, name, callback)
        except ValueError as e:
            return await self.apps(request, visitor, 400, name, callback, str(e).capitalize() + ".")
        return self._redirect(request, "/settings/apps")

    async def revoke_token(self, request: Any, visitor: Visitor) -> bytes:
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/settings/apps")
        token = self._field(request, "token") or ""
        mine = {t["token"] for t in await self.microblog.apps.tokens_of(user.id)}
        if token in mine:
            await self.microblog.apps.delete_token(token)
        return self._redirect(request, "/settings/apps")

    async def clients(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /docs/clients``: how to point Twitter libraries here.
        """
        return self._render(
            request, "clients.html", visitor,
            base=self._public_url,
            authority=self._public_url.split("//", 1)[-1],
            https=self._public_url.startswith("https:"),
        )

    async def signup_form(self, request: Any, visitor: Visitor) -> bytes:
        self._require_open_registration()
        return self._signup_page(request, self._with_form_token(request, visitor))

    async def signup(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /signup``: a new user, signed in at once.  A refused handle
        or password shows the form again (400) with what to change.
        """
        self._require_open_registration()
        self._check_csrf(request, visitor)
        handle = (self._field(request, "handle") or "").strip()
        name = self._field(request, "name") or ""
        password = self._field(request, "password") or ""
        if password != (self._field(request, "password_again") or ""):
            return self._signup_page(
                request, visitor, 400, handle, name, "The two passwords differ."
            )
        try:
            account = await self.microblog.create_user(handle, password, name)
        except RuleError as e:
            return self._signup_page(request, visitor, 400, handle, name, str(e))
        await self._sign_in(request, visitor, account)
        return self._redirect(request, "/home")

    async def login_form(self, request: Any, visitor: Visitor) -> bytes:
        return self._login_page(
            request, self._with_form_token(request, visitor), 200,
            local_path(self._field(request, "next")) or "",
        )

    def _login_page(self, request: Any, visitor: Visitor, status: int, next_path: str,
                    handle: str = "", error: str | None = None, identifier: str = "",
                    remote_error: str | None = None) -> bytes:
        """
        The sign-in page: a password for an account here, or the address of
        one's home server.
        """
        if self._rp is not None:
            # The home-server form's answer sends the browser to that server.
            request.setHeader(
                b"content-security-policy", content_security_policy("https:", "http:"),
            )
        return self._render(
            request, "login.html", visitor, status,
            handle=handle, next=next_path, error=error, identifier=identifier,
            remote_error=remote_error, remote=self._rp is not None,
        )

    async def login(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /login``: sign in and go to ``next`` (a path on this site)
        or ``/home``.  A wrong handle or password shows the form again
        with status 400: a 401 would need an HTTP authentication scheme.
        """
        self._check_csrf(request, visitor)
        handle = (self._field(request, "handle") or "").strip()
        password = self._field(request, "password") or ""
        next_path = local_path(self._field(request, "next"))
        try:
            account = await self.microblog.authenticate(
                handle, password, client_address(request)
            )
        except RuleError as e:
            return self._login_page(request, visitor, 429, next_path or "", handle, str(e))
        if account is None:
            return self._login_page(
                request, visitor, 400, next_path or "", handle, WRONG_CREDENTIALS
            )
        await self._sign_in(request, visitor, account)
        return self._redirect(request, next_path or "/home")

    async def remote_login(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /login/remote``: sign in with one's home server (OpenID
        Connect).  Finds the server from the address typed, registers with
        it on first contact, and sends the browser there; it comes back to
        :meth:`callback`.
        """
        self._check_csrf(request, visitor)
        rp = self._require_rp()
        identifier = (self._field(request, "identifier") or "").strip()
        next_path = local_path(self._field(request, "next")) or ""
        if not identifier:
            return self._login_page(
                request, visitor, 400, next_path, identifier=identifier,
                remote_error="Type your address, like alice@example.org.",
            )
        if not self._limits.hit(
            client_address(request), "/login/remote", "remote-sign-in"
        ).allowed:
            return self._login_page(
                request, visitor, 429, next_path, identifier=identifier,
                remote_error="Too many sign-ins from your address; try again in 15 minutes.",
            )
        try:
            url, pending = await rp.begin(identifier)
        except SignInError as e:
            return self._login_page(
                request, visitor, 400, next_path, identifier=identifier, remote_error=str(e)
            )
        token = secrets.token_urlsafe(32)
        self._keep_pending(token, pending, next_path)
        self._set_cookie(request, SIGNIN_COOKIE, token, SIGNIN_LIFETIME)
        return self._redirect(request, url)

    async def callback(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /login/callback``: back from the visitor's home server with a
        code; check everything, then sign them in here as their
        ``handle@server``.
        """
        rp = self._require_rp()
        token = self._cookie(request, SIGNIN_COOKIE)
        found = self._pending.pop(token, None) if token is not None else None
        if request.getCookie(SIGNIN_COOKIE) is not None:
            self._clear_cookie(request, SIGNIN_COOKIE)
        if found is None or found[2] < self._clock.seconds():
            raise PageError(
                400, "Sign-in expired",
                "This sign-in was not started in this browser, or took too long. "
                "Start again from the sign-in page.",
            )
        pending, next_path, _ = found
        params = {key: values[0] for key, values in self._lists(request).items()}
        try:
            identity = await rp.finish(pending, params)
        except SignInError as e:
            raise PageError(400, "Sign-in failed", str(e)) from None
        account = await self._visiting_account(identity.handle, identity.authority)
        await self._sign_in(request, visitor, account)
        self.log.info(
            "{acct} signed in from their home server {issuer}",
            acct=f"{identity.handle}@{identity.authority}", issuer=identity.issuer,
        )
        return self._redirect(request, next_path or "/")

    async def consent(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /oidc/authorize``: another server asks who this visitor is.
        After sign-in, a page naming that server, to approve or deny.
        Unknown servers and redirect addresses get an error page, never a
        redirect.
        """
        oidc = self._require_oidc()
        params = self._lists(request)
        here = "/oidc/authorize?" + urlencode(params, doseq=True)
        signed_in = visitor.user is not None and visitor.user.is_local
        try:
            # Checked before sign-in too: a forged request gets its error
            # page at once, not after the visitor typed their password.
            grant, found = await oidc.consent_request(
                params, visitor.user if signed_in else None
            )
        except ConsentError as e:
            raise PageError(400, "Sign-in request refused", str(e)) from None
        if grant is None:
            return self._redirect(request, found)
        prompts = (params.get("prompt") or [""])[0].split()
        if visitor.user is None or not visitor.user.is_local or self._stale(params, visitor):
            if "none" in prompts:
                return self._redirect(request, oidc.login_required(grant))
            # After this sign-in, login_after shows that it was fresh.
            fresh = {k: v for k, v in params.items() if k != "login_after"}
            fresh["login_after"] = [str(self._now_ms())]
            return self._redirect(
                request, _login_url("/oidc/authorize?" + urlencode(fresh, doseq=True))
            )
        if "none" in prompts:
            return self._redirect(
                request,
                await oidc.silently(grant, params, visitor.user, _seconds(visitor.signed_in_at)),
            )
        redirect_uri = grant.request.payload.redirect_uri or found.get_default_redirect_uri()
        target = urlsplit(redirect_uri)
        request.setHeader(b"content-security-policy", content_security_policy(redirect_uri))
        return self._render(
            request, "consent.html", visitor,
            client_name=found.name, host=target.netloc,
            request_query=urlencode(params, doseq=True),
        )

    async def authorize(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /oidc/authorize``: the visitor's answer on the consent page;
        back to the asking server with a code, or with ``access_denied``.
        """
        self._check_csrf(request, visitor)
        oidc = self._require_oidc()
        query = self._field(request, "request") or ""
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        if visitor.user is None or not visitor.user.is_local:
            return self._redirect(
                request, _login_url("/oidc/authorize?" + urlencode(params, doseq=True))
            )
        decision = self._field(request, "decision")
        if decision not in ("approve", "deny"):
            raise PageError(400, "Bad request", "Choose to approve or deny.")
        try:
            location = await oidc.authorize(
                params, visitor.user, decision == "approve", _seconds(visitor.signed_in_at)
            )
        except ConsentError as e:
            raise PageError(400, "Sign-in request refused", str(e)) from None
        return self._redirect(request, location)

    async def settings(self, request: Any, visitor: Visitor, status: int = 200,
                       profile_error: str | None = None, password_error: str | None = None,
                       done: str | None = None) -> bytes:
        """
        ``GET /settings``: one's profile and password, and links to the apps
        and the connected servers.
        """
        user = self._member(visitor, "/settings")
        current = await self.microblog.user_by_id(user.id)
        return self._render(
            request, "settings.html", visitor, status, account=current,
            profile_error=profile_error, password_error=password_error,
            done=done or {"profile": "Profile saved.", "password": "Password changed."}.get(
                self._field(request, "saved") or ""),
        )

    async def update_profile(self, request: Any, visitor: Visitor) -> bytes:
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/settings")
        try:
            await self.microblog.update_profile(
                user,
                name=self._field(request, "name") or "",
                description=self._field(request, "description") or "",
                location=self._field(request, "location") or "",
                url=self._field(request, "url") or "",
            )
        except RuleError as e:
            return await self.settings(request, visitor, 400, profile_error=str(e))
        return self._redirect(request, "/settings?saved=profile")

    async def change_password(self, request: Any, visitor: Visitor) -> bytes:
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/settings")
        current = self._field(request, "current") or ""
        new = self._field(request, "password") or ""
        if new != (self._field(request, "password_again") or ""):
            return await self.settings(
                request, visitor, 400, password_error="The two new passwords differ."
            )
        try:
            checked = await self.microblog.authenticate(
                user.handle, current, client_address(request)
            )
        except RuleError as e:
            return await self.settings(request, visitor, 429, password_error=str(e))
        if checked is None:
            return await self.settings(
                request, visitor, 400, password_error="The current password is wrong."
            )
        try:
            await self.microblog.set_password(user, new)
        except RuleError as e:
            return await self.settings(request, visitor, 400, password_error=str(e))
        return self._redirect(request, "/settings?saved=password")

    async def servers(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /settings/servers``: the servers one signed in to with one's
        account here, with a button to forget each.
        """
        user = self._member(visitor, "/settings/servers")
        grants = []
        for grant in await self.microblog.oidc.oidc_grants_of(user.id):
            metadata = json.loads(grant["metadata"])
            uris = metadata.get("redirect_uris") or [""]
            grants.append({
                "client_id": grant["client_id"],
                "name": metadata.get("client_name") or "",
                "host": urlsplit(uris[0]).netloc,
                "first_at": grant["first_at"],
                "last_at": grant["last_at"],
            })
        return self._render(request, "servers.html", visitor, grants=grants)

    async def forget_server(self, request: Any, visitor: Visitor) -> bytes:
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/settings/servers")
        await self.microblog.oidc.delete_oidc_grant(user.id, self._field(request, "client") or "")
        return self._redirect(request, "/settings/servers")

    async def logout(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /logout``: end the session, here and in the browser.
        """
        self._check_csrf(request, visitor)
        if visitor.session_hash is not None:
            await self.microblog.sessions.delete_session(visitor.session_hash)
        self._clear_cookie(request, SESSION_COOKIE)
        return self._redirect(request, "/")

    async def home(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``GET /home``: the post box and the signed-in user's home timeline.
        """
        self._member(visitor, "/home")
        return await self._home_page(request, visitor)

    async def post(self, request: Any, visitor: Visitor) -> bytes:
        """
        ``POST /home``: a new post by the signed-in user.  A post the rules
        refuse shows the page again (400) with the text kept.
        """
        self._check_csrf(request, visitor)
        user = self._member(visitor, "/home")
        text = self._field(request, "status") or ""
        try:
            await self.microblog.post(user, text, source="web")
        except RuleError as e:
            return await self._home_page(request, visitor, 400, text, str(e))
        return self._redirect(request, "/home")

    async def profile(self, request: Any, visitor: Visitor, handle: str) -> bytes:
        """
        ``GET /{handle}``: a local user, their counts and posts, and a
        follow or unfollow button for someone else signed in.
        """
        account = await self._local_user(handle)
        max_id = self._max_id(request)
        posts = await self.microblog.timelines.user_timeline(account.id, PAGE_SIZE + 1, None, max_id)
        following = None
        if visitor.user is not None and visitor.user.id != account.id:
            following = await self.microblog.is_following(visitor.user, account)
        return self._render(
            request, "profile.html", visitor,
            account=account, following=following,
            **self._timeline("/" + account.handle, posts),
        )

    async def follow(self, request: Any, visitor: Visitor, handle: str, follow: bool) -> bytes:
        """
        ``POST /{handle}/follow`` and ``/unfollow``, then back to the profile.
        """
        self._check_csrf(request, visitor)
        account = await self._local_user(handle)
        back = "/" + account.handle
        if visitor.user is None:
            return self._redirect(request, _login_url(back))
        if follow and not visitor.user.is_local and not visitor.user.home_url:
            raise PageError(
                400, "Not followed",
                f"Your home server, {visitor.user.authority}, is not a distwit server this "
                "server can reach, so it could not learn of the follow: follow from there.",
            )
        try:
            if follow:
                await self.microblog.follow(visitor.user, account)
            else:
                await self.microblog.unfollow(visitor.user, account)
        except RuleError as e:
            raise PageError(400, "Not followed", str(e)) from None
        return self._redirect(request, back)

    async def not_found(self, request: Any, visitor: Visitor) -> bytes:
        raise PageError(404, "Page not found", "There is no page at this address.")

    async def wrong_method(self, request: Any, visitor: Visitor) -> bytes:
        raise PageError(405, "Method not allowed", "This page cannot be used that way.")

    # Page parts

    def _signup_page(self, request: Any, visitor: Visitor, status: int = 200,
                     handle: str = "", name: str = "", error: str | None = None) -> bytes:
        return self._render(
            request, "signup.html", visitor, status,
            handle=handle, name=name, error=error, min_password=MIN_PASSWORD_LENGTH,
        )

    async def _home_page(self, request: Any, visitor: Visitor, status: int = 200,
                         draft: str = "", error: str | None = None) -> bytes:
        assert visitor.user is not None
        max_id = self._max_id(request)
        posts = await self.microblog.timelines.home_timeline(visitor.user.id, PAGE_SIZE + 1, None, max_id)
        return self._render(
            request, "home.html", visitor, status,
            draft=draft, error=error, **self._timeline("/home", posts),
        )

    def _timeline(self, path: str, posts: list[Post]) -> dict[str, Any]:
        """
        One page of ``posts`` (fetched one too many, to know whether there
        are older ones) and the link to the next page.
        """
        older_url = None
        if len(posts) > PAGE_SIZE:
            older_url = f"{path}?max_id={posts[PAGE_SIZE - 1].id - 1}"
        return {"posts": posts[:PAGE_SIZE], "older_url": older_url}

    async def _local_user(self, handle: str) -> Account:
        if is_valid_handle(handle):
            try:
                account = await self.microblog.user(handle)
            except NoSuchUser:
                pass
            else:
                if account.is_local:
                    return account
        raise PageError(404, "No such user", "Nobody here has that handle.")

    def _member(self, visitor: Visitor, back: str) -> Account:
        """
        The signed-in user, if they have an account here; else
        :class:`Redirect` to sign in, then back to ``back``.
        """
        if visitor.user is None or not visitor.user.is_local:
            raise Redirect(_login_url(back))
        return visitor.user

    def _stale(self, params: dict[str, list[str]], visitor: Visitor) -> bool:
        """
        Whether the asking server wants a fresher sign-in than the
        visitor's: ``prompt=login``, or ``max_age`` seconds passed since it.
        A sign-in made after the request (``login_after``) always does.
        """
        signed_in_at = visitor.signed_in_at or 0
        after = (params.get("login_after") or [""])[0]
        if after.isdigit() and signed_in_at >= int(after):
            return False
        if "login" in (params.get("prompt") or [""])[0].split():
            return True
        max_age = (params.get("max_age") or [""])[0]
        return max_age.isdigit() and self._now_ms() - signed_in_at > int(max_age) * 1000

    def _require_oidc(self) -> Any:
        if self._oidc is None:
            raise PageError(404, "Page not found", "This server signs nobody in elsewhere.")
        return self._oidc

    def _require_rp(self) -> Any:
        if self._rp is None:
            raise PageError(
                404, "Page not found", "This server does not take sign-ins from other servers."
            )
        return self._rp

    def _keep_pending(self, token: str, pending: Any, next_path: str) -> None:
        now = self._clock.seconds()
        for key in [k for k, (_, _, until) in self._pending.items() if until < now]:
            del self._pending[key]
        while len(self._pending) >= MAX_PENDING_SIGNINS:
            del self._pending[next(iter(self._pending))]
        self._pending[token] = (pending, next_path, now + SIGNIN_LIFETIME)

    async def _visiting_account(self, handle: str, authority: str) -> Account:
        """
        The account here of a visitor whose home server vouched for them:
        checked with that server when it is a distwit server (so follows
        made here reach it), else kept with no home.
        """
        if authority == authority_of(self._public_url):
            raise PageError(
                400, "Sign-in failed",
                "That is an account of this server: sign in with its password.",
            )
        if self.microblog.federation is not None:
            try:
                account: Account = await self.microblog.federation.resolve(
                    f"{handle}@{authority}"
                )
                return account
            except NoSuchUser:
                pass
        return await self.microblog.remote_account(handle, authority)

    def _lists(self, request: Any) -> dict[str, list[str]]:
        """
        Every query or form value, as text, repeated ones kept.
        """
        try:
            return {
                key.decode("utf-8"): [v.decode("utf-8") for v in values]
                for key, values in (request.args or {}).items()
            }
        except UnicodeDecodeError:
            raise PageError(400, "Bad request", "The request was not sent as UTF-8.") from None

    def _require_open_registration(self) -> None:
        if not self._open_registration:
            raise PageError(403, "Sign-up is closed", "Sign-up is closed on this server.")

    # Requests and responses

    def _serve(self, request: Any, handler: Handler, *args: Any) -> Deferred[bytes]:
        return ensureDeferred(self._guarded(request, handler, *args))

    async def _guarded(self, request: Any, handler: Handler, *args: Any) -> bytes:
        """
        Run a page handler: the error page for a :class:`PageError`, and a
        plain 500 page (with the failure logged) for anything unexpected.
        """
        for name, value in _HEADERS.items():
            request.setHeader(name, value)
        visitor = Visitor(None, None, None)
        try:
            visitor = await self._visitor(request)
            return await handler(request, visitor, *args)
        except Redirect as e:
            return self._redirect(request, e.location)
        except PageError as e:
            try:
                return self._render(
                    request, "error.html", visitor, e.status, title=e.title, message=e.message
                )
            except Exception:
                self.log.failure("rendering an error page failed")
        except Exception:
            self.log.failure(
                "page {method} {path} failed", method=request.method, path=request.path
            )
        request.setResponseCode(500)
        return INTERNAL_ERROR_PAGE

    def _render(self, request: Any, template: str, visitor: Visitor,
                status: int = 200, **context: Any) -> bytes:
        request.setResponseCode(status)
        html = self._templates.get_template(template).render(
            viewer=visitor.user,
            csrf=visitor.csrf or "",
            open_registration=self._open_registration,
            **context,
        )
        return html.encode("utf-8")

    def _redirect(self, request: Any, location: str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"location", location.encode("ascii"))
        return b""

    def _field(self, request: Any, name: str) -> str | None:
        """
        A query or form value, as text.
        """
        values = (request.args or {}).get(name.encode("ascii"))
        if not values:
            return None
        try:
            return values[0].decode("utf-8")  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            raise PageError(400, "Bad request", "The form was not sent as UTF-8.") from None

    def _max_id(self, request: Any) -> int | None:
        value = self._field(request, "max_id")
        if not value:
            return None
        if _STATUS_ID.match(value) is None or not 1 <= int(value) <= MAX_STATUS_ID:
            raise PageError(400, "Bad request", "max_id must be a post number.")
        return int(value)

    # Sessions and form tokens

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def _cookie(self, request: Any, name: bytes) -> str | None:
        value = request.getCookie(name)
        if value is None:
            return None
        text = value.decode("ascii", "replace")
        return text if _TOKEN.match(text) else None

    def _set_cookie(self, request: Any, name: bytes, value: str,
                    max_age: int | None = None) -> None:
        request.addCookie(
            name,
            value.encode("ascii"),
            path=b"/",
            max_age=None if max_age is None else str(max_age).encode("ascii"),
            secure=self._secure_cookies,
            httpOnly=True,
            sameSite=b"lax",
        )

    def _clear_cookie(self, request: Any, name: bytes) -> None:
        request.addCookie(
            name,
            b"",
            path=b"/",
            max_age=b"0",
            expires=b"Thu, 01 Jan 1970 00:00:00 GMT",
            secure=self._secure_cookies,
            httpOnly=True,
            sameSite=b"lax",
        )

    def _anon_csrf(self, anon: str) -> str:
        return hmac.new(self._secret, anon.encode("ascii"), hashlib.sha256).hexdigest()

    async def _visitor(self, request: Any) -> Visitor:
        """
        The signed-in user of a live session, or an anonymous visitor (with
        a form token if they have a ``dw_anon`` cookie).
        """
        if request.getCookie(SESSION_COOKIE) is not None:
            token = self._cookie(request, SESSION_COOKIE)
            if token is not None:
                hashed = session_hash(token)
                found = await self.microblog.sessions.get_session(hashed, self._now_ms())
                if found is not None:
                    account_id, csrf, signed_in_at = found
                    account = await self.microblog.timelines.account(account_id)
                    if account is not None:
                        return Visitor(account, hashed, csrf, signed_in_at)
            # Ended or expired: stop the browser sending it.
            self._clear_cookie(request, SESSION_COOKIE)
        anon = self._cookie(request, ANON_COOKIE)
        return Visitor(None, None, None if anon is None else self._anon_csrf(anon))

    def _with_form_token(self, request: Any, visitor: Visitor) -> Visitor:
        """
        ``visitor``, given a ``dw_anon`` cookie (and so a form token) if
        they are about to see a form and have neither.
        """
        if visitor.csrf is not None:
            return visitor
        anon = secrets.token_urlsafe(32)
        self._set_cookie(request, ANON_COOKIE, anon)
        return replace(visitor, csrf=self._anon_csrf(anon))

    def _check_csrf(self, request: Any, visitor: Visitor) -> None:
        """
        :raise PageError: (403) the form's token is missing or not this
            visitor's: the form is stale or came from another site.
        """
        sent = (request.args or {}).get(b"csrf", [b""])[0]
        expected = (visitor.csrf or "").encode("ascii")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise PageError(403, "Form expired", EXPIRED_FORM)

    async def _sign_in(self, request: Any, visitor: Visitor, account: Account) -> None:
        """
        Start a new session for ``account`` (ending the browser's old one,
        so a session id planted before sign-in is worth nothing).
        """
        if visitor.session_hash is not None:
            await self.microblog.sessions.delete_session(visitor.session_hash)
        token = secrets.token_urlsafe(32)
        now = self._now_ms()
        await self.microblog.sessions.create_session(
            session_hash(token),
            account.id,
            secrets.token_urlsafe(32),
            now,
            now + SESSION_LIFETIME * 1000,
        )
        self._set_cookie(request, SESSION_COOKIE, token, SESSION_LIFETIME)
