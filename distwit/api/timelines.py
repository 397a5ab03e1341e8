"""
The timelines: home, mentions, a user's, the public one.  Their answers
are :class:`~distwit.api.area.StatusList`, so they come as RSS and Atom
too.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import REQUIRED, endpoint
from distwit.api.params import Params
from distwit.core.accts import as_typed
from distwit.core.microblog import RuleError
from distwit.model import Account

#: How far back ``page`` reaches (Twitter's 3,200 of a user timeline); past
#: it, clients page with ``max_id``, which reaches every post.
MAX_PAGED = 3200


class TimelineEndpoints(Area):
    @endpoint("statuses/home_timeline", "statuses/friends_timeline", auth=REQUIRED)
    async def home_timeline(self, request: IRequest, user: Account, params: Params) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.home_timeline(
            user.id, count, since_id, max_id, params.boolean("include_rts", True)
        )
        return await self.timeline(user, posts, params)

    @endpoint("statuses/mentions_timeline", "statuses/mentions", "statuses/replies",
              auth=REQUIRED)
    async def mentions_timeline(self, request: IRequest, user: Account, params: Params) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.mentions_timeline(user.id, count, since_id, max_id)
        return await self.timeline(user, posts, params)

    @endpoint("statuses/user_timeline", r"statuses/user_timeline/(?P<id>[^/]+)")
    async def user_timeline(self, request: IRequest, user: Account | None, params: Params
                            ) -> Any:
        """
        One author's posts.  ``screen_name`` may be ``@handle@authority``
        as people paste it.  Of a remote author, posts older than those
        held are fetched from its server when paged to (``max_id``,
        ``page``): see docs/design/reach.md.
        """
        unknown = errors.page_not_found("no such user")
        name = params.text("screen_name") or params.text("id")
        if params.integer("user_id", minimum=1) is None and name and name.startswith("@"):
            try:
                author = await self.microblog.user(as_typed(name))
            except RuleError:
                raise unknown from None
        else:
            author = await self.named_or_self(params, user, unknown)
        count, since_id, max_id = self.timeline_args(params)
        page = params.integer("page", minimum=1, maximum=MAX_PAGED // count) or 1
        posts = await self.microblog.timelines.user_timeline(
            author.id, count * page, since_id, max_id, params.boolean("include_rts", True),
            viewer=user.id if user is not None else None,
        )
        result = await self.timeline(user, posts[(page - 1) * count:], params)
        result.subject = author
        return result

    @endpoint("statuses/public_timeline")
    async def public_timeline(self, request: IRequest, user: Account | None, params: Params
                              ) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.public_timeline(
            count, since_id, max_id, viewer=user.id if user is not None else None
        )
        return await self.timeline(user, posts, params)
