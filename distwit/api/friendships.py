"""
``friendships/…``, ``friends/…`` and ``followers/…``: who follows whom,
following and unfollowing, and the pages of ids and users.
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.blocks import relationship
from distwit.api.endpoints import GET_OR_POST, POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.api.render import user_json
from distwit.core.microblog import RuleError
from distwit.model import Account


class FriendshipEndpoints(Area):
    @endpoint("friendships/create", r"friendships/create/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def friendship_create(self, request: IRequest, user: Account, params: Params
                                ) -> Any:
        return user_json(await self.microblog.follow(user, await self.acted_on(params)),
                         self.microblog.public_url)

    @endpoint("friendships/destroy", r"friendships/destroy/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def friendship_destroy(self, request: IRequest, user: Account, params: Params
                                 ) -> Any:
        return user_json(await self.microblog.unfollow(user, await self.acted_on(params)),
                         self.microblog.public_url)

    async def _one_user(
        self, params: Params, id_name: str, name_name: str, default: Account | None = None
    ) -> Account:
        user_id = params.integer(id_name, minimum=1)
        name = params.text(name_name)
        try:
            if user_id is not None:
                return await self.microblog.user_by_id(user_id)
            if name:
                return await self.microblog.user(name)
        except RuleError:
            raise errors.user_not_found() from None
        if default is not None:
            return default
        raise errors.missing_parameter(f"{id_name} or {name_name}")

    @endpoint("friendships/show")
    async def friendship_show(self, request: IRequest, user: Account | None, params: Params
                              ) -> Any:
        source = await self._one_user(params, "source_id", "source_screen_name", user)
        target = await self._one_user(params, "target_id", "target_screen_name")
        # blocking, muting and want_retweets: told only to the source itself.
        if user is None:
            return await relationship(self, source, target, viewer=target)
        return await relationship(self, source, target, viewer=user)

    @endpoint("friendships/exists")
    async def friendship_exists(self, request: IRequest, user: Account | None, params: Params
                                ) -> Any:
        a = await self._one_user(params, "user_id_a", "user_a")
        b = await self._one_user(params, "user_id_b", "user_b")
        return await self.microblog.timelines.is_following(a.id, b.id)

    @endpoint("friendships/lookup", methods=GET_OR_POST, auth=REQUIRED)
    async def friendship_lookup(self, request: IRequest, user: Account, params: Params) -> Any:
        answer = []
        for account in await self.looked_up(params):
            connections = []
            if await self.microblog.timelines.is_following(user.id, account.id):
                connections.append("following")
            if await self.microblog.timelines.is_following(account.id, user.id):
                connections.append("followed_by")
            hiding = await self.microblog.timelines.hiding_between(user.id, account.id)
            connections.extend(what for what in ("blocking", "muting") if what in hiding)
            answer.append({
                "name": account.name or account.handle,
                "screen_name": account.screen_name,
                "id": account.id,
                "id_str": str(account.id),
                "connections": connections or ["none"],
            })
        return answer

    # Pages of who follows whom

    async def _page(
        self, user: Account | None, params: Params, followers: bool, default: int, maximum: int
    ) -> tuple[list[Account], dict[str, Any]]:
        account = await self.named_or_self(params, user, errors.user_not_found())
        count = params.count(default=default, maximum=maximum)
        before = params.cursor()
        if before == 0:
            accounts: list[Account] = []
        else:
            accounts = await self.microblog.timelines.following_page(
                account.id, followers, before, count + 1
            )
        more = len(accounts) > count
        accounts = accounts[:count]
        next_cursor = accounts[-1].id if more else 0
        cursors = {
            "next_cursor": next_cursor,
            "next_cursor_str": str(next_cursor),
            "previous_cursor": 0,
            "previous_cursor_str": "0",
        }
        return accounts, cursors

    async def _ids(self, user: Account | None, params: Params, followers: bool) -> Any:
        accounts, cursors = await self._page(user, params, followers, 5000, 5000)
        ids: list[Any] = [account.id for account in accounts]
        if params.boolean("stringify_ids"):
            ids = [str(account_id) for account_id in ids]
        return {"ids": ids, **cursors}

    @endpoint("friends/ids")
    async def friend_ids(self, request: IRequest, user: Account | None, params: Params) -> Any:
        return await self._ids(user, params, followers=False)

    @endpoint("followers/ids")
    async def follower_ids(self, request: IRequest, user: Account | None, params: Params
                           ) -> Any:
        return await self._ids(user, params, followers=True)

    async def _list(self, user: Account | None, params: Params, followers: bool) -> Any:
        accounts, cursors = await self._page(user, params, followers, 20, 200)
        users = []
        for account in accounts:
            if params.boolean("skip_status"):
                users.append(user_json(account, self.microblog.public_url))
            else:
                users.append(await self.user_with_status(account, params))
        return {"users": users, **cursors}

    @endpoint("friends/list")
    async def friends_list(self, request: IRequest, user: Account | None, params: Params
                           ) -> Any:
        return await self._list(user, params, followers=False)

    @endpoint("followers/list")
    async def followers_list(self, request: IRequest, user: Account | None, params: Params
                             ) -> Any:
        return await self._list(user, params, followers=True)
