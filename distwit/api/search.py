"""
``search/tweets``: statuses by their words.  (``users/search`` is in
:mod:`distwit.api.users`.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import endpoint
from distwit.api.params import Params
from distwit.model import Account


class SearchEndpoints(Area):
    @endpoint("search/tweets")
    async def search_tweets(self, request: IRequest, user: Account | None, params: Params
                            ) -> Any:
        query = (params.text("q") or "").strip()
        if not query:
            raise errors.missing_parameter("q")
        if len(query) > 500:
            raise errors.invalid_parameter("q", "at most 500 characters")
        count = params.count(default=15, maximum=100)
        since_id, max_id = params.status_id("since_id"), params.status_id("max_id")
        posts = await self.microblog.timelines.search_posts(
            query, count, since_id, max_id, viewer=user.id if user is not None else None
        )
        statuses = await self.statuses(user, posts, params)
        metadata: dict[str, Any] = {
            "completed_in": 0.0,
            "max_id": posts[0].id if posts else (max_id or 0),
            "max_id_str": str(posts[0].id if posts else (max_id or 0)),
            "query": quote_plus(query),
            "count": count,
            "since_id": since_id or 0,
            "since_id_str": str(since_id or 0),
            "refresh_url": f"?since_id={posts[0].id if posts else since_id or 0}"
            f"&q={quote_plus(query)}",
        }
        if len(posts) == count:
            metadata["next_results"] = (
                f"?max_id={posts[-1].id - 1}&q={quote_plus(query)}&count={count}"
            )
        return {"statuses": statuses, "search_metadata": metadata}
