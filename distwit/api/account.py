"""
``account/…``: the signed-in user's own account.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api.area import Area
from distwit.api.endpoints import POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.model import Account


class AccountEndpoints(Area):
    @endpoint("account/verify_credentials", auth=REQUIRED)
    async def verify_credentials(self, request: IRequest, user: Account, params: Params) -> Any:
        # The signed-in account may come from the credential cache: show
        # its counts as they are now.
        return await self.user_with_status(await self.microblog.user_by_id(user.id), params)

    @endpoint("account/update_profile", methods=POST, auth=REQUIRED)
    async def update_profile(self, request: IRequest, user: Account, params: Params) -> Any:
        account = await self.microblog.update_profile(
            user,
            name=params.text("name"),
            description=params.text("description"),
            location=params.text("location"),
            url=params.text("url"),
        )
        return await self.user_with_status(account, params)
