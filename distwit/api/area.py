"""
What the endpoints of every area share: the microblog, and the reads and
shapes of statuses and users they all answer with.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Hashable

from distwit.api import errors
from distwit.api.errors import TwitterError
from distwit.api.params import MAX_LOOKUP, Params
from distwit.api.render import Shape, encode_json, join_status, status_json, status_parts, user_json
from distwit.core.cache import RenderCache
from distwit.core.accts import HomeUnreachable
from distwit.core.microblog import Microblog, NoSuchUser, RuleError
from distwit.model import Account, Post


#: Timeline pages kept rendered (about 20 kB each for 20 statuses: 20 MB).
PAGE_ENTRIES = 1_000


class StatusList(list[Any]):
    """
    A timeline's statuses as JSON objects, with the posts they came from
    (for the feeds).

    :ivar subject: whose timeline it is, where that is not the viewer's
        (a user timeline): the feed's title names them.
    """

    def __init__(self, posts: list[Post], statuses: list[dict[str, Any]]) -> None:
        super().__init__(statuses)
        self.posts = posts
        self.subject: Account | None = None


class Timeline:
    """
    A timeline's posts and how the reader sees them, not yet rendered: as
    JSON it is put together from each status's bytes, kept in ``cache``
    for every reader (:func:`~distwit.api.render.status_parts`); for the
    other formats it becomes a :class:`StatusList`.

    :ivar subject: as :attr:`StatusList.subject`.
    """

    def __init__(self, posts: list[Post], shape: Shape,
                 cache: "RenderCache[tuple[int, bool, bool, str]]",
                 pages: "RenderCache[Hashable] | None" = None) -> None:
        self.posts = posts
        self.shape = shape
        self.cache = cache
        #: Whole pages as JSON, each kept with its posts (the same page read
        #: again is the same post objects: compared by identity).
        self.pages = pages
        self.subject: Account | None = None

    def as_json(self) -> bytes:
        pages, posts, shape = self.pages, self.posts, self.shape
        if pages is None or not posts:
            return self._as_json()
        key = (shape, posts[0].id, posts[-1].id, len(posts))
        source = tuple(posts)
        page: bytes | None = pages.get(key, source)
        if page is None:
            page = self._as_json()
            pages.put(key, source, page)
        return page

    def _as_json(self) -> bytes:
        shape, cache = self.shape, self.cache
        view = (shape.trim_user, shape.extended, shape.public_url)
        encoded = []
        for post in self.posts:
            key = (post.id, *view)
            parts = cache.get(key, post)
            if parts is None:
                parts = status_parts(post, shape)
                if parts is None:
                    encoded.append(encode_json(status_json(post, shape=shape)))
                    continue
                cache.put(key, post, parts)
            encoded.append(join_status(post, parts, shape))
        return b"[" + b",".join(encoded) + b"]"

    def as_status_list(self) -> StatusList:
        result = StatusList(
            self.posts, [status_json(post, shape=self.shape) for post in self.posts]
        )
        result.subject = self.subject
        return result


class Area:
    """
    The base of each area's endpoints (statuses, users, ...).

    :param microblog: the rules and reads of this server.
    """

    def __init__(self, microblog: Microblog,
                 status_cache: "RenderCache[tuple[int, bool, bool, str]] | None" = None
                 ) -> None:
        self.microblog = microblog
        #: Statuses rendered for any reader (:class:`Timeline`).
        self.status_cache: RenderCache[tuple[int, bool, bool, str]] = (
            status_cache if status_cache is not None else RenderCache()
        )
        #: Timeline pages rendered (:attr:`Timeline.pages`).
        self.page_cache: RenderCache[Hashable] = RenderCache(size=PAGE_ENTRIES)

    # Statuses as the reader sees them

    async def shape(self, user: Account | None, params: Params, posts: list[Post],
                    fresh: bool = False) -> Shape:
        """
        How to show ``posts`` to ``user``: the client's choices, and which
        of them the reader favorited or retweeted (not asked of ``fresh``
        posts, just written: nobody can have yet).
        """
        public_url = self.microblog.public_url
        if user is None or not posts or fresh:
            return replace(params.shape(), public_url=public_url)
        # The originals of retweets are shown too.
        ids = [p.id for p in posts] + [
            p.retweeted_status.id for p in posts if p.retweeted_status is not None
        ]
        favorited, retweeted = await self.microblog.timelines.marked_among(user.id, ids)
        return replace(params.shape(), public_url=public_url, favorited=frozenset(favorited),
                       retweeted=frozenset(retweeted))

    async def status(self, user: Account | None, params: Params, post: Post,
                     fresh: bool = False) -> dict[str, Any]:
        return status_json(post, shape=await self.shape(user, params, [post], fresh))

    async def statuses(self, user: Account | None, posts: list[Post], params: Params
                       ) -> StatusList:
        shape = await self.shape(user, params, posts)
        return StatusList(posts, [status_json(post, shape=shape) for post in posts])

    async def timeline(self, user: Account | None, posts: list[Post], params: Params
                       ) -> Timeline:
        """
        As :meth:`statuses`, left to be rendered in the format asked for
        (JSON from the statuses' cached bytes).
        """
        shape = await self.shape(user, params, posts)
        return Timeline(posts, shape, self.status_cache, self.page_cache)

    async def user_with_status(self, account: Account, params: Params) -> dict[str, Any]:
        body = user_json(account, self.microblog.public_url)
        latest = await self.microblog.timelines.latest_post(account.id)
        if latest is not None:
            shape = replace(params.shape(), public_url=self.microblog.public_url)
            body["status"] = status_json(latest, include_user=False, shape=shape)
        return body

    # The parameters that name statuses and users

    @staticmethod
    def timeline_args(params: Params) -> tuple[int, int | None, int | None]:
        return params.count(), params.status_id("since_id"), params.status_id("max_id")

    @staticmethod
    def required_id(params: Params) -> int:
        post_id = params.status_id("id")
        if post_id is None:
            raise errors.missing_parameter("id")
        return post_id

    async def named_user(self, params: Params, resolve: bool = False) -> Account | None:
        """
        The user ``user_id`` or ``screen_name`` names, else ``id`` (a
        screen name or, as Twitter had it, a user id: see
        :meth:`Params.user_id_or_name`), else ``None``.

        :raise RuleError: nobody has that id or name.
        """
        account = await self._named_user(params, resolve)
        if account is not None and account.id in self.microblog.moderation.deleted:
            raise errors.user_not_found()
        if account is not None and self._suspended(account):
            raise TwitterError(63, "User has been suspended.", 403)
        return account

    async def acted_on(self, params: Params) -> Account:
        """
        The account an action names (follow, block, mute...): as
        :meth:`named_user`, a remote one looked up at its home server first
        (docs/design/reach.md).  An unknown account is "User not found."
        (50, 404), a server that does not answer as distwit is 50 with 502
        and says so; nothing is recorded then.
        """
        try:
            target = await self.named_user(params, resolve=True)
        except HomeUnreachable as e:
            raise errors.home_unreachable(e) from None
        except NoSuchUser:
            raise errors.user_not_found() from None
        if target is None:
            raise errors.missing_parameter("screen_name or user_id")
        return target

    def _suspended(self, account: Account) -> bool:
        try:
            self.microblog.check_not_suspended(account)
        except RuleError:
            return True
        return False

    async def _named_user(self, params: Params, resolve: bool) -> Account | None:
        user_id = params.integer("user_id", minimum=1)
        if user_id is not None:
            return await self.microblog.user_by_id(user_id)
        screen_name = params.text("screen_name")
        if screen_name and screen_name.startswith("@") and "@" in screen_name[1:]:
            screen_name = screen_name[1:]  # @handle@authority, as people write it
        number = None
        if not screen_name:
            screen_name, number = params.user_id_or_name("id")
        if screen_name:
            try:
                if resolve:
                    return await self.microblog.resolve(screen_name)
                return await self.microblog.user(screen_name)
            except RuleError:
                if number is None:
                    raise
                return await self.microblog.user_by_id(number)
        return None

    async def named_or_self(
        self, params: Params, user: Account | None, unknown: TwitterError
    ) -> Account:
        """
        The user named by ``user_id`` or ``screen_name`` (or ``id``), else
        the signed-in ``user``.

        :param unknown: the error to answer when the name matches nobody.
        :raises TwitterError: ``unknown``; or 170 when there is neither a
            name nor a signed-in user.
        """
        try:
            account = await self.named_user(params)
        except RuleError:
            raise unknown from None
        if account is not None:
            return account
        if user is None:
            raise errors.missing_parameter("screen_name or user_id")
        return user

    async def looked_up(self, params: Params) -> list[Account]:
        """
        The users named in the lists ``screen_name`` and ``user_id``
        (unknown ones left out).
        """
        names, ids = params.text_list("screen_name"), params.integer_list("user_id")
        if not names and not ids:
            raise errors.missing_parameter("screen_name or user_id")
        if len(names) + len(ids) > MAX_LOOKUP:
            raise errors.invalid_parameter("screen_name", f"at most {MAX_LOOKUP} users at once")
        found: dict[int, Account] = {}
        for account_id in ids:
            account = await self.microblog.timelines.account(account_id)
            if account is not None:
                found.setdefault(account.id, account)
        for name in names:
            try:
                account = await self.microblog.user(name)
            except RuleError:
                continue
            found.setdefault(account.id, account)
        return [account for account in found.values() if not self._suspended(account)]
