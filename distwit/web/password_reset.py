"""
"Forgot your password?": asking for a reset link by e-mail
(``/account/forgot``) and choosing a new password with it
(``/account/reset/<token>``); the rules are in
:mod:`distwit.core.password_reset`.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from distwit.core.limits import RateLimiter
from distwit.core.microblog import MIN_PASSWORD_LENGTH, RuleError
from distwit.core.password_reset import PasswordReset, ResetLinkError, how_long
from distwit.http import client_address
from distwit.web.site import Site, Visitor, page

#: Reset requests one network address may make in :data:`ADDRESS_WINDOW`.
ADDRESS_REQUESTS = 10
ADDRESS_WINDOW = 15 * 60

#: What the request answers, whether or not it named anybody.
SENT = (
    "If that is the handle or the confirmed e-mail address of an account here,"
    " we sent a link to its e-mail address. It works once, for {ttl}."
    " Nothing came? Check your spam folder, or the address you typed."
)
NO_EMAIL = (
    "This server does not send e-mail, so it cannot reset a password."
    " Ask the people who run it."
)


class PasswordResetPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param reset: the rules; ``None`` or not :attr:`~PasswordReset.enabled`:
        the pages say this server cannot reset passwords.
    """

    def __init__(self, site: Site, reset: PasswordReset | None) -> None:
        self.site = site
        self._reset = reset
        self._limits = RateLimiter(site.clock, window=ADDRESS_WINDOW, limits={
            "password-reset": ADDRESS_REQUESTS,
        })

    def _enabled(self) -> PasswordReset | None:
        if self._reset is None or not self._reset.enabled:
            return None
        return self._reset

    def _forgot_page(self, request: IRequest, visitor: Visitor, status: int = 200,
                     who: str = "", error: str | None = None, sent: str | None = None) -> bytes:
        return self.site.render(
            request, "forgot.html", visitor, status, who=who, error=error, sent=sent,
            unavailable=None if self._enabled() else NO_EMAIL,
        )

    @page("GET", "/account/forgot")
    async def forgot_form(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /account/forgot``: the form that asks for an e-mail address or
        a handle.
        """
        return self._forgot_page(request, self.site.with_form_token(request, visitor))

    @page("POST", "/account/forgot")
    async def forgot(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /account/forgot``: send a link, if the address or handle
        names an account with a confirmed address; the page is the same
        either way, and answers before the work is done.
        """
        self.site.check_csrf(request, visitor)
        who = (self.site.field(request, "who") or "").strip()
        reset = self._enabled()
        if reset is None:
            return self._forgot_page(request, visitor, 404, who)
        if not who:
            return self._forgot_page(
                request, visitor, 400, who, "Type your e-mail address or your handle."
            )
        if not self._limits.hit(
            client_address(request), "/account/forgot", "password-reset"
        ).allowed:
            return self._forgot_page(
                request, visitor, 429, who,
                "Too many requests from your address; try again in 15 minutes.",
            )
        reset.request_soon(who)
        return self._forgot_page(request, visitor, sent=SENT.format(ttl=how_long(reset.ttl)))

    def _reset_page(self, request: IRequest, visitor: Visitor, token: str, status: int = 200,
                    error: str | None = None, broken: str | None = None,
                    done: bool = False) -> bytes:
        return self.site.render(
            request, "reset.html", visitor, status, token=token, error=error, broken=broken,
            done=done, min_password=MIN_PASSWORD_LENGTH,
        )

    @page("GET", "/account/reset/<token>")
    async def reset_form(self, request: IRequest, visitor: Visitor, token: str) -> bytes:
        """
        ``GET /account/reset/<token>``: the form for a new password, or why
        the link does not work (unknown, used, expired).
        """
        visitor = self.site.with_form_token(request, visitor)
        reset = self._enabled()
        if reset is None:
            return self._reset_page(request, visitor, token, 404, broken=NO_EMAIL)
        try:
            await reset.check(token)
        except ResetLinkError as e:
            return self._reset_page(request, visitor, token, 410, broken=str(e))
        return self._reset_page(request, visitor, token)

    @page("POST", "/account/reset/<token>")
    async def reset_password(self, request: IRequest, visitor: Visitor, token: str) -> bytes:
        """
        ``POST /account/reset/<token>``: set the new password; the link is
        then used, and every browser signed in to the account signed out.
        """
        self.site.check_csrf(request, visitor)
        reset = self._enabled()
        if reset is None:
            return self._reset_page(request, visitor, token, 404, broken=NO_EMAIL)
        password = self.site.field(request, "password") or ""
        if password != (self.site.field(request, "password_again") or ""):
            return self._reset_page(
                request, visitor, token, 400, error="The two passwords differ."
            )
        try:
            await reset.reset(token, password)
        except ResetLinkError as e:
            return self._reset_page(request, visitor, token, 410, broken=str(e))
        except RuleError as e:
            return self._reset_page(request, visitor, token, 400, error=str(e))
        # This browser's own session, if any, ended with the others.
        if visitor.session_hash is not None:
            await self.site.sign_out(request, visitor)
            visitor = Visitor(None, None, visitor.csrf)
        return self._reset_page(request, visitor, token, done=True)

