"""
``direct_messages…``: the classic API's direct messages (received, sent,
show, new, destroy), in JSON and in the 2008 XML
(``<direct-messages type="array">`` of ``<direct_message>``).  The rules
are :mod:`distwit.core.direct_messages`; see
docs/design/direct-messages.md.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from distwit import entities
from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import GET, POST, REQUIRED, endpoint
from distwit.api.errors import TwitterError
from distwit.api.params import Params
from distwit.api.render import twitter_time, user_json
from distwit.core.direct_messages import CannotMessage, DirectMessages, NoSuchMessage
from distwit.core.microblog import Microblog, RuleError
from distwit.model import Account
from distwit.store.interfaces import DirectMessage

#: The most messages on one page, as Twitter.
MAX_COUNT = 200
#: The most events on one page of ``direct_messages/events/list``, as Twitter.
MAX_EVENTS = 50
#: The largest JSON body of ``direct_messages/events/new``.
MAX_EVENT_BYTES = 16 * 1024
#: ``direct_messages/events/destroy`` is a DELETE (POST accepted too).
DELETE_OR_POST = frozenset({"DELETE", "POST"})


class DirectMessageList(list[Any]):
    """
    Messages as JSON objects; in XML, ``<direct-messages type="array">``.
    """

    xml_root = "direct-messages"


def message_entities(text: str) -> dict[str, Any]:
    """
    Twitter's ``entities`` of a message's text: hashtags and links (the
    mentions of a private text are not looked up).
    """
    return {
        "hashtags": [
            {"text": tag.text, "indices": [tag.start, tag.end]}
            for tag in entities.hashtags(text)
        ],
        "symbols": [],
        "user_mentions": [],
        "urls": [
            {
                "url": link.url,
                "expanded_url": link.url,
                "display_url": link.url.split("://", 1)[1],
                "indices": [link.start, link.end],
            }
            for link in entities.links(text)
        ],
    }


def direct_message_json(message: DirectMessage, public_url: str = "") -> dict[str, Any]:
    """
    Twitter's direct message object (2008-2012).
    """
    sender, recipient = message.sender, message.recipient
    return {
        "id": message.id,
        "id_str": str(message.id),
        "text": message.text,
        "created_at": twitter_time(message.created_at),
        "sender_id": sender.id,
        "sender_id_str": str(sender.id),
        "sender_screen_name": sender.screen_name,
        "recipient_id": recipient.id,
        "recipient_id_str": str(recipient.id),
        "recipient_screen_name": recipient.screen_name,
        "sender": user_json(sender, public_url),
        "recipient": user_json(recipient, public_url),
        "entities": message_entities(message.text),
    }


def event_json(message: DirectMessage) -> dict[str, Any]:
    """
    A message as the 2016+ API's ``message_create`` event (what tweepy 4
    and python-twitter 3.5 read).
    """
    return {
        "type": "message_create",
        "id": str(message.id),
        "created_timestamp": str(message.created_at),
        "message_create": {
            "target": {"recipient_id": str(message.recipient.id)},
            "sender_id": str(message.sender.id),
            "message_data": {"text": message.text, "entities": message_entities(message.text)},
        },
    }


def _refused(error: RuleError) -> TwitterError:
    if isinstance(error, CannotMessage):
        return TwitterError(150, str(error), 403)
    if isinstance(error, NoSuchMessage):
        return errors.page_not_found(str(error))
    return errors.from_rule(error)


class DirectMessageEndpoints(Area):
    """
    ``direct_messages``, ``/sent``, ``/show``, ``/new``, ``/destroy``.

    :param direct: the rules of direct messages.
    """

    def __init__(self, microblog: Microblog, direct: DirectMessages) -> None:
        super().__init__(microblog)
        self.direct = direct

    def _list(self, messages: list[DirectMessage]) -> DirectMessageList:
        public_url = self.microblog.public_url
        return DirectMessageList(direct_message_json(m, public_url) for m in messages)

    @staticmethod
    def _page_args(params: Params) -> tuple[int, int | None, int | None, int]:
        page = params.integer("page", minimum=1, maximum=10_000) or 1
        return (params.count(maximum=MAX_COUNT), params.status_id("since_id"),
                params.status_id("max_id"), page)

    @staticmethod
    def _message_id(params: Params) -> int:
        message_id = params.status_id("id")
        if message_id is None:
            raise errors.missing_parameter("id")
        return message_id

    # Declared before direct_messages/show/ID and the list.

    @endpoint("direct_messages/new", methods=POST, auth=REQUIRED)
    async def new(self, request: IRequest, user: Account, params: Params) -> Any:
        text = params.text("text")
        if text is None:
            raise errors.missing_parameter("text")
        recipient = await self._recipient(params)
        try:
            message = await self.direct.send(user, recipient, text)
        except RuleError as e:
            raise _refused(e) from None
        return direct_message_json(message, self.microblog.public_url)

    @endpoint("direct_messages/destroy", r"direct_messages/destroy/(?P<id>[^/]+)",
              methods=POST, auth=REQUIRED)
    async def destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        try:
            message = await self.direct.destroy(user, self._message_id(params))
        except RuleError as e:
            raise _refused(e) from None
        return direct_message_json(message, self.microblog.public_url)

    @endpoint("direct_messages/show", r"direct_messages/show/(?P<id>[^/]+)", auth=REQUIRED)
    async def show(self, request: IRequest, user: Account, params: Params) -> Any:
        try:
            message = await self.direct.show(user, self._message_id(params))
        except RuleError as e:
            raise _refused(e) from None
        return direct_message_json(message, self.microblog.public_url)

    @endpoint("direct_messages/sent", auth=REQUIRED)
    async def sent(self, request: IRequest, user: Account, params: Params) -> Any:
        return self._list(await self.direct.sent(user, *self._page_args(params)))

    @endpoint("direct_messages", auth=REQUIRED)
    async def received(self, request: IRequest, user: Account, params: Params) -> Any:
        return self._list(await self.direct.received(user, *self._page_args(params)))

    # The 2016+ events API (tweepy 4, python-twitter 3.5)

    @endpoint("direct_messages/events/new", methods=POST, auth=REQUIRED)
    async def event_new(self, request: IRequest, user: Account, params: Params) -> Any:
        body = b""
        if request.content is not None:
            request.content.seek(0)
            body = request.content.read(MAX_EVENT_BYTES + 1)
        if len(body) > MAX_EVENT_BYTES:
            raise errors.invalid_parameter("event", f"at most {MAX_EVENT_BYTES} bytes")
        try:
            create = json.loads(body)["event"]["message_create"]
            recipient_id = int(create["target"]["recipient_id"])
            text = create["message_data"]["text"]
        except (ValueError, TypeError, KeyError):
            raise errors.invalid_parameter(
                "event", "a JSON message_create event with target.recipient_id and"
                " message_data.text"
            ) from None
        if not isinstance(text, str):
            raise errors.invalid_parameter("event", "message_data.text is text")
        try:
            recipient = await self.microblog.user_by_id(recipient_id)
        except RuleError:
            raise errors.user_not_found() from None
        try:
            message = await self.direct.send(user, recipient, text)
        except RuleError as e:
            raise _refused(e) from None
        return {"event": event_json(message)}

    @endpoint("direct_messages/events/list", methods=GET, auth=REQUIRED)
    async def event_list(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        Sent and received, newest first; ``cursor`` is the id of the last
        event of the page before (``next_cursor`` while there may be more).
        """
        count = params.count(default=20, maximum=MAX_EVENTS)
        cursor = params.text("cursor")
        max_id = None
        if cursor:
            try:
                max_id = int(cursor) - 1
            except ValueError:
                raise errors.invalid_parameter("cursor", f"{cursor!r} is no cursor") from None
        both = await self.direct.received(user, count, None, max_id)
        both += await self.direct.sent(user, count, None, max_id)
        page = sorted({m.id: m for m in both}.values(), key=lambda m: -m.id)[:count]
        answer: dict[str, Any] = {"events": [event_json(m) for m in page]}
        if len(page) == count:
            answer["next_cursor"] = str(page[-1].id)
        return answer

    @endpoint("direct_messages/events/show", methods=GET, auth=REQUIRED)
    async def event_show(self, request: IRequest, user: Account, params: Params) -> Any:
        try:
            message = await self.direct.show(user, self._message_id(params))
        except RuleError as e:
            raise _refused(e) from None
        return {"event": event_json(message)}

    @endpoint("direct_messages/events/destroy", methods=DELETE_OR_POST, auth=REQUIRED)
    async def event_destroy(self, request: IRequest, user: Account, params: Params) -> Any:
        try:
            await self.direct.destroy(user, self._message_id(params))
        except RuleError as e:
            raise _refused(e) from None
        return {}

    async def _recipient(self, params: Params) -> Account:
        """
        The recipient ``user_id``, ``screen_name`` or ``user`` (a screen
        name or user id, as the 2008 API had it) names; a
        ``handle@authority`` not known here is looked up on its server.
        """
        try:
            account = await self.named_user(params, resolve=True)
            if account is not None:
                return account
            name, number = params.user_id_or_name("user")
            if not name:
                raise errors.missing_parameter("user, screen_name or user_id")
            try:
                return await self.microblog.resolve(name)
            except RuleError:
                if number is None:
                    raise
                return await self.microblog.user_by_id(number)
        except RuleError:
            raise errors.user_not_found() from None
