"""
``statuses/conversation/ID`` (and GNU social's
``/api/statusnet/conversation/ID``): the whole conversation a status is
part of, oldest first, assembled across servers by what the composition
root gives (:class:`distwit.federation.threads.Threads`;
docs/design/threads.md).
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.web.iweb import IRequest

from distwit.api.area import Area
from distwit.api.endpoints import endpoint
from distwit.api.params import Params
from distwit.core.microblog import Microblog
from distwit.model import Account, Post


class ConversationSource(Protocol):
    """
    Assembles conversations and fetches the parents of replies.
    """

    async def conversation(self, post: Post) -> list[Post]:
        """
        The conversation ``post`` is part of, oldest first.
        """

    async def with_parent(self, post: Post) -> Post:
        """
        ``post``, its parent fetched (within a bounded wait) if not held.
        """


class ConversationEndpoints(Area):
    def __init__(self, microblog: Microblog, threads: ConversationSource | None) -> None:
        super().__init__(microblog)
        self.threads = threads

    @endpoint(r"statuses/conversation/(?P<id>[^/]+)",
              r"statusnet/conversation/(?P<id>[^/]+)")
    async def conversation(self, request: IRequest, user: Account | None, params: Params
                           ) -> Any:
        post = await self.microblog.status(self.required_id(params))
        if post.retweeted_status is not None:
            post = post.retweeted_status
        if self.threads is None:
            return await self.statuses(user, [post], params)
        posts = await self.threads.conversation(post)
        # Not what the reader blocks (docs/design/blocks.md).
        posts = await self.microblog.timelines.visible(
            user.id if user is not None else None, posts
        )
        return await self.statuses(user, posts, params)
