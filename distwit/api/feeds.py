"""
Feeds for people: a person's latest posts and the API's timelines, as RSS
2.0 or Atom.

:func:`render_person_rss` and :func:`render_person_atom`: the latest
posts, newest first, with permalinks as ids.  The text shows as typed:
Atom content is ``type="text"``; the RSS description, which readers take
as HTML, is the text HTML-escaped.

``public_url`` is always this server's, as the settings hold it (no
trailing slash).
"""

from __future__ import annotations

import html
from typing import Any, Iterable

from feedgen.feed import FeedGenerator

from distwit.core.rss import datetime_of, status_url, xml_safe
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

    feed = FeedGenerator()
    feed.id(profile)
    feed.title(f"{name} (@{author.screen_name})")
    feed.author(name=name, uri=profile)
    # feedgen makes the RSS <link> of the last link given: self goes first.
    feed.link(href=f"{profile}.{'atom' if atom else 'rss'}", rel="self")
    feed.link(href=profile, rel="alternate")
    feed.description(f"The latest posts of {name} (@{author.screen_name})")
    feed.generator("distwit")
    feed.updated(updated)
    feed.lastBuildDate(updated)
    for post in latest:
        _add_entry(feed, post, status_url(public_url, author, post.seq), atom)
    return feed


def _add_entry(feed: Any, post: Post, url: str, atom: bool, author_uri: str = "") -> None:
    """
    One post as a feed entry at ``url``; with ``author_uri``, its author
    is named (a timeline of several authors).
    """
    author = post.author
    text = xml_safe(post.display_text)
    created = datetime_of(post.created_at)
    entry = feed.add_entry(order="append")
    entry.id(url)
    entry.guid(url, permalink=True)
    entry.link(href=url, rel="alternate")
    entry.title(f"{author.screen_name}: {text}")
    if author_uri:
        entry.author(name=xml_safe(author.name or author.handle), uri=author_uri)
    entry.published(created)
    entry.updated(created)
    if atom:
        entry.content(text, type="text")
    else:
        # Readers take an RSS description as HTML: escaped, the text
        # shows as typed ("<b>" stays "<b>", not bold).
        entry.description(html.escape(text, quote=False))


def render_timeline_feed(
    title: str, self_url: str, public_url: str, posts: list[Post], atom: bool
) -> bytes:
    """
    A timeline of the API (``statuses/home_timeline.rss`` and the like) as
    RSS 2.0 or Atom, in the order given.  Posts of remote authors link to
    their home servers' pages.
    """
    feed = FeedGenerator()
    feed.id(self_url)
    feed.title(xml_safe(title))
    feed.author(name="distwit", uri=public_url)
    feed.link(href=self_url, rel="self")
    feed.link(href=public_url + "/", rel="alternate")
    feed.description(title)
    feed.generator("distwit")
    newest = max((post.created_at for post in posts), default=0)
    feed.updated(datetime_of(newest))
    feed.lastBuildDate(datetime_of(newest))
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
