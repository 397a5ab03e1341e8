"""
``blocks/…``, ``mutes/users/…``, ``friendships/no_retweets/ids``,
``friendships/update`` and ``lists/list``: what a user hides of others
(docs/design/blocks.md), and the lists 2008-2013 clients ask for at
start-up (none exist yet: an empty list).
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.devices import device_error
from distwit.api.endpoints import GET, GET_OR_POST, POST, REQUIRED, endpoint
from distwit.api.errors import TwitterError
from distwit.api.params import Params
from distwit.api.render import user_json
from distwit.core.devices import Devices, NotFollowing
from distwit.core.microblog import RuleError
from distwit.model import Account

#: The most ids, and users, in one page (Twitter's).
MAX_IDS, MAX_USERS = 5000, 200


def relationship_flags(hiding: set[str], following: bool) -> dict[str, bool]:
    """
    The ``blocking``, ``muting`` and ``want_retweets`` of a relationship,
    from what the source hides of the target.
    """
    return {
        "blocking": "blocking" in hiding,
        "muting": "muting" in hiding,
        "want_retweets": following and "no_retweets" not in hiding,
    }


class BlockEndpoints(Area):
    #: Phones, IM and e-mail: ``friendships/update``'s ``device``, if the
    #: server has them.
    devices: Devices | None = None

    async def _page(self, user: Account, params: Params, what: str, default: int,
                    maximum: int) -> tuple[list[Account], dict[str, Any]]:
        count = params.count(default=default, maximum=maximum)
        before = params.cursor()
        accounts: list[Account] = []
        if before != 0:
            accounts = await self.microblog.timelines.hiding_page(
                user.id, what, before, count + 1
            )
        more = len(accounts) > count
        accounts = accounts[:count]
        next_cursor = accounts[-1].id if more else 0
        return accounts, {
            "next_cursor": next_cursor,
            "next_cursor_str": str(next_cursor),
            "previous_cursor": 0,
            "previous_cursor_str": "0",
        }

    async def _ids(self, user: Account, params: Params, what: str) -> dict[str, Any]:
        accounts, cursors = await self._page(user, params, what, MAX_IDS, MAX_IDS)
        ids: list[Any] = [account.id for account in accounts]
        if params.boolean("stringify_ids"):
            ids = [str(account_id) for account_id in ids]
        return {"ids": ids, **cursors}

    async def _users(self, user: Account, params: Params, what: str) -> dict[str, Any]:
        accounts, cursors = await self._page(user, params, what, 20, MAX_USERS)
        users = []
        for account in accounts:
            if params.boolean("skip_status"):
                users.append(user_json(account, self.microblog.public_url))
            else:
                users.append(await self.user_with_status(account, params))
        return {"users": users, **cursors}

    # Blocks

    @endpoint("blocks/create", r"blocks/create/(?P<id>[^/]+)", methods=POST, auth=REQUIRED)
    async def block_create(self, request: IRequest, user: Account, params: Params) -> Any:
        target = await self.microblog.block(user, await self.acted_on(params))
        return user_json(target, self.microblog.public_url)

    @endpoint("blocks/destroy", r"blocks/destroy/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def block_destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        target = await self.microblog.unblock(user, await self.acted_on(params))
        return user_json(target, self.microblog.public_url)

    @endpoint("blocks/list", auth=REQUIRED)
    async def blocks_list(self, request: IRequest, user: Account, params: Params) -> Any:
        return await self._users(user, params, "blocking")

    @endpoint("blocks/ids", auth=REQUIRED)
    async def blocks_ids(self, request: IRequest, user: Account, params: Params) -> Any:
        return await self._ids(user, params, "blocking")

    @endpoint("blocks/blocking/ids", auth=REQUIRED)
    async def blocking_ids(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        API 1.0's ``blocks/blocking/ids``: the ids as a plain list.
        """
        return (await self._ids(user, params, "blocking"))["ids"]

    @endpoint("blocks/blocking", auth=REQUIRED)
    async def blocking(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        API 1.0's ``blocks/blocking``: the users as a plain list (``page``
        of 20).
        """
        page = params.integer("page", minimum=1, maximum=1000) or 1
        accounts = await self.microblog.timelines.hiding_page(
            user.id, "blocking", None, 20 * page
        )
        return [user_json(account, self.microblog.public_url)
                for account in accounts[20 * (page - 1):]]

    @endpoint("blocks/exists", r"blocks/exists/(?P<id>[^/]+)", auth=REQUIRED)
    async def block_exists(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        The user, if blocked; else 404, as Twitter answered.
        """
        try:
            target = await self.named_user(params)
        except RuleError:
            raise errors.user_not_found() from None
        if target is None:
            raise errors.missing_parameter("screen_name or user_id")
        if "blocking" not in await self.microblog.timelines.hiding_between(user.id, target.id):
            raise TwitterError(34, "You are not blocking this user.", 404)
        return user_json(target, self.microblog.public_url)

    # Mutes

    @endpoint("mutes/users/create", methods=POST, auth=REQUIRED)
    async def mute_create(self, request: IRequest, user: Account, params: Params) -> Any:
        target = await self.microblog.mute(user, await self.acted_on(params))
        return user_json(target, self.microblog.public_url)

    @endpoint("mutes/users/destroy", methods=POST, auth=REQUIRED)
    async def mute_destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        target = await self.microblog.mute(user, await self.acted_on(params), on=False)
        return user_json(target, self.microblog.public_url)

    @endpoint("mutes/users/list", auth=REQUIRED)
    async def mutes_list(self, request: IRequest, user: Account, params: Params) -> Any:
        return await self._users(user, params, "muting")

    @endpoint("mutes/users/ids", auth=REQUIRED)
    async def mutes_ids(self, request: IRequest, user: Account, params: Params) -> Any:
        return await self._ids(user, params, "muting")

    # Retweets of someone one follows

    @endpoint("friendships/no_retweets/ids", auth=REQUIRED)
    async def no_retweets_ids(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        The ids of the accounts whose retweets ``user`` does not want: a
        plain list, as Twitter's.
        """
        accounts = await self.microblog.timelines.hiding_page(
            user.id, "no_retweets", None, MAX_IDS
        )
        if params.boolean("stringify_ids"):
            return [str(account.id) for account in accounts]
        return [account.id for account in accounts]

    @endpoint("friendships/update", methods=POST, auth=REQUIRED)
    async def friendship_update(self, request: IRequest, user: Account, params: Params
                                ) -> Any:
        """
        ``retweets=false`` hides the target's retweets from ``user``'s home
        timeline, ``true`` shows them again; ``device=true`` sends the
        target's posts to ``user``'s phone or IM, ``false`` stops it (as
        ``notifications/follow`` and ``leave``).  The answer is the
        relationship, as ``friendships/show``.
        """
        target = await self.acted_on(params)
        if params.text("device") is not None:
            device = params.boolean("device")
            if self.devices is not None:
                try:
                    await self.devices.set_notifications(user, target, device)
                except NotFollowing as e:
                    raise device_error(e) from None
        if params.text("retweets") is not None:
            await self.microblog.want_retweets(user, target, params.boolean("retweets"))
        return await relationship(self, user, target)

    # Lists

    @endpoint("lists/list", "lists/all", "lists", methods=GET)
    async def lists_list(self, request: IRequest, user: Account | None, params: Params
                         ) -> Any:
        """
        The lists a user has: none, until lists exist.
        """
        return []

    @endpoint("lists/ownerships", "lists/subscriptions", "lists/memberships",
              methods=GET_OR_POST)
    async def list_pages(self, request: IRequest, user: Account | None, params: Params
                         ) -> Any:
        return {"lists": [], "next_cursor": 0, "next_cursor_str": "0",
                "previous_cursor": 0, "previous_cursor_str": "0"}


async def relationship(area: Area, source: Account, target: Account,
                       viewer: Account | None = None) -> dict[str, Any]:
    """
    ``friendships/show``'s answer for ``source`` and ``target``; what the
    source hides of the target only when the source is the ``viewer``
    (default: the source itself), as Twitter told nobody else.
    """
    timelines = area.microblog.timelines
    following = await timelines.is_following(source.id, target.id)
    followed_by = await timelines.is_following(target.id, source.id)
    hiding: set[str] = set()
    if viewer is None or viewer.id == source.id:
        hiding = await timelines.hiding_between(source.id, target.id)

    def side(me: Account, other_follows: bool, follows: bool) -> dict[str, Any]:
        return {
            "id": me.id,
            "id_str": str(me.id),
            "screen_name": me.screen_name,
            "following": follows,
            "followed_by": other_follows,
        }

    source_side = side(source, followed_by, following)
    source_side.update(
        can_dm=False, marked_spam=False, notifications_enabled=False, all_replies=False,
        following_received=False, following_requested=False,
        **relationship_flags(hiding, following),
    )
    target_side = side(target, following, followed_by)
    target_side.update(following_received=False, following_requested=False)
    return {"relationship": {"source": source_side, "target": target_side}}
