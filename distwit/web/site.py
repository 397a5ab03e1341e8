"""
The plumbing every page shares: routes declared once with :func:`page`,
the guard around each page (who the visitor is, the error pages), cookies,
sessions, form tokens, rendering and redirects.

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
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlencode

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from distwit.core.microblog import Microblog
from distwit.core.notifications import Notifications
from distwit.model import MAX_STATUS_ID, Account
from distwit.web.templating import content_security_policy, templates

SESSION_COOKIE = b"dw_session"
ANON_COOKIE = b"dw_anon"

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

    def __init__(self, status: int, title: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        #: Technical detail, shown folded away under the message.
        self.detail = detail


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
    #: How many notifications a signed-in member has not seen (pages read
    #: with GET only).
    unread: int = 0


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


def login_url(next_path: str) -> str:
    """
    The sign-in page, then back to ``next_path``.
    """
    return "/login?" + urlencode({"next": next_path})


#: A page: ``(request, visitor, **the route's values)`` to the page's body.
Handler = Callable[..., Awaitable[bytes]]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Where :func:`page` keeps a method's routes.
_ROUTES = "_distwit_page_routes"


@dataclass(frozen=True)
class Route:
    """
    One route of a page, as :func:`page` declares it.

    :ivar guarded: whether the method is a page (run by :meth:`Site.serve`
        with the visitor) or answers the request itself (static files).
    :ivar fixed: arguments the method is given on this route besides the
        values in the path.
    """

    method: str
    path: str
    guarded: bool = True
    fixed: dict[str, Any] = field(default_factory=dict)


def page(method: str, path: str, *, guarded: bool = True, **fixed: Any) -> Callable[[_F], _F]:
    """
    Declare that a method of an area's class answers ``method path``:
    :meth:`Site.mount` routes it, guarded by :meth:`Site.serve`.  A method
    may answer several routes (``fixed`` tells them apart).

    The method is called as ``(request, visitor, **values, **fixed)``,
    ``values`` being those in the path (``/<handle>``); with
    ``guarded=False``, as ``(request, **values)``, with no guard.
    """

    def declare(handler: _F) -> _F:
        routes = getattr(handler, _ROUTES, [])
        setattr(handler, _ROUTES, [*routes, Route(method, path, guarded, fixed)])
        return handler

    return declare


class Site:
    """
    The plumbing of the pages: one Klein app the areas are mounted on, and
    what every page needs (the visitor, cookies, forms, rendering).

    :param microblog: the :class:`Microblog` whose sessions sign visitors in.
    :param secret: the server's web secret (for visitors' form tokens).
    :param clock: sessions are timed by it.
    :param open_registration: whether anyone may sign up here (the pages
        show a sign-up link).
    :param secure_cookies: mark cookies ``Secure`` (the site is on HTTPS).
    """

    log = Logger()

    def __init__(self, microblog: Microblog, secret: bytes, clock: IReactorTime,
                 open_registration: bool, secure_cookies: bool) -> None:
        self.microblog = microblog
        self.clock = clock
        self.open_registration = open_registration
        self._secret = secret
        self._secure_cookies = secure_cookies
        self._templates = templates()
        #: Members' notifications and their unread counts (the header).
        self.notifications = Notifications(microblog.store)
        self._app = Klein()
        self._app.handle_errors(NotFound)(self._not_found)
        self._app.handle_errors(MethodNotAllowed)(self._wrong_method)

    def resource(self) -> IResource:
        return self._app.resource()

    def mount(self, area: object) -> None:
        """
        Route every method of ``area`` that :func:`page` declared.
        """
        kind = type(area)
        for name in dir(kind):
            for route in getattr(getattr(kind, name), _ROUTES, []):
                self._route(route, getattr(area, name), f"{kind.__name__}.{name} {route.path}")

    def _route(self, route: Route, handler: Handler, endpoint: str) -> None:
        async def serve(request: IRequest, **values: Any) -> bytes:
            return await self.serve(request, handler, **values, **route.fixed)

        self._app.route(route.path, methods=[route.method], endpoint=endpoint)(
            serve if route.guarded else handler
        )

    async def _not_found(self, request: IRequest, failure: Failure) -> bytes:
        return await self.serve(request, self.not_found)

    async def _wrong_method(self, request: IRequest, failure: Failure) -> bytes:
        allowed = getattr(failure.value, "valid_methods", None) or []
        if allowed:
            request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
        return await self.serve(request, self.wrong_method)

    async def not_found(self, request: IRequest, visitor: Visitor) -> bytes:
        raise PageError(404, "Page not found", "There is no page at this address.")

    async def wrong_method(self, request: IRequest, visitor: Visitor) -> bytes:
        raise PageError(405, "Method not allowed", "This page cannot be used that way.")

    # Requests and responses

    async def serve(self, request: IRequest, handler: Handler, **arguments: Any) -> bytes:
        """
        Run a page handler: the error page for a :class:`PageError`, and a
        plain 500 page (with the failure logged) for anything unexpected.
        """
        for name, value in _HEADERS.items():
            request.setHeader(name, value)
        visitor = Visitor(None, None, None)
        try:
            visitor = await self._visitor(request)
            return await handler(request, visitor, **arguments)
        except Redirect as e:
            return self.redirect(request, e.location)
        except PageError as e:
            try:
                return self.render(
                    request, "error.html", visitor, e.status, title=e.title, message=e.message,
                    detail=e.detail,
                )
            except Exception:
                self.log.failure("rendering an error page failed")
        except Exception:
            self.log.failure(
                "page {method} {path} failed", method=request.method, path=request.path
            )
        request.setResponseCode(500)
        return INTERNAL_ERROR_PAGE

    def render(self, request: IRequest, template: str, visitor: Visitor,
               status: int = 200, **context: Any) -> bytes:
        request.setResponseCode(status)
        html = self._templates.get_template(template).render(
            viewer=visitor.user,
            csrf=visitor.csrf or "",
            open_registration=self.open_registration,
            unread=visitor.unread,
            **context,
        )
        return html.encode("utf-8")

    def redirect(self, request: IRequest, location: str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"location", location.encode("ascii"))
        return b""

    def field(self, request: IRequest, name: str) -> str | None:
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

    def lists(self, request: IRequest) -> dict[str, list[str]]:
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

    def max_id(self, request: IRequest) -> int | None:
        value = self.field(request, "max_id")
        if not value:
            return None
        if _STATUS_ID.match(value) is None or not 1 <= int(value) <= MAX_STATUS_ID:
            raise PageError(400, "Bad request", "max_id must be a post number.")
        return int(value)

    def member(self, visitor: Visitor, back: str) -> Account:
        """
        The signed-in user, if they have an account here; else
        :class:`Redirect` to sign in, then back to ``back``.
        """
        if visitor.user is None or not visitor.user.is_local:
            raise Redirect(login_url(back))
        return visitor.user

    # Sessions, cookies and form tokens

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def cookie(self, request: IRequest, name: bytes) -> str | None:
        """
        The cookie ``name``, if it is one this site could have set.
        """
        value = request.getCookie(name)
        if value is None:
            return None
        text = value.decode("ascii", "replace")
        return text if _TOKEN.match(text) else None

    def set_cookie(self, request: IRequest, name: bytes, value: str,
                   max_age: int | None = None) -> None:
        self._add_cookie(
            request, name, value.encode("ascii"),
            max_age=None if max_age is None else str(max_age).encode("ascii"),
        )

    def clear_cookie(self, request: IRequest, name: bytes) -> None:
        self._add_cookie(
            request, name, b"", max_age=b"0", expires=b"Thu, 01 Jan 1970 00:00:00 GMT",
        )

    def _add_cookie(self, request: IRequest, name: bytes, value: bytes,
                    **attributes: bytes | None) -> None:
        # IRequest.addCookie predates httpOnly and sameSite; the requests
        # Klein hands us (twisted.web.http.Request) take them.
        add_cookie: Any = request.addCookie
        add_cookie(
            name, value, path=b"/", secure=self._secure_cookies, httpOnly=True,
            sameSite=b"lax", **attributes,
        )

    def _anon_csrf(self, anon: str) -> str:
        return hmac.new(self._secret, anon.encode("ascii"), hashlib.sha256).hexdigest()

    async def _visitor(self, request: IRequest) -> Visitor:
        """
        The signed-in user of a live session, or an anonymous visitor (with
        a form token if they have a ``dw_anon`` cookie).
        """
        if request.getCookie(SESSION_COOKIE) is not None:
            token = self.cookie(request, SESSION_COOKIE)
            if token is not None:
                hashed = session_hash(token)
                found = await self.microblog.sessions.get_session(hashed, self.now_ms())
                if found is not None:
                    account = await self.microblog.timelines.account(found.account_id)
                    if account is not None:
                        unread = 0
                        if account.is_local and request.method in (b"GET", b"HEAD"):
                            unread = await self.notifications.unread(account)
                        return Visitor(
                            account, hashed, found.csrf_token, found.created_at, unread
                        )
            # Ended or expired: stop the browser sending it.
            self.clear_cookie(request, SESSION_COOKIE)
        anon = self.cookie(request, ANON_COOKIE)
        return Visitor(None, None, None if anon is None else self._anon_csrf(anon))

    def with_form_token(self, request: IRequest, visitor: Visitor) -> Visitor:
        """
        ``visitor``, given a ``dw_anon`` cookie (and so a form token) if
        they are about to see a form and have neither.
        """
        if visitor.csrf is not None:
            return visitor
        anon = secrets.token_urlsafe(32)
        self.set_cookie(request, ANON_COOKIE, anon)
        return replace(visitor, csrf=self._anon_csrf(anon))

    def check_csrf(self, request: IRequest, visitor: Visitor) -> None:
        """
        :raise PageError: (403) the form's token is missing or not this
            visitor's: the form is stale or came from another site.
        """
        sent = (request.args or {}).get(b"csrf", [b""])[0]
        expected = (visitor.csrf or "").encode("ascii")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise PageError(403, "Form expired", EXPIRED_FORM)

    async def sign_in(self, request: IRequest, visitor: Visitor, account: Account) -> None:
        """
        Start a new session for ``account`` (ending the browser's old one,
        so a session id planted before sign-in is worth nothing).
        """
        if visitor.session_hash is not None:
            await self.microblog.sessions.delete_session(visitor.session_hash)
        token = secrets.token_urlsafe(32)
        now = self.now_ms()
        await self.microblog.sessions.create_session(
            session_hash(token),
            account.id,
            secrets.token_urlsafe(32),
            now,
            now + SESSION_LIFETIME * 1000,
        )
        self.set_cookie(request, SESSION_COOKIE, token, SESSION_LIFETIME)

    async def sign_out(self, request: IRequest, visitor: Visitor) -> None:
        """
        End the visitor's session, here and in the browser.
        """
        if visitor.session_hash is not None:
            await self.microblog.sessions.delete_session(visitor.session_hash)
        self.clear_cookie(request, SESSION_COOKIE)
