"""
Following from another server (docs/design/subscription.md): a visitor
signed in on another server with their account here clicks "Follow" there
and is sent to ``/follow?acct=HANDLE@SERVER`` on this, their home server,
where they confirm.  The follow is made here, by the user, as any follow of
a remote account is; their home server never takes another server's word
for whom its users follow.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twisted.web.iweb import IRequest

from distwit.core.accts import BadAcct, HomeUnreachable, split_acct
from distwit.core.microblog import RuleError
from distwit.web.site import PageError, Site, Visitor, page
from distwit.web.templating import content_security_policy, profile_url


class RemoteFollowPages:
    """
    ``GET /follow?acct=...&action=follow|unfollow``: the confirmation;
    ``POST /follow``: the follow, then to the account's profile.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self.microblog = site.microblog

    def _wanted(self, request: IRequest) -> tuple[str, bool]:
        acct = (self.site.field(request, "acct") or "").strip().removeprefix("@")
        try:
            handle, authority = split_acct(acct)
        except BadAcct as e:
            raise PageError(400, "Not followed", str(e)) from None
        action = self.site.field(request, "action") or "follow"
        if action not in ("follow", "unfollow"):
            raise PageError(400, "Not followed", "action is follow or unfollow.")
        return f"{handle}@{authority}", action == "follow"

    @page("GET", "/follow")
    async def confirm(self, request: IRequest, visitor: Visitor) -> bytes:
        acct, follow = self._wanted(request)
        back = "/follow?" + urlencode({"acct": acct, "action": "follow" if follow else "unfollow"})
        self.site.member(visitor, back)
        # The confirmed form ends on the account's profile, on its server.
        authority = acct.partition("@")[2]
        request.setHeader(b"content-security-policy", content_security_policy(
            f"https://{authority}", f"http://{authority}"
        ))
        return self.site.render(request, "follow.html", visitor, acct=acct, follow=follow)

    @page("POST", "/follow")
    async def follow(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        acct, follow = self._wanted(request)
        user = self.site.member(visitor, "/home")
        try:
            account = await self.microblog.resolve(acct)
            if follow:
                await self.microblog.follow(user, account)
            else:
                await self.microblog.unfollow(user, account)
        except HomeUnreachable as e:
            # Looked up at its server first: nothing was recorded.
            raise PageError(502, "Not followed", str(e)) from None
        except RuleError as e:
            raise PageError(400, "Not followed", str(e)) from None
        return self.site.redirect(request, profile_url(account) or "/home")
