"""
``users/…``: one user, several, and search by name.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import GET_OR_POST, endpoint
from distwit.api.errors import TwitterError
from distwit.api.params import Params
from distwit.core.accts import HomeUnreachable
from distwit.core.microblog import RuleError
from distwit.model import Account


class UserEndpoints(Area):
    @endpoint("users/show", r"users/show/(?P<id>[^/]+)")
    async def users_show(self, request: IRequest, user: Account | None, params: Params) -> Any:
        try:
            account = await self.named_user(params, resolve=True)
        except HomeUnreachable as e:
            raise errors.home_unreachable(e) from None
        except RuleError:
            raise errors.user_not_found() from None
        if account is None:
            raise errors.missing_parameter("screen_name or user_id")
        account = await self.microblog.fresh_profile(account)
        return await self.user_with_status(account, params)

    @endpoint("users/lookup", methods=GET_OR_POST)
    async def users_lookup(self, request: IRequest, user: Account | None, params: Params
                           ) -> Any:
        accounts = await self.looked_up(params)
        if not accounts:
            raise TwitterError(17, "No user matches for specified terms.", 404)
        return [await self.user_with_status(account, params) for account in accounts]

    @endpoint("users/search")
    async def users_search(self, request: IRequest, user: Account | None, params: Params
                           ) -> Any:
        query = (params.text("q") or "").strip()
        if not query:
            raise errors.missing_parameter("q")
        count = params.count(default=20, maximum=20)
        page = params.integer("page", minimum=1, maximum=1000) or 1
        accounts = await self.microblog.timelines.search_accounts(query, count, (page - 1) * count)
        return [await self.user_with_status(account, params) for account in accounts]
