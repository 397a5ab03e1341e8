"""
What a twitter server answers to other servers:

- ``GET /s2s/feed/HANDLE.rss?from=N&to=M``: the range feed other servers
  copy messages with (at most 200 a response; ``dw:more`` says when cut);
- ``POST /s2s/follow``: signed follow and unfollow notices;
- ``GET /s2s/last/HANDLE.json``: a user's last number, with an ETag, for
  servers of other federations (docs/design/reach.md);
- ``POST /s2s/notice``: signed mention and reply notices
  (:mod:`distwit.federation.notices`);
- ``GET /s2s/replies/HANDLE/SEQ.json``: the replies held to a user's
  message, signed (docs/design/threads.md);
- ``GET /.well-known/webfinger?resource=acct:HANDLE@AUTHORITY``.

The person feeds people read (``/HANDLE.rss``, ``/HANDLE.atom``) are the
API's: :mod:`distwit.api.person_feeds`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Awaitable, Callable

from klein import Klein
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from distwit.federation import range_feed as feeds
from distwit.http import conditional, json_body
from distwit.core.images import image_url
from distwit.model import PROFILE, RETWEET, Account, Post
from distwit.s2s import paths
from distwit.s2s.interfaces import ForbiddenAuthority, IRequestVerifier, SignatureError
from distwit.core.accts import BadAcct, split_acct
from distwit.core.microblog import Microblog, RuleError
from distwit.federation.direct_messages import DirectMessageRefused
from distwit.federation.follows import BadNotice, Federation
from distwit.federation.notices import (
    AuthorUnreachable,
    BadPostNotice,
    NoSuchNoticedPost,
    NoticeReceiver,
    NotAboutUs,
)
from distwit.federation.threads import Threads
from distwit.store.interfaces import FollowBlocked
from distwit.urls import authority_of

#: The largest follow notice accepted.
MAX_NOTICE_BYTES = 16 * 1024


class _Refused(Exception):
    """
    A request refused before it is read further: the status and message
    to answer with.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(request: IRequest, code: int, message: str) -> bytes:
    return json_body(request, {"error": message}, code)


def profile_of(author: Account, public_url: str) -> "feeds.Profile":
    """
    A local author's profile as range feeds carry it.
    """
    return feeds.Profile(
        name=author.name, description=author.description,
        location=author.location, url=author.url,
        image=image_url(author, public_url) if author.profile_image else "",
    )


#: Cache-Control of a range within the author's numbers (a front's cache
#: may answer it for a second: the crowd fetching a fresh post), and of one
#: reaching past them (a new post would change it).
RANGE_CACHE = b"public, max-age=1"
RANGE_OPEN_CACHE = b"public, no-cache"


def author_range_feed(
    author: Account,
    posts: list[Post],
    first: int,
    last: int,
    more: bool,
    authority: str,
    public_url: str,
) -> bytes:
    """
    The range feed of local ``author``'s messages ``first`` to ``last``
    (``posts``, as held), with the author's counts and latest profile.
    """
    return feeds.render_range_feed(
        author,
        authority,
        public_url,
        [feed_item(post, authority, public_url) for post in posts],
        first,
        last,
        more,
        feeds.Counts(author.statuses_count, author.followers_count, author.friends_count),
        (author.profile_seq, profile_of(author, public_url)) if author.profile_seq else None,
    )


def feed_item(post: Post, own_authority: str, public_url: str = "") -> "feeds.FeedItem":
    """
    A stored message as a range feed item.  A profile item carries the
    whole profile only if it is the author's latest (``public_url``: this
    server's, for the image's URL); an older one travels as its number
    alone, like a tombstone.
    """
    if post.deleted:
        # A tombstone travels as its number alone (and what it deletes).
        return feeds.FeedItem(
            seq=post.seq, text="", created_at=post.created_at, deleted=True,
            source="", deletes=post.deletes_seq,
        )
    if post.kind == PROFILE:
        author = post.author
        profile = None
        if post.seq == author.profile_seq:
            profile = profile_of(author, public_url)
        return feeds.FeedItem(
            seq=post.seq, text="", created_at=post.created_at, deleted=False,
            source="", kind=PROFILE, profile=profile,
        )
    if post.kind == RETWEET:
        retweet_of = None
        if post.retweet_acct is not None and post.retweet_seq is not None:
            name = post.retweet_acct
            retweet_of = (name if "@" in name else f"{name}@{own_authority}", post.retweet_seq)
        return feeds.FeedItem(
            seq=post.seq, text="", created_at=post.created_at, deleted=False,
            source=post.source, kind=RETWEET, retweet_of=retweet_of,
        )
    in_reply_to = None
    if post.in_reply_to_screen_name is not None and post.in_reply_to_seq is not None:
        name = post.in_reply_to_screen_name
        acct = name if "@" in name else f"{name}@{own_authority}"
        in_reply_to = (acct.lower(), post.in_reply_to_seq)
    return feeds.FeedItem(
        seq=post.seq,
        text=post.text,
        created_at=post.created_at,
        deleted=False,
        in_reply_to=in_reply_to,
        source=post.source,
        deletes=post.deletes_seq,
    )


