"""
Posts as the pages show them: the text with its links, @mentions and
#hashtags made links (found by :mod:`distwit.entities`, the parser the API
uses, so the page and the API agree), the time relative to now with the
exact time beside it, the addresses of posts and people, and the buttons
the visitor may use on each post (:class:`PostView`, what the ``post_list``
and ``post_item`` macros of ``macros.html`` show).

Every piece of a post's text is escaped here, before it is joined with the
markup of its links: the result is :class:`markupsafe.Markup`, and nothing
else in a post is ever marked safe.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from distwit import entities
from distwit.model import Account, Post
from distwit.web.site import PAGE_SIZE, Site, Visitor, local_path

#: A hashtag as the hashtag page takes it (what :mod:`distwit.entities`
#: finds after the ``#``).
HASHTAG = re.compile(r"\A\w*[^\W\d]\w*\Z")


def account_url(account: Account) -> str:
    """
    An account's page here: ``/handle`` for a local user,
    ``/@handle@authority`` for someone elsewhere.
    """
    if account.is_local:
        return "/" + account.handle
    return f"/@{account.handle}@{account.authority}"


def status_path(post: Post) -> str:
    """
    A post's page here: ``/handle/status/N`` (the address the feeds give,
    :func:`distwit.core.rss.status_url`), ``/@handle@authority/status/N``
    for a post held from elsewhere, N being the author's number.
    """
    return f"{account_url(post.author)}/status/{post.seq}"


def hashtag_path(tag: str) -> str:
    return "/hashtag/" + quote(tag, safe="")


def _mention_url(mention: entities.Mention, post: Post, own_authority: str) -> str:
    for account, start, end in post.mentions:
        if (start, end) == (mention.start, mention.end):
            return account_url(account)
    authority = mention.authority
    if authority is None:
        # A plain @handle is someone on the author's server.
        authority = post.author.authority
    if not authority or authority.lower() == own_authority.lower():
        return "/" + mention.handle
    return f"/@{mention.handle}@{authority.lower()}"


def render_text(post: Post, own_authority: str, text: str | None = None) -> Markup:
    """
    ``text`` (by default the post's) as HTML: escaped, with its links,
    @mentions and #hashtags made links.  Mentions link to the account's
    page here: ``@bob`` in a local post is ``/bob``, in a post from
    elsewhere it is someone on the author's server.
    """
    if text is None:
        text = post.text
    found: list[tuple[int, int, str, str]] = []
    for link in entities.links(text):
        found.append((link.start, link.end, link.url, "url"))
    for mention in entities.mentions(text):
        found.append(
            (mention.start, mention.end, _mention_url(mention, post, own_authority), "mention")
        )
    for tag in entities.hashtags(text):
        found.append((tag.start, tag.end, hashtag_path(tag.text), "hashtag"))
    found.sort()
    parts: list[str] = []
    at = 0
    for start, end, href, kind in found:
        if start < at:
            continue  # inside a link already made (a "#" or "@" in a URL)
        parts.append(escape(text[at:start]))
        attributes = ' rel="nofollow noopener"' if kind == "url" else ""
        parts.append(Markup('<a class="{}" href="{}"{}>{}</a>').format(
            kind, href, Markup(attributes), text[start:end]
        ))
        at = end
    parts.append(escape(text[at:]))
    return Markup("").join(parts)


def exact_time(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms // 1000))


def relative_time(ms: int, now_ms: int) -> str:
    """
    How long ago, as people say it: "now", "3 min", "2 h", then the day
    ("5 Mar"), with the year when it is not this year's.
    """
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    then = time.gmtime(ms // 1000)
    day = f"{then.tm_mday} {time.strftime('%b', then)}"
    if then.tm_year != time.gmtime(now_ms // 1000).tm_year:
        day += f" {then.tm_year}"
    return day


@dataclass(frozen=True)
class PostView:
    """
    One post as a page shows it.

    :ivar post: what is shown: a retweet's original when it is held.
    :ivar item: the timeline's item (the retweet itself, for a retweet).
    :ivar retweeted_by: who retweeted it, for a retweet.
    :ivar csrf: the visitor's form token, for the buttons.
    :ivar back: where the buttons come back to (this page).
    """

    post: Post
    item: Post
    html: Markup
    author_url: str
    url: str
    relative: str
    exact: str
    iso: str
    retweeted_by: Account | None
    signed_in: bool
    #: Which buttons the visitor gets: reply and favorite (a post, not a
    #: retweet whose original is not held), retweet (someone else's),
    #: delete (their own post, or their retweet whose original is gone).
    can_reply: bool
    can_retweet: bool
    can_delete: bool
    favorited: bool
    retweeted: bool
    csrf: str
    back: str
    focus: bool = False

    @property
    def retweeted_by_url(self) -> str | None:
        return None if self.retweeted_by is None else account_url(self.retweeted_by)

    @property
    def reply_to_url(self) -> str | None:
        """
        The page of the post this one replies to (by its author and
        number, which a reply always keeps).
        """
        name = self.post.in_reply_to_screen_name
        seq = self.post.in_reply_to_seq
        if not name or seq is None:
            return None
        return f"/@{name}/status/{seq}" if "@" in name else f"/{name}/status/{seq}"


def back_path(request: Any) -> str:
    """
    Where the visitor is: this page's path and query (to come back to
    after a button), or ``/`` when it is not a plain local path.
    """
    uri = request.uri.decode("ascii", "replace") if request.uri else "/"
    return local_path(uri) or "/"


async def post_views(site: Site, visitor: Visitor, posts: list[Post], back: str,
                     own_authority: str, focus: int | None = None) -> list[PostView]:
    """
    ``posts`` as :class:`PostView`, with what the visitor did to each
    (favorited, retweeted) for the buttons.  ``focus`` is the id of the
    post a status page is about.
    """
    user = visitor.user if visitor.user is not None and visitor.user.is_local else None
    shown = [_shown(post) for post in posts]
    favorited: set[int] = set()
    retweeted: set[int] = set()
    if user is not None and posts:
        favorited, retweeted = await site.microblog.timelines.marked_among(
            user.id, sorted({post.id for post in shown})
        )
    now = site.now_ms()
    views = []
    for item, post in zip(posts, shown):
        if post is item and item.is_retweet:
            # The original is not held here: "RT @acct" alone.
            html = render_text(item, own_authority, item.display_text)
        else:
            html = render_text(post, own_authority)
        views.append(PostView(
            post=post,
            item=item,
            html=html,
            author_url=account_url(post.author),
            url=status_path(post),
            relative=relative_time(post.created_at, now),
            exact=exact_time(post.created_at),
            iso=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(post.created_at // 1000)),
            retweeted_by=item.author if item.is_retweet and post is not item else None,
            signed_in=user is not None,
            can_reply=user is not None and not post.is_retweet,
            can_retweet=(
                user is not None and not post.is_retweet and post.author.id != user.id
            ),
            can_delete=(
                user is not None and item.author.id == user.id
                and (not item.is_retweet or post is item)
            ),
            favorited=post.id in favorited,
            retweeted=post.id in retweeted,
            csrf=visitor.csrf or "",
            back=back,
            focus=focus is not None and post.id == focus,
        ))
    return views


def _shown(post: Post) -> Post:
    if post.is_retweet and post.retweeted_status is not None:
        return post.retweeted_status
    return post


async def timeline(site: Site, request: Any, visitor: Visitor, path: str, posts: list[Post],
                   own_authority: str) -> dict[str, Any]:
    """
    One page of a timeline for the ``post_list`` macro: ``posts`` (fetched
    one too many, to know whether there are older ones) as
    :class:`PostView`, and the link to the next page ("load older", by
    ``max_id``) under ``path``.
    """
    older_url = None
    if len(posts) > PAGE_SIZE:
        older_url = f"{path}?max_id={posts[PAGE_SIZE - 1].id - 1}"
    views = await post_views(site, visitor, posts[:PAGE_SIZE], back_path(request), own_authority)
    return {"posts": views, "older_url": older_url}
