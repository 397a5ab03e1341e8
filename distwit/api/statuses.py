"""
``statuses/…`` of one status: post, show, look up, delete.  (The
timelines are in :mod:`distwit.api.timelines`.)
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.conversations import ConversationSource
from distwit.api.endpoints import GET_OR_POST, POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.api.render import status_json
from distwit.model import PROFILE, Account, Post


class StatusEndpoints(Area):
    #: Fetches the parent of a reply shown whose parent is not held
    #: (:mod:`distwit.api.conversations`); set by :class:`TwitterAPI`.
    threads: ConversationSource | None = None

    @endpoint("statuses/update", methods=POST, auth=REQUIRED)
    async def update(self, request: IRequest, user: Account, params: Params) -> Any:
        text = params.text("status")
        if text is None:
            raise errors.missing_parameter("status")
        post = await self.microblog.post(
            user,
            text,
            # Twitter ignores a client's "source": it is the app's name.
            source=params.source,
            in_reply_to_status_id=params.status_id("in_reply_to_status_id"),
        )
        return await self.status(user, params, post, fresh=True)

    @endpoint(r"statuses/show/(?P<id>[^/]+)", "statuses/show")
    async def show(self, request: IRequest, user: Account | None, params: Params) -> Any:
        post = await self.microblog.status(self.required_id(params))
        if self.threads is not None:
            post = await self.threads.with_parent(post)
        return await self.status(user, params, post)

    @endpoint("statuses/lookup", methods=GET_OR_POST)
    async def lookup_statuses(self, request: IRequest, user: Account | None, params: Params
                              ) -> Any:
        ids = params.integer_list("id")
        if not ids:
            raise errors.missing_parameter("id")
        posts: dict[int, Post] = {}
        for post_id in ids:
            post = await self.microblog.timelines.post(post_id)
            if post is not None and not post.deleted and post.kind != PROFILE:
                posts[post_id] = post
        shape = await self.shape(user, params, list(posts.values()))
        found = {post_id: status_json(post, shape=shape) for post_id, post in posts.items()}
        if params.boolean("map"):
            return {"id": {str(post_id): found.get(post_id) for post_id in ids}}
        return [found[post_id] for post_id in ids if post_id in found]

    @endpoint(r"statuses/destroy/(?P<id>[^/]+)", "statuses/destroy", methods=POST,
              auth=REQUIRED)
    async def destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        # Of a retweet, this undoes it (as statuses/unretweet).
        post = await self.microblog.delete(user, self.required_id(params))
        return await self.status(user, params, post)
