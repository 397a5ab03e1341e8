"""
Status pages and what one does to a post from the pages.

- ``GET /HANDLE/status/N``: a local post (the address every feed item
  gives), ``GET /@HANDLE@AUTHORITY/status/N`` a post held from elsewhere
  (N the author's number): the post, the conversation around it (ancestors
  above, the rest below; assembled across servers by
  :class:`distwit.federation.threads.Threads`, as the API's
  ``statuses/conversation`` is), Open Graph and Twitter-card tags and a link
  to its JSON.
- ``GET|POST /status/ID/reply``: a reply, prefilled with ``@author``.
- ``POST /status/ID/retweet|unretweet|favorite|unfavorite``: the buttons
  on every post, then back (303) to the page they were on (``next``).
- ``GET|POST /status/ID/delete``: deleting one's own post, confirmed.
- ``GET /hashtag/TAG``: the posts held here with that tag, newest first.

Every action goes through the same :class:`Microblog` calls as the API's,
so other servers hear of them the same way.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from twisted.web.iweb import IRequest

from distwit import entities
from distwit.api.conversations import ConversationSource
from distwit.core.microblog import (
    AlreadyFavorited,
    AlreadyRetweeted,
    NoSuchStatus,
    NoSuchUser,
    RuleError,
)
from distwit.model import MAX_STATUS_ID, PROFILE, Account, Post, is_valid_handle
from distwit.urls import authority_of
from distwit.web.site import PAGE_SIZE, PageError, Site, Visitor, local_path, page
from distwit.web.text import (
    HASHTAG,
    account_url,
    back_path,
    hashtag_path,
    post_views,
    status_path,
)

_NUMBER = re.compile(r"\A[0-9]{1,19}\Z")

#: Posts asked of the store at a time when looking for a hashtag's.
_TAG_BATCH = 100
#: Batches looked through for one page of a hashtag.
_TAG_BATCHES = 10

#: The visitor's latest posts looked at for replies a cached
#: conversation does not have yet.
_OWN_RECENT = 20

_NO_POST = ("No such post", "There is no post at this address.")


class StatusPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param public_url: where this site is (for the absolute addresses of
        the Open Graph tags).
    :param threads: assembles conversations; without it a status page
        shows the post alone.
    """

    def __init__(self, site: Site, public_url: str,
                 threads: ConversationSource | None = None) -> None:
        self.site = site
        self.microblog = site.microblog
        self._public_url = public_url.rstrip("/")
        self._authority = authority_of(public_url)
        self._threads = threads

    # Status pages

    @page("GET", "/<handle>/status/<seq>")
    async def status(self, request: IRequest, visitor: Visitor, handle: str, seq: str) -> bytes:
        """
        ``GET /{handle}/status/{n}`` and ``/@{handle}@{authority}/status/{n}``.
        """
        if _NUMBER.match(seq) is None or not 1 <= int(seq) <= MAX_STATUS_ID:
            raise PageError(404, *_NO_POST)
        author = await self._author(handle)
        found = await self.microblog.messages(author, int(seq), int(seq))
        if not found or found[0].kind == PROFILE or found[0].deletes_seq is not None:
            raise PageError(404, *_NO_POST)
        item = found[0]
        if item.deleted:
            raise PageError(410, "Post deleted", "This post was deleted by its author.")
        post = item
        if item.is_retweet:
            if item.retweeted_status is None:
                raise PageError(
                    404, "Post not held here",
                    f"This is a retweet of a post by @{item.retweet_acct or ''}, "
                    "which this server does not hold.",
                )
            post = item.retweeted_status
        try:
            post = await self.microblog.status(post.id)
        except NoSuchStatus:
            raise PageError(410, "Post deleted", "This post was deleted by its author.") from None
        conversation = [post]
        if self._threads is not None:
            conversation = await self._threads.conversation(post) or [post]
        conversation = await self._with_own_replies(visitor, conversation)
        # Nothing of an account the reader blocks (docs/design/blocks.md),
        # but the post asked for, as statuses/show does.
        viewer = visitor.user.id if visitor.user is not None else None
        shown = {p.id for p in await self.microblog.timelines.visible(viewer, conversation)}
        conversation = [p for p in conversation if p.id in shown or p.id == post.id]
        ancestors, below = _around(post, conversation)
        back = status_path(item)
        views = await post_views(
            self.site, visitor, [*ancestors, post, *below], back, self._authority, focus=post.id
        )
        focus = views[len(ancestors)]
        name = post.author.name or post.author.handle
        return self.site.render(
            request, "status.html", visitor,
            view=focus,
            ancestors=views[:len(ancestors)],
            replies=views[len(ancestors) + 1:],
            retweeted_by=item.author if item.is_retweet else None,
            title=f"{name} (@{post.author.screen_name})",
            absolute_url=self._public_url + status_path(post),
            json_url=f"/1.1/statuses/show/{post.id}.json",
            reply_text=self._reply_prefill(visitor, post),
            site_name=self._authority,
        )

    async def _with_own_replies(self, visitor: Visitor, conversation: list[Post]) -> list[Post]:
        """
        ``conversation`` with the visitor's own latest replies to it: an
        assembled conversation is kept a little while (docs/design/
        threads.md), and someone who just replied expects to see it.
        """
        user = visitor.user
        if user is None or not user.is_local:
            return conversation
        recent = await self.microblog.timelines.user_timeline(
            user.id, _OWN_RECENT, None, None, include_rts=False
        )
        ids = {p.id for p in conversation}
        added = []
        for reply in reversed(recent):
            if reply.in_reply_to_status_id in ids and reply.id not in ids:
                ids.add(reply.id)
                added.append(reply)
        return conversation + added

    async def _author(self, handle: str) -> Account:
        """
        The author a status page's path names: a local handle, or
        ``@handle@authority`` of an account known here.
        """
        try:
            if handle.startswith("@"):
                name, _, authority = handle[1:].partition("@")
                if is_valid_handle(name) and authority:
                    return await self.microblog.user(f"{name}@{authority}")
            elif is_valid_handle(handle):
                account = await self.microblog.user(handle)
                if account.is_local:
                    return account
        except NoSuchUser:
            pass
        raise PageError(404, "No such user", "Nobody here has that name.")

    # Replies

    @page("GET", "/status/<post_id>/reply")
    async def reply_form(self, request: IRequest, visitor: Visitor, post_id: str) -> bytes:
        user = self.site.member(visitor, back_path(request))
        post = await self._live(post_id)
        back = self._next(request, status_path(post))
        return await self._reply_page(request, visitor, user, post, back,
                                      self._reply_prefill(visitor, post))

    @page("POST", "/status/<post_id>/reply")
    async def reply(self, request: IRequest, visitor: Visitor, post_id: str) -> bytes:
        self.site.check_csrf(request, visitor)
        post = await self._live(post_id)
        back = self._next(request, status_path(post))
        user = self.site.member(visitor, back)
        text = self.site.field(request, "status") or ""
        try:
            await self.microblog.post(user, text, source="web", in_reply_to_status_id=post.id)
        except RuleError as e:
            return await self._reply_page(request, visitor, user, post, back, text, str(e), 400)
        return self.site.redirect(request, back)

    async def _reply_page(self, request: IRequest, visitor: Visitor, user: Account, post: Post,
                          back: str, draft: str, error: str | None = None,
                          status: int = 200) -> bytes:
        views = await post_views(self.site, visitor, [post], back, self._authority)
        return self.site.render(
            request, "reply.html", visitor, status,
            view=views[0], draft=draft, error=error, back=back,
        )

    def _reply_prefill(self, visitor: Visitor, post: Post) -> str:
        if visitor.user is None or visitor.user.id == post.author.id:
            return ""
        return f"@{post.author.screen_name} "

    # Buttons

    @page("POST", "/status/<post_id>/retweet", action="retweet")
    @page("POST", "/status/<post_id>/unretweet", action="unretweet")
    @page("POST", "/status/<post_id>/favorite", action="favorite")
    @page("POST", "/status/<post_id>/unfavorite", action="unfavorite")
    async def act(self, request: IRequest, visitor: Visitor, post_id: str, action: str) -> bytes:
        """
        A button of a post, then back where the visitor was.  Doing what
        is already done (a second click, a stale page) is no error.
        """
        self.site.check_csrf(request, visitor)
        back = self._next(request)
        user = self.site.member(visitor, back)
        post = await self._live(post_id)
        calls: dict[str, Callable[[Account, int], Awaitable[Any]]] = {
            "retweet": self.microblog.retweet,
            "unretweet": self.microblog.unretweet,
            "favorite": self.microblog.favorite,
            "unfavorite": self.microblog.unfavorite,
        }
        try:
            await calls[action](user, post.id)
        except (AlreadyRetweeted, AlreadyFavorited) as e:
            if post.author.id == user.id and action == "retweet":
                raise PageError(400, "Not retweeted", "You cannot retweet your own post.") from e
        except NoSuchStatus:
            if action == "retweet":
                raise PageError(404, *_NO_POST) from None
            # Undoing what was not done: nothing to do.
        except RuleError as e:
            raise PageError(400, "Not done", str(e)) from None
        return self.site.redirect(request, back)

    # Deleting

    @page("GET", "/status/<post_id>/delete")
    async def confirm_delete(self, request: IRequest, visitor: Visitor, post_id: str) -> bytes:
        back = self._next(request)
        user = self.site.member(visitor, back_path(request))
        post = await self._own(user, post_id)
        views = await post_views(self.site, visitor, [post], back, self._authority)
        return self.site.render(request, "confirm_delete.html", visitor, view=views[0], back=back)

    @page("POST", "/status/<post_id>/delete")
    async def delete(self, request: IRequest, visitor: Visitor, post_id: str) -> bytes:
        self.site.check_csrf(request, visitor)
        back = self._next(request)
        user = self.site.member(visitor, back)
        post = await self._own(user, post_id)
        try:
            await self.microblog.delete(user, post.id)
        except NoSuchStatus:
            pass  # deleted already (a second click)
        except RuleError as e:
            raise PageError(400, "Not deleted", str(e)) from None
        if back.split("?")[0] == status_path(post):
            # Its page is gone: to the author's page.
            back = account_url(user)
        return self.site.redirect(request, back)

    async def _own(self, user: Account, post_id: str) -> Post:
        if _NUMBER.match(post_id) is None:
            raise PageError(404, *_NO_POST)
        post = await self.microblog.timelines.post(int(post_id))
        if post is None or post.kind == PROFILE or post.author.id != user.id:
            raise PageError(404, "No such post", "You have no post at this address.")
        if post.deleted:
            raise PageError(410, "Post deleted", "This post is deleted already.")
        return post

    # Hashtags

    @page("GET", "/hashtag/<tag>")
    async def hashtag(self, request: IRequest, visitor: Visitor, tag: str) -> bytes:
        """
        ``GET /hashtag/{tag}``: the posts held here that carry ``#tag`` (in
        any case), newest first, twenty a page ("load older" by max_id).
        """
        if HASHTAG.match(tag) is None:
            raise PageError(404, "No such hashtag", "That is not a hashtag.")
        viewer = visitor.user.id if visitor.user is not None else None
        posts = await self._tagged(tag, self.site.max_id(request), viewer)
        older_url = None
        if len(posts) > PAGE_SIZE:
            older_url = f"{hashtag_path(tag)}?max_id={posts[PAGE_SIZE - 1].id - 1}"
        views = await post_views(
            self.site, visitor, posts[:PAGE_SIZE], back_path(request), self._authority
        )
        return self.site.render(
            request, "hashtag.html", visitor, tag=tag, posts=views, older_url=older_url
        )

    async def _tagged(self, tag: str, max_id: int | None,
                      viewer: int | None = None) -> list[Post]:
        """
        Up to one more than a page of the posts tagged ``tag`` up to
        ``max_id``: the store's search for ``#tag`` finds candidates (not
        of accounts ``viewer`` blocks or mutes), and the entity parser says
        which carry that very tag.
        """
        wanted = tag.casefold()
        found: list[Post] = []
        for _ in range(_TAG_BATCHES):
            batch = await self.microblog.timelines.search_posts(
                "#" + tag, _TAG_BATCH, None, max_id, viewer=viewer
            )
            for post in batch:
                if post.is_retweet:
                    continue
                if any(h.text.casefold() == wanted for h in entities.hashtags(post.text)):
                    found.append(post)
            if len(found) > PAGE_SIZE or len(batch) < _TAG_BATCH:
                break
            max_id = batch[-1].id - 1
            if max_id < 1:
                break
        return found[:PAGE_SIZE + 1]

    # Helpers

    async def _live(self, post_id: str) -> Post:
        if _NUMBER.match(post_id) is None:
            raise PageError(404, *_NO_POST)
        try:
            return await self.microblog.status(int(post_id))
        except NoSuchStatus:
            raise PageError(404, *_NO_POST) from None

    def _next(self, request: IRequest, default: str = "/home") -> str:
        """
        Where to go back to: the form's ``next`` when it is a path on this
        site, else ``default``.
        """
        return local_path(self.site.field(request, "next")) or default


def _around(post: Post, conversation: list[Post]) -> tuple[list[Post], list[Post]]:
    """
    The conversation (oldest first) split around ``post``: the posts it
    replies to, up to the first (oldest first), and all the others.
    """
    by_id = {p.id: p for p in conversation}
    ancestors: list[Post] = []
    seen = {post.id}
    parent_id = post.in_reply_to_status_id
    while parent_id is not None and parent_id in by_id and parent_id not in seen:
        seen.add(parent_id)
        parent = by_id[parent_id]
        ancestors.append(parent)
        parent_id = parent.in_reply_to_status_id
    ancestors.reverse()
    below = [p for p in conversation if p.id not in seen]
    return ancestors, below

