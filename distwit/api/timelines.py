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
from distwit.model import Account


class TimelineEndpoints(Area):
    @endpoint("statuses/home_timeline", "statuses/friends_timeline", auth=REQUIRED)
    async def home_timeline(self, request: IRequest, user: Account, params: Params) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.home_timeline(
            user.id, count, since_id, max_id, params.boolean("include_rts", True)
        )
        return await self.statuses(user, posts, params)

    @endpoint("statuses/mentions_timeline", "statuses/mentions", "statuses/replies",
              auth=REQUIRED)
    async def mentions_timeline(self, request: IRequest, user: Account, params: Params) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.mentions_timeline(user.id, count, since_id, max_id)
        return await self.statuses(user, posts, params)

    @endpoint("statuses/user_timeline", r"statuses/user_timeline/(?P<id>[^/]+)")
    async def user_timeline(self, request: IRequest, user: Account | None, params: Params
                            ) -> Any:
        author = await self.named_or_self(params, user, errors.page_not_found("no such user"))
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.user_timeline(
            author.id, count, since_id, max_id, params.boolean("include_rts", True)
        )
        return await self.statuses(user, posts, params)

    @endpoint("statuses/public_timeline")
    async def public_timeline(self, request: IRequest, user: Account | None, params: Params
                              ) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.public_timeline(count, since_id, max_id)
        return await self.statuses(user, posts, params)
