"""
``statuses/retweet``, ``statuses/unretweet``, ``statuses/retweets`` and
``statuses/retweets_of_me``: retweets as Twitter had them
(docs/design/log-items.md).  A retweet is an item of the retweeter's
numbered log; ``statuses/destroy`` of one undoes it, like ``unretweet``.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api.area import Area
from distwit.api.endpoints import POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.model import Account


class RetweetEndpoints(Area):
    @endpoint(r"statuses/retweet/(?P<id>[^/]+)", "statuses/retweet", methods=POST,
              auth=REQUIRED)
    async def retweet(self, request: IRequest, user: Account, params: Params) -> Any:
        retweet = await self.microblog.retweet(user, self.required_id(params))
        return await self.status(user, params, retweet)

    @endpoint(r"statuses/unretweet/(?P<id>[^/]+)", "statuses/unretweet", methods=POST,
              auth=REQUIRED)
    async def unretweet(self, request: IRequest, user: Account, params: Params) -> Any:
        # Twitter answers with the original, no longer retweeted.
        original = await self.microblog.unretweet(user, self.required_id(params))
        return await self.status(user, params, original)

    @endpoint(r"statuses/retweets/(?P<id>[^/]+)", "statuses/retweets")
    async def retweets(self, request: IRequest, user: Account | None, params: Params) -> Any:
        post = await self.microblog.status(self.required_id(params))
        if post.retweeted_status is not None:
            post = post.retweeted_status
        count = params.count(default=100, maximum=100)
        retweets = await self.microblog.timelines.retweets_of(
            post.id, count, viewer=user.id if user is not None else None
        )
        return await self.statuses(user, retweets, params)

    @endpoint("statuses/retweets_of_me", auth=REQUIRED)
    async def retweets_of_me(self, request: IRequest, user: Account, params: Params) -> Any:
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.retweets_of_me(user.id, count, since_id, max_id)
        return await self.statuses(user, posts, params)
