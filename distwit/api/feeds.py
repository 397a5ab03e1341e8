"""
Feeds for people: a person's latest posts and the API's timelines, as RSS
2.0 or Atom.

:func:`render_person_rss` and :func:`render_person_atom`: the latest
posts, newest first, with permalinks as ids.  The text shows as typed:
Atom content and titles are ``type="text"``; the RSS description, which
readers take as HTML, is the text HTML-escaped; an RSS title, which
readers guess about (feedparser takes one with a closing tag or an entity
as HTML), is the text when nothing in it could be taken for markup, else
the text HTML-escaped, so that a reader guessing HTML shows it as typed
and never renders a ``<b>``.  Every entry names its author: Atom's
``<author>``, RSS's ``<dc:creator>`` (RSS 2.0's ``<author>`` must be an
e-mail address, which we do not publish; feed readers, feedparser
included, read ``dc:creator`` as the author).

:func:`conditional`: every feed has an ``ETag`` (a digest of the
document) and a ``Last-Modified`` (its newest post), and answers 304 to a
reader that has it already (docs/design/clients.md).

``public_url`` is always this server's, as the settings hold it (no
trailing slash).
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable

from feedgen.feed import FeedGenerator

from distwit.core.rss import datetime_of, status_url, xml_safe
from distwit.http import conditional as conditional  # the feeds' 304s, shared
from distwit.model import Account, Post


def _latest(posts: Iterable[Post]) -> list[Post]:
    return sorted(
        (post for post in posts if not post.deleted),
        key=lambda post: (post.created_at, post.seq),
        reverse=True,
    )


def _person_feed(author: Account, public_url: str, posts: list[Post], atom: bool) -> Any:
    profile = f"{public_url}/{author.handle}"
    # A name stored before names were cleaned may hold what XML cannot.
    name = xml_safe(author.name or author.handle)
    latest = _latest(posts)
    updated = datetime_of(latest[0].created_at if latest else author.created_at)

    feed = _new_feed(atom)
    feed.id(profile)
    title = f"{name} (@{author.screen_name})"
    feed.title(title if atom else rss_title(title))
    feed.author(name=name, uri=profile)
    # feedgen makes the RSS <link> of the last link given: self goes first.
    feed.link(href=f"{profile}.{'atom' if atom else 'rss'}", rel="self")
    feed.link(href=profile, rel="alternate")
    feed.description(f"The latest posts of {name} (@{author.screen_name})")
    feed.generator("distwit")
    feed.updated(updated)
    feed.lastBuildDate(updated)
    for post in latest:
        _add_entry(feed, post, status_url(public_url, author, post.seq), atom, profile)
    return feed


#: What a feed reader could take for HTML in an RSS title: a tag's start
#: (``<b``, ``</``, ``<!``, ``<?``) or an entity (``&amp;``, ``&#38;``).
_MARKUP_RE = re.compile(r"<[A-Za-z/!?]|&#?[A-Za-z0-9]+;")


def rss_title(text: str) -> str:
    """
    ``text`` as an RSS title shown as typed: itself if no reader could
    take it for markup, else HTML-escaped (a reader then guesses HTML and
    shows the text, never bold).
    """
    return html.escape(text, quote=False) if _MARKUP_RE.search(text) else text


def _new_feed(atom: bool) -> Any:
    feed = FeedGenerator()
    if not atom:
        feed.load_extension("dc", atom=False, rss=True)
    return feed


def _add_entry(feed: Any, post: Post, url: str, atom: bool, author_uri: str) -> None:
    """
    One post as a feed entry at ``url``, its author named, with
    ``author_uri`` their profile.
    """
    author = post.author
    text = xml_safe(post.display_text)
    created = datetime_of(post.created_at)
    entry = feed.add_entry(order="append")
    entry.id(url)
    entry.guid(url, permalink=True)
    entry.link(href=url, rel="alternate")
    title = f"{author.screen_name}: {text}"
    name = xml_safe(author.name or author.handle)
    if atom:
        entry.title(title)
        entry.author(name=name, uri=author_uri)
    else:
        entry.title(rss_title(title))
        entry.dc.dc_creator(f"{name} (@{author.screen_name})")
    entry.published(created)
    entry.updated(created)
    if atom:
        entry.content(text, type="text")
    else:
        # Readers take an RSS description as HTML: escaped, the text
        # shows as typed ("<b>" stays "<b>", not bold).
        entry.description(html.escape(text, quote=False))


#: The titles of the timeline feeds, by endpoint: ``{viewer}`` is the
#: signed-in user's screen name, ``{subject}`` the author's of a user
#: timeline, ``{host}`` this server's.
_TIMELINE_TITLES = {
    "statuses/home_timeline": "{viewer}'s home timeline",
    "statuses/mentions_timeline": "Mentions of {viewer}",
    "statuses/user_timeline": "{subject}'s posts",
    "statuses/public_timeline": "Public timeline of {host}",
    "statuses/retweets_of_me": "{viewer}'s posts retweeted",
}


def timeline_title(endpoint: str, host: str, viewer: Account | None,
                   subject: Account | None) -> str:
    """
    The title of the feed of timeline ``endpoint`` ("alice's home
    timeline"); a timeline without a title of its own is named by its
    endpoint ("statuses/lookup on example.org").
    """
    template = _TIMELINE_TITLES.get(endpoint)
    if (
        template is None
        or ("{viewer}" in template and viewer is None)
        or ("{subject}" in template and subject is None)
    ):
        return f"{endpoint.replace('_', ' ')} on {host}"
    return template.format(
        viewer=viewer.screen_name if viewer is not None else "",
        subject=subject.screen_name if subject is not None else "",
        host=host,
    )


def render_timeline_feed(
    title: str, self_url: str, public_url: str, posts: list[Post], atom: bool
) -> bytes:
    """
    A timeline of the API (``statuses/home_timeline.rss`` and the like) as
    RSS 2.0 or Atom, in the order given.  Posts of remote authors link to
    their home servers' pages.
    """
    feed = _new_feed(atom)
    feed.id(self_url)
    feed.title(xml_safe(title) if atom else rss_title(xml_safe(title)))
    feed.author(name="distwit", uri=public_url)
    feed.link(href=self_url, rel="self")
    feed.link(href=public_url + "/", rel="alternate")
    feed.description(title)
    feed.generator("distwit")
    latest = newest(posts)
    feed.updated(datetime_of(latest))
    feed.lastBuildDate(datetime_of(latest))
    for post in posts:
        if post.deleted:
            continue
        author = post.author
        home = author.home_url.rstrip("/") if author.home_url else public_url
        _add_entry(feed, post, status_url(home, author, post.seq), atom,
                   author_uri=f"{home}/{author.handle}")
    document: bytes = feed.atom_str(pretty=True) if atom else feed.rss_str(pretty=True)
    return document


def render_person_rss(author: Account, public_url: str, posts: list[Post]) -> bytes:
    """
    RSS 2.0 of ``author``'s latest posts, newest first, for feed readers.
    Deleted posts are left out.
    """
    document: bytes = _person_feed(author, public_url, posts, atom=False).rss_str(pretty=True)
    return document


def render_person_atom(author: Account, public_url: str, posts: list[Post]) -> bytes:
    """
    Atom of ``author``'s latest posts, newest first, for feed readers.
    Deleted posts are left out.
    """
    document: bytes = _person_feed(author, public_url, posts, atom=True).atom_str(pretty=True)
    return document


def newest(posts: Iterable[Post], default: int = 0) -> int:
    """
    The time of the newest of ``posts`` (milliseconds), ``default`` when
    there are none: a feed's ``Last-Modified``.
    """
    return max((post.created_at for post in posts), default=default)
