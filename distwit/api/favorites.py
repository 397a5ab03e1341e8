"""
``favorites/…``: marking statuses, and the list of one's favorites.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.model import Account


class FavoriteEndpoints(Area):
    # create and destroy are declared before the list, whose
    # favorites/NAME would take favorites/create too.

    @endpoint("favorites/create", r"favorites/create/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def favorite_create(self, request: IRequest, user: Account, params: Params) -> Any:
        post = await self.microblog.favorite(user, self.required_id(params))
        return await self.status(user, params, post)

    @endpoint("favorites/destroy", r"favorites/destroy/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def favorite_destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        post = await self.microblog.unfavorite(user, self.required_id(params))
        return await self.status(user, params, post)

    @endpoint("favorites/list", "favorites", r"favorites/(?P<screen_name>[^/]+)")
    async def favorites_list(self, request: IRequest, user: Account | None, params: Params
                             ) -> Any:
        account = await self.named_or_self(params, user, errors.user_not_found())
        count, since_id, max_id = self.timeline_args(params)
        posts = await self.microblog.timelines.favorites_timeline(
            account.id, count, since_id, max_id, viewer=user.id if user is not None else None
        )
        return await self.statuses(user, posts, params)