class FederationAPI:
    """
    The ``/s2s/`` resource: range feeds, follow notices, mention and
    reply notices.
    """

    app = Klein()
    log = Logger()

    def __init__(
        self,
        microblog: Microblog,
        federation: Federation,
        verifier: IRequestVerifier,
        public_url: str,
        *,
        notices: NoticeReceiver | None = None,
        threads: Threads | None = None,
    ) -> None:
        self.microblog = microblog
        self.federation = federation
        self.notices = notices
        self.verifier = verifier
        self.public_url = public_url
        self.authority = federation.authority
        self.threads = threads

    def resource(self) -> IResource:
        return self.app.resource()  # type: ignore[no-any-return]

    @app.route(paths.RANGE_FEED + "<name>", methods=["GET", "HEAD"])
    async def range_feed(self, request: IRequest, name: str) -> bytes:
        handle, dot, extension = name.rpartition(".")
        if not dot or extension != "rss":
            return _error(request, 404, "range feeds are HANDLE.rss")
        try:
            author = await self.microblog.user(handle)
        except RuleError:
            return _error(request, 404, f"no user {handle!r} here")
        if (
            self.microblog.is_suspended(author)
            and author.id not in self.microblog.moderation.deleted
        ):
            # A deleted user's range stays readable: its tombstones tell
            # the followers' servers to delete the posts.
            return _error(request, 403, f"{handle} is suspended")
        try:
            first = int(request.args.get(b"from", [b"1"])[0])
            last = int(request.args.get(b"to", [str(author.last_seq).encode()])[0])
        except ValueError:
            return _error(request, 400, "from and to must be numbers")
        if first < 1 or last < first:
            return _error(request, 400, "the range must have 1 <= from <= to")
        open_ended = b"to" not in request.args or last > author.last_seq
        last = min(last, author.last_seq)
        more = last - first + 1 > feeds.MAX_ITEMS_PER_FEED
        if more:
            last = first + feeds.MAX_ITEMS_PER_FEED - 1
        posts = []
        if last >= first:
            posts = await self.microblog.messages(author, first, last)
        body = author_range_feed(
            author, posts, first, max(last, first - 1), more, self.authority, self.public_url
        )
        request.setHeader(b"content-type", b"application/rss+xml; charset=utf-8")
        # Every range may still change (a delete makes an item a tombstone;
        # the author's counts and profile ride along), so caches may keep
        # it a moment only; one reaching past the author's last number
        # grows with the next post: revalidated each time.
        # docs/design/fan-out.md
        newest = max((post.created_at for post in posts), default=author.created_at)
        return conditional(
            request, body, newest,
            RANGE_OPEN_CACHE if open_ended else RANGE_CACHE,
        )

    @app.route(paths.LAST + "<name>", methods=["GET", "HEAD"])
    async def last_number(self, request: IRequest, name: str) -> bytes:
        """
        ``{"acct": "carol@s3.example", "last": 26, "registry": URL | null}``:
        the user's last number and the registry of the ping servers this
        server reports to.  Public (the range feeds say as much); an ETag
        that changes with the number, so a poll that finds nothing new is
        a 304 without a body.
        """
        handle, dot, extension = name.rpartition(".")
        if not dot or extension != "json":
            return _error(request, 404, "last numbers are HANDLE.json")
        author = await self.microblog.local_user(handle)
        if author is None:
            return _error(request, 404, f"no user {handle!r} here")
        registry = self.federation.registry or None
        tag = hashlib.sha256(f"{author.last_seq}\0{registry}".encode("utf-8")).hexdigest()[:16]
        etag = f'"{author.last_seq}-{tag}"'.encode("ascii")
        request.setHeader(b"etag", etag)
        request.setHeader(b"cache-control", b"no-cache")
        given = request.getHeader(b"if-none-match")
        if given is not None and etag in [t.strip() for t in given.split(b",")]:
            request.setResponseCode(304)
            return b""
        acct = f"{author.handle.lower()}@{self.authority}"
        return json_body(request, {"acct": acct, "last": author.last_seq, "registry": registry})

    @app.route(paths.REPLIES + "<name>/<number>", methods=["GET", "HEAD"])
    async def replies_index(self, request: IRequest, name: str, number: str) -> bytes:
        """
        ``{"acct": "alice@s1.example", "seq": 5, "replies": [["bob@s2.example",
        3], ...]}``: the live replies held here to a local user's message,
        newest first (docs/design/threads.md).  Signed requests only.
        """
        try:
            signer = await self.verifier.verify(request, b"")
        except SignatureError as e:
            return _error(request, 401, str(e))
        if self.microblog.is_blocked_server(authority_of(signer)):
            return _error(request, 403, "this server does not take requests from yours")
        seq_text, dot, extension = number.rpartition(".")
        if (
            not dot or extension != "json" or not seq_text.isascii()
            or not seq_text.isdigit() or len(seq_text) > 18
        ):
            return _error(request, 404, "replies indexes are HANDLE/SEQ.json")
        if self.threads is None:
            return _error(request, 404, "this server serves no replies index")
        index = await self.threads.served_replies(name, int(seq_text))
        if index is None:
            return _error(request, 404, f"{name} has no message {seq_text} here")
        self.log.debug("replies of {name} #{seq} for {signer}",
                       name=name, seq=seq_text, signer=signer)
        return json_body(request, index)

    async def _signed_notice(
        self,
        request: IRequest,
        what: str,
        allow: "Callable[[str], Awaitable[bool]] | None" = None,
    ) -> tuple[str, Any]:
        """
        The signer and the JSON body of a notice: at most
        :data:`MAX_NOTICE_BYTES`, signed, from a signer ``allow`` lets in
        (a rate limit).

        :raise _Refused: why not, as the answer to give.
        """
        body = request.content.read(MAX_NOTICE_BYTES + 1)
        if len(body) > MAX_NOTICE_BYTES:
            raise _Refused(413, f"a notice is at most {MAX_NOTICE_BYTES} bytes")
        try:
            signer = await self.verifier.verify(request, body)
        except SignatureError as e:
            self.log.warn("refused {what}: {error}", what=what, error=str(e))
            raise _Refused(401, str(e)) from None
        if await self.microblog.is_blocked_server_now(authority_of(signer)):
            raise _Refused(403, "this server does not take requests from yours")
        if allow is not None and not await allow(signer):
            raise _Refused(429, "too many notices; try again later")
        try:
            return signer, json.loads(body)
        except ValueError:
            raise _Refused(400, "a notice is a JSON object") from None

    @app.route(paths.FOLLOW, methods=["POST"])
    async def follow_notice(self, request: IRequest) -> bytes:
        try:
            signer, notice = await self._signed_notice(request, "follow notice")
        except _Refused as refused:
            return _error(request, refused.code, refused.message)
        try:
            answer = await self.federation.receive_notice(signer, notice)
        except ForbiddenAuthority as e:
            self.log.warn(
                "refused follow notice from {signer}: {error}", signer=signer, error=str(e)
            )
            return _error(request, 403, str(e))
        except FollowBlocked:
            # The followee blocks the follower: refused for good, nothing
            # recorded (docs/design/blocks.md).
            return _error(request, 403, "You have been blocked from following this account"
                          " at the request of the user.")
        except (BadNotice, RuleError) as e:
            return _error(request, 400, str(e))
        return json_body(request, answer)

    @app.route(paths.NOTICE, methods=["POST"])
    async def post_notice(self, request: IRequest) -> bytes:
        if self.notices is None:
            return _error(request, 404, "this server takes no mention or reply notices")
        try:
            signer, notice = await self._signed_notice(request, "notice", self.notices.allow)
        except _Refused as refused:
            return _error(request, refused.code, refused.message)
        try:
            answer = await self.notices.receive(signer, notice)
        except ForbiddenAuthority as e:
            self.log.warn("refused notice from {signer}: {error}", signer=signer, error=str(e))
            return _error(request, 403, str(e))
        except NoSuchNoticedPost as e:
            return _error(request, 404, str(e))
        except NotAboutUs as e:
            return _error(request, 422, str(e))
        except AuthorUnreachable as e:
            return _error(request, 502, str(e))
        except DirectMessageRefused as e:
            return _error(request, 403, str(e))
        except (BadPostNotice, RuleError) as e:
            return _error(request, 400, str(e))
        return json_body(request, answer)

    @app.route(paths.STATUS_COUNTS + "<handle>/<name>", methods=["GET"])
    async def status_counts(self, request: IRequest, handle: str, name: str) -> bytes:
        if self.notices is None:
            return _error(request, 404, "this server serves no counts")
        try:
            signer = await self.verifier.verify(request, b"")
        except SignatureError as e:
            return _error(request, 401, str(e))
        if self.microblog.is_blocked_server(authority_of(signer)):
            return _error(request, 403, "this server does not take requests from yours")
        number, dot, extension = name.rpartition(".")
        if not dot or extension != "json" or not number.isdigit() or len(number) > 18:
            return _error(request, 404, "counts are at HANDLE/NUMBER.json")
        if not await self.notices.allow(signer):
            return _error(request, 429, "too many requests; try again later")
        counts = await self.notices.counts(handle, int(number))
        if counts is None:
            return _error(request, 404, f"{handle} has no message {number} here")
        return json_body(request, counts)


