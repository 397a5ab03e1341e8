"""
``GET /HANDLE.rss`` and ``GET /HANDLE.atom``: a person's latest posts, for
any feed reader.

Each has an ``ETag`` and a ``Last-Modified`` and answers 304 to a reader
that has it already (:func:`distwit.api.feeds.conditional`).

These are feeds people read, so they belong to the API face; the range
feeds other servers copy posts with are the federation's
(:mod:`distwit.federation.resource`).  The documents are rendered by
:mod:`distwit.api.feeds`.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from distwit.api.feeds import conditional, newest, render_person_atom, render_person_rss
from distwit.core.microblog import Microblog, RuleError

#: How many of the latest posts a person feed carries.
PERSON_FEED_LENGTH = 20


#: A person feed is the same for every reader and changes with each post:
#: a front's cache may answer it for a few seconds (docs/design/fan-out.md).
PERSON_FEED_CACHE = b"public, max-age=5"


class PersonFeeds:
    """
    ``/HANDLE.rss`` and ``/HANDLE.atom``: the latest
    :data:`PERSON_FEED_LENGTH` posts of a local user.

    :param public_url: this server's public URL (normalised by
        :mod:`distwit.config`: no trailing slash).
    """

    app = Klein()

    def __init__(self, microblog: Microblog, public_url: str) -> None:
        self.microblog = microblog
        self.public_url = public_url

    def resource(self) -> Any:
        return self.app.resource()

    @app.route("/<name>", methods=["GET", "HEAD"])
    async def feed(self, request: IRequest, name: str) -> bytes:
        handle, _, extension = name.rpartition(".")
        try:
            author = await self.microblog.user(handle)
        except RuleError:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return f"No user {handle!r} here.\n".encode()
        posts = await self.microblog.timelines.user_timeline(
            author.id, PERSON_FEED_LENGTH, None, None
        )
        if extension == "atom":
            request.setHeader(b"content-type", b"application/atom+xml; charset=utf-8")
            document = render_person_atom(author, self.public_url, posts)
        else:
            request.setHeader(b"content-type", b"application/rss+xml; charset=utf-8")
            document = render_person_rss(author, self.public_url, posts)
        # A reader asking again gets 304 until something changes.
        return conditional(request, document, newest(posts, default=author.created_at),
                           PERSON_FEED_CACHE)
