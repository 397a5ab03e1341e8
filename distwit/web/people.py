"""
People: a local user's profile (``/HANDLE``) with their followers and
following lists, a remote user's page on this server
(``/@handle@authority``: what this server holds, and older posts fetched
from their server on demand), and following by address (the box on the
home page, and the buttons of a remote user's page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from twisted.web.iweb import IRequest

from distwit.core.accts import BadAcct, HomeUnreachable, split_acct
from distwit.core.microblog import NoSuchUser, RuleError
from distwit.model import Account, is_valid_handle
from distwit.urls import authority_of
from distwit.web.site import PAGE_SIZE, PageError, Redirect, Site, Visitor, login_url, page
from distwit.web.templating import content_security_policy, person_url
from distwit.web.text import timeline

if TYPE_CHECKING:
    from distwit.federation.health import FederationHealth
    from distwit.web.public import PublicPages

#: What the follow box says when the address is not one.
NOT_AN_ADDRESS = "Type an address like someone@example.org (or a handle of this server)."


class PeoplePages:
    """
    :param site: the plumbing the pages are mounted on.
    :param public: the public pages (the home page, shown again with the
        follow box's error).
    :param public_url: where this site is.
    :param health: the federation health view: how much of a remote
        author is held, for the line on their page.
    """

    def __init__(self, site: Site, public: PublicPages, public_url: str,
                 health: FederationHealth | None = None) -> None:
        self.site = site
        self._health = health
        self.microblog = site.microblog
        self._public = public
        self._authority = authority_of(public_url)

    # Pages

    @page("GET", "/<handle>")
    async def person(self, request: IRequest, visitor: Visitor, handle: str) -> bytes:
        """
        ``GET /{handle}``: a local user's profile; ``GET
        /@{handle}@{authority}``: a remote user's page.
        """
        if handle.startswith("@"):
            return await self._remote(request, visitor, handle[1:])
        account = await self._local_user(handle)
        return await self._profile(request, visitor, account)

    @page("GET", "/<handle>/followers", followers=True)
    @page("GET", "/<handle>/following", followers=False)
    async def people(self, request: IRequest, visitor: Visitor, handle: str,
                     followers: bool) -> bytes:
        """
        ``GET /{handle}/followers`` and ``/following``: a local user's
        lists, paged by ``before`` (an account id).
        """
        account = await self._local_user(handle)
        before = self._number(request, "before")
        found = await self.microblog.timelines.following_page(
            account.id, followers, before, PAGE_SIZE + 1
        )
        kind = "followers" if followers else "following"
        older_url = None
        if len(found) > PAGE_SIZE:
            older_url = f"/{account.handle}/{kind}?before={found[PAGE_SIZE - 1].id}"
        return self.site.render(
            request, "people.html", visitor,
            account=account, followers=followers, people=found[:PAGE_SIZE],
            heading=("People following " if followers else "People followed by ")
            + (account.name or account.handle),
            older_url=older_url,
        )

    @page("POST", "/people/follow")
    async def follow(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /people/follow``: follow (``action=unfollow``: stop) the
        account at the address typed or on the button (``acct``): a local
        handle, ``handle@authority`` or ``@handle@authority``.  Then to
        that account's page here; from the home page's box
        (``from=home``), a refusal shows the home page again with why.
        """
        self.site.check_csrf(request, visitor)
        typed = (self.site.field(request, "acct") or "").strip()
        from_home = self.site.field(request, "from") == "home"
        user = self.site.member(visitor, "/home")
        action = self.site.field(request, "action") or "follow"
        if action not in ("follow", "unfollow"):
            raise PageError(400, "Not followed", "The button sent an unknown action.")
        try:
            account = await self._find(typed)
            if action == "follow":
                await self.microblog.follow(user, account)
            else:
                await self.microblog.unfollow(user, account)
        except PageError as e:
            if not from_home:
                raise
            return await self._public.home_page(
                request, visitor, e.status, follow_error=e.message, follow_acct=typed
            )
        except RuleError as e:
            if not from_home:
                raise PageError(400, "Not followed", str(e)) from None
            return await self._public.home_page(
                request, visitor, 400, follow_error=str(e), follow_acct=typed
            )
        return self.site.redirect(request, person_url(account))

    # The pages' parts

    async def _profile(self, request: IRequest, visitor: Visitor, account: Account) -> bytes:
        posts = await self.microblog.timelines.user_timeline(
            account.id, PAGE_SIZE + 1, None, self.site.max_id(request),
            viewer=visitor.user.id if visitor.user is not None else None,
        )
        following = None
        if visitor.user is not None and visitor.user.id != account.id:
            following = await self.microblog.is_following(visitor.user, account)
        if visitor.user is not None and not visitor.user.is_local and visitor.user.home_url:
            # The follow button leads, by a redirect, to the visitor's home
            # server (see PublicPages.follow).
            request.setHeader(
                b"content-security-policy", content_security_policy(visitor.user.home_url)
            )
        return self.site.render(
            request, "profile.html", visitor,
            account=account, following=following,
            **await timeline(
                self.site, request, visitor, "/" + account.handle, posts, self._authority
            ),
        )

    async def _remote(self, request: IRequest, visitor: Visitor, acct: str) -> bytes:
        try:
            handle, authority = split_acct(acct)
        except BadAcct:
            raise PageError(
                404, "No such page",
                "A person's address looks like @someone@example.org.",
            ) from None
        if authority == self._authority:
            raise Redirect("/" + handle)
        account = await self._find(f"{handle}@{authority}")
        if account.is_local:
            raise Redirect("/" + account.handle)
        account = await self.microblog.fresh_profile(account)
        path = person_url(account)
        posts = await self.microblog.timelines.user_timeline(
            account.id, PAGE_SIZE + 1, None, self.site.max_id(request),
            viewer=visitor.user.id if visitor.user is not None else None,
        )
        # Older messages fetched just now carry the profile as of then.
        account = await self.microblog.timelines.account(account.id) or account
        following = None
        if visitor.user is not None and visitor.user.is_local:
            following = await self.microblog.is_following(visitor.user, account)
        return self.site.render(
            request, "remote.html", visitor,
            account=account, following=following, acct=f"{account.handle}@{authority}",
            home_profile=_home_profile(account), login=login_url(path),
            held=held_line(
                account, bool(following),
                await self._health.held_from(account.id) if self._health is not None else 1,
            ),
            **await timeline(self.site, request, visitor, path, posts, self._authority),
        )

    async def _find(self, typed: str) -> Account:
        """
        The account at an address people type: a handle of this server,
        ``handle@authority`` or ``@handle@authority`` (looked up at its
        server when not known here).

        :raise PageError: not an address, or nobody there.
        """
        typed = typed.strip().removeprefix("@")
        if "@" not in typed:
            if not is_valid_handle(typed):
                raise PageError(400, "Not followed", NOT_AN_ADDRESS)
            return await self._local_user(typed)
        try:
            handle, authority = split_acct(typed)
        except BadAcct:
            raise PageError(400, "Not followed", NOT_AN_ADDRESS) from None
        acct = f"{handle}@{authority}"
        if authority == self._authority:
            return await self._local_user(handle)
        try:
            return await self.microblog.resolve(acct)
        except HomeUnreachable as e:
            raise PageError(
                404, "Server not found",
                f"We could not reach {authority} as a distwit server, so we cannot find {acct}.",
                str(e),
            ) from None
        except NoSuchUser as e:
            raise PageError(
                404, "No such user", f"{authority} has nobody called {handle}.", str(e)
            ) from None

    async def _local_user(self, handle: str) -> Account:
        if is_valid_handle(handle):
            account = await self.microblog.local_user(handle)
            if account is not None:
                if account.id in self.microblog.moderation.deleted:
                    raise PageError(404, "No such user", "Nobody here has that handle.")
                if self.microblog.is_suspended(account):
                    raise PageError(403, "Account suspended", "This account has been suspended.")
                return account
        raise PageError(404, "No such user", "Nobody here has that handle.")

    def _number(self, request: IRequest, name: str) -> int | None:
        value = self.site.field(request, name)
        if not value:
            return None
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            raise PageError(400, "Bad request", f"{name} must be a number.")
        return int(value)


def _home_profile(account: Account) -> str | None:
    """
    A remote account's profile on its own server, when that is a web
    address.
    """
    if account.home_url.startswith(("https://", "http://")):
        return account.home_url.rstrip("/") + "/" + quote(account.handle)
    return None



def held_line(account: Account, following: bool, held_from: int) -> str | None:
    """
    How complete this server's copy of a remote author is, for their page:
    "all 1,234 posts held", or "fetching 12 of 1,234" while new messages
    are being copied (numbers of the author's log: posts, deletes,
    retweets, profile changes).  A copy that is up to date but began
    after the author's first message (following copies the latest 20;
    older ones come as people page back: docs/design/reach.md) says so.
    ``None`` when this server keeps no copy (nobody here followed them).

    :param held_from: the lowest number from which all up to the copy's
        top is held.
    """
    known, held = account.last_seq, account.synced_seq
    if known <= 0 or (held <= 0 and not following):
        return None
    if held < known:
        return f"fetching {known - held:,} of {known:,}"
    if held_from > 1:
        return "all new posts held; older ones come from their server as you page"
    posts = account.statuses_count
    return f"all {posts:,} post{'' if posts == 1 else 's'} held"
