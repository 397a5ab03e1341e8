"""
The pages anyone reads and a member's own timeline: the public timeline,
the follow buttons of profiles (the profiles are in
:mod:`distwit.web.people`), the home page with its post box, the page for
client authors, and the static files.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from twisted.web.iweb import IRequest

from distwit.config import LOCAL_HTTPS_PORT
from distwit.core.microblog import NoSuchUser, RuleError
from distwit.model import Account, is_valid_handle
from distwit.urls import authority_of
from distwit.web.site import PAGE_SIZE, PageError, Site, Visitor, login_url, page
from distwit.web.text import timeline


class PublicPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param public_url: where this site is, for the page for client authors.
    :param local_https: ``(URL, the shell line that trusts its CA)`` of
        ``--local-https``, if it is on: the https recipes on that page use
        them.
    """

    def __init__(self, site: Site, public_url: str,
                 local_https: tuple[str, str] | None = None) -> None:
        self.site = site
        self.microblog = site.microblog
        self._public_url = public_url.rstrip("/")
        self._authority = authority_of(public_url)
        self._local_https = local_https
        folder = files("distwit.web") / "static"
        self._static = {
            "site.css": (b"text/css; charset=utf-8", (folder / "site.css").read_bytes()),
            "compose.js": (
                b"text/javascript; charset=utf-8", (folder / "compose.js").read_bytes()
            ),
        }

    @page("GET", "/")
    async def public(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /``: everyone's posts, newest first.
        """
        posts = await self.microblog.timelines.public_timeline(
            PAGE_SIZE + 1, None, self.site.max_id(request),
            viewer=visitor.user.id if visitor.user is not None else None,
        )
        return self.site.render(
            request, "public.html", visitor,
            **await timeline(self.site, request, visitor, "/", posts, self._authority),
        )

    @page("GET", "/home")
    async def home(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /home``: the post box and the signed-in user's home timeline.
        """
        self.site.member(visitor, "/home")
        return await self._home_page(request, visitor)

    @page("POST", "/home")
    async def post(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /home``: a new post by the signed-in user.  A post the rules
        refuse shows the page again (400) with the text kept.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/home")
        text = self.site.field(request, "status") or ""
        try:
            await self.microblog.post(user, text, source="web")
        except RuleError as e:
            return await self._home_page(request, visitor, 400, text, str(e))
        return self.site.redirect(request, "/home")

    @page("POST", "/<handle>/follow", follow=True)
    @page("POST", "/<handle>/unfollow", follow=False)
    async def follow(self, request: IRequest, visitor: Visitor, handle: str,
                     follow: bool) -> bytes:
        """
        ``POST /{handle}/follow`` and ``/unfollow``, then back to the profile.
        """
        self.site.check_csrf(request, visitor)
        account = await self._local_user(handle)
        back = "/" + account.handle
        if visitor.user is None:
            return self.site.redirect(request, login_url(back))
        if not visitor.user.is_local:
            # A visitor follows from their home server, which confirms with
            # them (docs/design/subscription.md): it takes no other
            # server's word for whom its users follow.
            if not visitor.user.home_url:
                raise PageError(
                    400, "Not followed",
                    f"Your home server, {visitor.user.authority}, is not a distwit server this "
                    "server can reach: follow from there.",
                )
            acct = f"{account.handle}@{self._authority}"
            return self.site.redirect(request, visitor.user.home_url + "/follow?" + urlencode(
                {"acct": acct, "action": "follow" if follow else "unfollow"}
            ))
        try:
            if follow:
                await self.microblog.follow(visitor.user, account)
            else:
                await self.microblog.unfollow(visitor.user, account)
        except RuleError as e:
            raise PageError(400, "Not followed", str(e)) from None
        return self.site.redirect(request, back)

    @page("GET", "/docs/clients")
    async def clients(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /docs/clients``: how to point Twitter libraries here.
        """
        https = self._public_url.startswith("https:")
        local_url, local_trust = self._local_https or ("", "")
        # The recipes of clients that speak only https: the public URL
        # when it is https, else --local-https's (or where it would be).
        https_base = (self._public_url if https
                      else local_url or f"https://localhost:{LOCAL_HTTPS_PORT}")
        return self.site.render(
            request, "clients.html", visitor,
            base=self._public_url,
            authority=self._authority,
            https=https,
            https_base=https_base,
            https_authority=authority_of(https_base),
            local_https=bool(local_url) and not https,
            local_trust=local_trust,
        )

    @page("GET", "/static/<name>", guarded=False)
    async def static(self, request: IRequest, name: str) -> bytes:
        """
        ``/static/site.css`` and ``/static/compose.js``, read once at start.
        """
        found = self._static.get(name)
        if found is None:
            return await self.site.serve(request, self.site.not_found)
        content_type, body = found
        request.setHeader(b"content-type", content_type)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"public, max-age=3600")
        return body

    async def _home_page(self, request: IRequest, visitor: Visitor, status: int = 200,
                         draft: str = "", error: str | None = None, **extra: Any) -> bytes:
        assert visitor.user is not None
        posts = await self.microblog.timelines.home_timeline(
            visitor.user.id, PAGE_SIZE + 1, None, self.site.max_id(request)
        )
        return self.site.render(
            request, "home.html", visitor, status,
            draft=draft, error=error, **extra,
            **await timeline(self.site, request, visitor, "/home", posts, self._authority),
        )

    #: The home page, for other areas (the follow box's errors).
    home_page = _home_page

    async def _local_user(self, handle: str) -> Account:
        if is_valid_handle(handle):
            try:
                account = await self.microblog.user(handle)
            except NoSuchUser:
                pass
            else:
                if account.is_local:
                    if account.id in self.microblog.moderation.deleted:
                        raise PageError(404, "No such user", "Nobody here has that handle.")
                    if self.microblog.is_suspended(account):
                        raise PageError(
                            403, "Account suspended", "This account has been suspended."
                        )
                    return account
        raise PageError(404, "No such user", "Nobody here has that handle.")