class WebFinger(Resource):
    """
    ``/.well-known/webfinger`` for this server's users (a leaf, so that no
    trailing-slash redirect ever drops the query).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, microblog: Microblog, public_url: str, authority: str) -> None:
        super().__init__()
        self.microblog = microblog
        self.public_url = public_url
        self.authority = authority

    def resource(self) -> IResource:
        return self

    def render_GET(self, request: IRequest) -> int:
        d = ensureDeferred(self._webfinger(request))

        def failed(failure: Any) -> bytes:
            self.log.failure("webfinger failed", failure)
            return _error(request, 500, "internal error")

        def write(body: bytes) -> None:
            if request.method != b"HEAD":
                request.write(body)
            request.finish()

        d.addErrback(failed).addCallback(write)
        return NOT_DONE_YET

    render_HEAD = render_GET

    async def _webfinger(self, request: IRequest) -> bytes:
        resource = request.args.get(b"resource", [b""])[0].decode("utf-8", "replace")
        if not resource.startswith("acct:"):
            return _error(request, 400, "resource must be acct:handle@authority")
        try:
            handle, authority = split_acct(resource[len("acct:"):])
        except BadAcct as e:
            return _error(request, 400, str(e))
        if authority != self.authority:
            return _error(request, 404, f"{authority} is not this server ({self.authority})")
        account = await self.microblog.local_user(handle)
        if account is None:
            return _error(request, 404, f"no user {handle!r} here")
        profile = f"{self.public_url}/{account.handle}"
        links = [
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": profile},
            {"rel": "alternate", "type": "application/rss+xml", "href": profile + ".rss"},
            # OpenID Connect Discovery 1.0, section 2: who signs this user in.
            {"rel": OIDC_ISSUER, "href": self.public_url},
        ]
        # RFC 7033 section 4.3: with one or more "rel", only those links.
        wanted = {v.decode("utf-8", "replace") for v in request.args.get(b"rel", [])}
        body = {
            "subject": f"acct:{account.handle.lower()}@{self.authority}",
            "aliases": [profile],
            "links": [link for link in links if not wanted or link["rel"] in wanted],
        }
        request.setHeader(b"access-control-allow-origin", b"*")
        data = json_body(request, body)
        request.setHeader(b"content-type", b"application/jrd+json; charset=utf-8")
        return data


#: WebFinger's link relation for a user's OpenID Connect issuer.
OIDC_ISSUER = "http://openid.net/specs/connect/1.0/issuer"
