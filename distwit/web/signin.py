"""
Signing up, in and out: with a password for an account here, or with
one's home server (this server is then an OpenID Connect relying party).
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit
from typing import TYPE_CHECKING

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from distwit.core.accts import authority_of
from distwit.core.limits import RateLimiter, SharedRateLimiter
from distwit.core.microblog import MIN_PASSWORD_LENGTH, NoSuchUser, RuleError
from distwit.http import client_address
from distwit.model import Account
from distwit.oidc.rp import MAX_PENDING_AGE, PendingSignIn, SignInError
from distwit.web.site import PageError, Site, Visitor, local_path, page
from distwit.web.templating import content_security_policy

if TYPE_CHECKING:
    from distwit.oidc.rp import RelyingParty

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

WRONG_CREDENTIALS = "Wrong handle or password."

#: What a failed sign-in with a home server says (the detail folded away).
REMOTE_FAILED = "We could not sign you in with your home server. Check the address and try again."
CALLBACK_FAILED = (
    "Your home server did not confirm who you are. Start again from the sign-in page."
)


def asking_server(next_path: str) -> str | None:
    """
    The server that sent a visitor to sign in here, when they are to go
    on to this server's consent page (``/oidc/authorize``): the host of
    the address it asked to be answered at.
    """
    path, _, query = next_path.partition("?")
    if path != "/oidc/authorize":
        return None
    for value in parse_qs(query).get("redirect_uri", [])[:1]:
        try:
            host = urlsplit(value).netloc
        except ValueError:
            return None
        return host or None
    return None


class SignInPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param public_url: where this site is (its own accounts sign in with a
        password, not through their home server).
    :param rp: the :class:`~distwit.oidc.rp.RelyingParty` that signs
        visitors in with their home server, or ``None`` for none.
    """

    log = Logger()

    def __init__(self, site: Site, public_url: str, rp: RelyingParty | None = None) -> None:
        self.site = site
        self.microblog = site.microblog
        self._authority = authority_of(public_url)
        self._rp = rp
        #: Remote sign-ins on their way, by the ``dw_signin`` cookie: what
        #: the relying party needs to finish, where to go after, until when.
        self._pending: dict[str, tuple[PendingSignIn, str, float]] = {}
        #: Per address: sign-ins with a home server begun (each makes this
        #: server fetch from, maybe register with, another).
        #: With several processes, counted in their shared state.
        limits = {"remote-sign-in": ADDRESS_REMOTE_SIGNINS}
        shared = self.microblog.shared
        self._limits = (
            RateLimiter(site.clock, window=ADDRESS_WINDOW, limits=limits)
            if shared is None
            else SharedRateLimiter(
                shared, site.clock, "remote-sign-in", window=ADDRESS_WINDOW, limits=limits
            )
        )

    @page("GET", "/signup")
    async def signup_form(self, request: IRequest, visitor: Visitor) -> bytes:
        self._require_open_registration()
        return self._signup_page(request, self.site.with_form_token(request, visitor))

    @page("POST", "/signup")
    async def signup(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /signup``: a new user, signed in at once.  A refused handle
        or password shows the form again (400) with what to change.
        """
        self._require_open_registration()
        self.site.check_csrf(request, visitor)
        handle = (self.site.field(request, "handle") or "").strip()
        name = self.site.field(request, "name") or ""
        password = self.site.field(request, "password") or ""
        if password != (self.site.field(request, "password_again") or ""):
            return self._signup_page(
                request, visitor, 400, handle, name, "The two passwords differ."
            )
        try:
            account = await self.microblog.create_user(handle, password, name)
        except RuleError as e:
            return self._signup_page(request, visitor, 400, handle, name, str(e))
        await self.site.sign_in(request, visitor, account)
        return self.site.redirect(request, "/home")

    @page("GET", "/login")
    async def login_form(self, request: IRequest, visitor: Visitor) -> bytes:
        return self._login_page(
            request, self.site.with_form_token(request, visitor), 200,
            local_path(self.site.field(request, "next")) or "",
        )

    @page("POST", "/login")
    async def login(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /login``: sign in and go to ``next`` (a path on this site)
        or ``/home``.  A wrong handle or password shows the form again
        with status 400: a 401 would need an HTTP authentication scheme.
        """
        self.site.check_csrf(request, visitor)
        handle = (self.site.field(request, "handle") or "").strip()
        password = self.site.field(request, "password") or ""
        next_path = local_path(self.site.field(request, "next"))
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
        await self.site.sign_in(request, visitor, account)
        return self.site.redirect(request, next_path or "/home")

    @page("POST", "/login/remote")
    async def remote_login(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /login/remote``: sign in with one's home server (OpenID
        Connect).  Finds the server from the address typed, registers with
        it on first contact, and sends the browser there; it comes back to
        :meth:`callback`.
        """
        self.site.check_csrf(request, visitor)
        rp = self._require_rp()
        identifier = (self.site.field(request, "identifier") or "").strip()
        next_path = local_path(self.site.field(request, "next")) or ""
        if not identifier:
            return self._login_page(
                request, visitor, 400, next_path, identifier=identifier,
                remote_error="Type your address, like alice@example.org.",
            )
        allowance = await self._limits.take(
            client_address(request), "/login/remote", "remote-sign-in"
        )
        if not allowance.allowed:
            return self._login_page(
                request, visitor, 429, next_path, identifier=identifier,
                remote_error="Too many sign-ins from your address; try again in 15 minutes.",
            )
        try:
            url, pending = await rp.begin(identifier)
        except SignInError as e:
            return self._login_page(
                request, visitor, 400, next_path, identifier=identifier,
                remote_error=REMOTE_FAILED, remote_detail=str(e),
            )
        token = secrets.token_urlsafe(32)
        # Several processes (--redis): kept where any of them finds it.
        if getattr(rp, "shared", None) is None or not await rp.keep_pending(
            token, pending, next_path, SIGNIN_LIFETIME
        ):
            self._keep_pending(token, pending, next_path)
        self.site.set_cookie(request, SIGNIN_COOKIE, token, SIGNIN_LIFETIME)
        return self.site.redirect(request, url)

    @page("GET", "/login/callback")
    async def callback(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /login/callback``: back from the visitor's home server with a
        code; check everything, then sign them in here as their
        ``handle@server``.
        """
        rp = self._require_rp()
        token = self.site.cookie(request, SIGNIN_COOKIE)
        found = self._pending.pop(token, None) if token is not None else None
        if found is None and token is not None and getattr(rp, "shared", None) is not None:
            # Kept by whichever process of this server began it (--redis).
            shared = await rp.claim_pending(token)
            if shared is not None:
                found = (shared[0], shared[1], float("inf"))
        if request.getCookie(SIGNIN_COOKIE) is not None:
            self.site.clear_cookie(request, SIGNIN_COOKIE)
        if found is None or found[2] < self.site.clock.seconds():
            raise PageError(
                400, "Sign-in expired",
                "This sign-in was not started in this browser, or took too long. "
                "Start again from the sign-in page.",
            )
        pending, next_path, _ = found
        params = {key: values[0] for key, values in self.site.lists(request).items()}
        try:
            identity = await rp.finish(pending, params)
        except SignInError as e:
            raise PageError(400, "Sign-in failed", CALLBACK_FAILED, str(e)) from None
        account = await self._visiting_account(identity.handle, identity.authority)
        await self.site.sign_in(request, visitor, account)
        self.log.info(
            "{acct} signed in from their home server {issuer}",
            acct=f"{identity.handle}@{identity.authority}", issuer=identity.issuer,
        )
        return self.site.redirect(request, next_path or "/")

    @page("POST", "/logout")
    async def logout(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /logout``: end the session, here and in the browser.
        """
        self.site.check_csrf(request, visitor)
        await self.site.sign_out(request, visitor)
        return self.site.redirect(request, "/")

    def _signup_page(self, request: IRequest, visitor: Visitor, status: int = 200,
                     handle: str = "", name: str = "", error: str | None = None) -> bytes:
        return self.site.render(
            request, "signup.html", visitor, status,
            handle=handle, name=name, error=error, min_password=MIN_PASSWORD_LENGTH,
        )

    def _login_page(self, request: IRequest, visitor: Visitor, status: int, next_path: str,
                    handle: str = "", error: str | None = None, identifier: str = "",
                    remote_error: str | None = None, remote_detail: str = "") -> bytes:
        """
        The sign-in page: a password for an account here, or the address of
        one's home server.
        """
        if self._rp is not None:
            # The home-server form's answer sends the browser to that server.
            request.setHeader(
                b"content-security-policy", content_security_policy("https:", "http:"),
            )
        return self.site.render(
            request, "login.html", visitor, status,
            handle=handle, next=next_path, error=error, identifier=identifier,
            remote_error=remote_error, remote=self._rp is not None,
            remote_detail=remote_detail, asking=asking_server(next_path),
        )

    def _require_open_registration(self) -> None:
        if not self.site.open_registration:
            raise PageError(403, "Sign-up is closed", "Sign-up is closed on this server.")

    def _require_rp(self) -> RelyingParty:
        if self._rp is None:
            raise PageError(
                404, "Page not found", "This server does not take sign-ins from other servers."
            )
        return self._rp

    def _keep_pending(self, token: str, pending: PendingSignIn, next_path: str) -> None:
        now = self.site.clock.seconds()
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
        if authority == self._authority:
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
