"""
Direct messages: who may send one to whom, how long one may be, who may
read and destroy one (docs/design/direct-messages.md).

A direct message is no post: it has its own table and never enters a
log, a feed, a range, a timeline, a search or a count.  Only its sender
and its recipient may read it.  A message to another server's user is
kept here and travels, signed, to that user's home server alone (the
:attr:`DirectMessages.federation` hook, in
:mod:`distwit.federation.direct_messages`).
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from distwit.core.microblog import EmptyPost, PostTooLong, RuleError
from distwit.model import MAX_POST_LENGTH, Account, normalize_text, post_length
from distwit.store.interfaces import DirectMessage, IStore, QueuedNotice

#: The longest direct message, as for posts (code points after NFC).
MAX_DIRECT_MESSAGE_LENGTH = MAX_POST_LENGTH


class CannotMessage(RuleError):
    """
    The sender may not send the recipient a direct message (Twitter's 150).
    """


class NoSuchMessage(RuleError):
    """
    No direct message of that id that the reader may see (Twitter's 34).
    """


class MessageNotices(Protocol):
    """
    What tells another server's user of a direct message (the outbox).
    """

    def notice(self, message_key: str, sender: Account, recipient: Account, text: str,
               created_at: int) -> QueuedNotice | None:
        """
        The notice for the recipient's server, for the store to queue in
        the same transaction as the message.
        """

    def queued(self) -> None:
        """
        A notice was queued: send it soon.
        """


def new_key() -> str:
    """
    A message's key on its sender's server, unique among the sender's
    messages: what keeps a notice received twice one message.
    """
    return secrets.token_hex(16)


def checked_text(text: str) -> str:
    """
    The text of a direct message, normalised (NFC) and checked.

    :raise EmptyPost: nothing but whitespace.
    :raise PostTooLong: over :data:`MAX_DIRECT_MESSAGE_LENGTH` code points.
    """
    text = normalize_text(text)
    if not text:
        raise EmptyPost("A direct message needs some text.")
    length = post_length(text)
    if length > MAX_DIRECT_MESSAGE_LENGTH:
        raise PostTooLong(
            f"The text of your direct message is over {MAX_DIRECT_MESSAGE_LENGTH}"
            f" characters ({length})."
        )
    return text


class DirectMessages:
    """
    The rules of direct messages on one server.

    :param store: the :class:`IStore`.
    :param clock: an ``IReactorTime``; its ``seconds()`` timestamps messages.
    """

    def __init__(self, store: IStore, clock: Any) -> None:
        self._store = store
        self._clock = clock
        #: Tells another server's user of a message (set by the composition
        #: root when this server federates); without it, only local users
        #: may be sent messages.
        self.federation: MessageNotices | None = None

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def may_message(self, sender: Account, recipient: Account) -> None:
        """
        Whether ``sender`` may send ``recipient`` a direct message: the one
        check, on the sender's server and again on the recipient's.
        Twitter's rule: the recipient follows the sender.

        :raise CannotMessage: why not.
        """
        if sender.id == recipient.id:
            raise CannotMessage("You cannot send messages to yourself.")
        # A block removes the follow both ways here, but another server may
        # still hold one: the block decides (docs/design/blocks.md).
        if sender.id in (await self._store.hidden_accounts(recipient.id)).blocked:
            raise CannotMessage(
                "You cannot send messages to users who are not following you."
            )
        if not await self._store.is_following(recipient.id, sender.id):
            raise CannotMessage(
                "You cannot send messages to users who are not following you."
            )

    async def send(self, sender: Account, recipient: Account, text: str) -> DirectMessage:
        """
        Send a direct message from local ``sender``.  To another server's
        user it is kept here and, in the same transaction, its notice is
        queued for the recipient's server.

        :raise EmptyPost: no text.  :raise PostTooLong: too long.
        :raise CannotMessage: :meth:`may_message` says no, or the
            recipient is another server's and this server does not
            federate.
        """
        text = checked_text(text)
        await self.may_message(sender, recipient)
        now = self.now_ms()
        key = new_key()
        notice = None
        if not recipient.is_local:
            if self.federation is None:
                raise CannotMessage("This server sends no messages to other servers.")
            notice = self.federation.notice(key, sender, recipient, text, now)
        message, _ = await self._store.create_direct_message(
            sender.id, recipient.id, text, now, key, notice
        )
        if notice is not None and self.federation is not None:
            self.federation.queued()
        return message

    async def receive(self, sender: Account, recipient: Account, text: str, sent_at: int,
                      key: str) -> DirectMessage:
        """
        Keep a message another server sends for its user ``sender`` to
        local ``recipient`` (its notice checked by the caller to come from
        the sender's server).  Idempotent by ``key``.

        :param sent_at: when the sender's server says it was sent (a time
            in the future is taken as now).
        :raise CannotMessage: :meth:`may_message` says no.
        :raise EmptyPost, PostTooLong: the text breaks the rules here too.
        """
        text = checked_text(text)
        await self.may_message(sender, recipient)
        message, _ = await self._store.create_direct_message(
            sender.id, recipient.id, text, min(sent_at, self.now_ms()), key
        )
        return message

    async def received(self, user: Account, count: int, since_id: int | None = None,
                       max_id: int | None = None, page: int = 1) -> list[DirectMessage]:
        """
        The messages ``user`` received and did not destroy, newest first,
        but for those of accounts the user blocks.
        """
        found: list[DirectMessage] = await self._store.direct_messages(
            user.id, False, count, since_id, max_id, (page - 1) * count
        )
        # Nothing from an account the user blocks (those kept from before).
        blocked = (await self._store.hidden_accounts(user.id)).blocked
        return [m for m in found if m.sender.id not in blocked] if blocked else found

    async def sent(self, user: Account, count: int, since_id: int | None = None,
                   max_id: int | None = None, page: int = 1) -> list[DirectMessage]:
        """
        The messages ``user`` sent and did not destroy, newest first.
        """
        found: list[DirectMessage] = await self._store.direct_messages(
            user.id, True, count, since_id, max_id, (page - 1) * count
        )
        return found

    async def show(self, user: Account, message_id: int) -> DirectMessage:
        """
        A message ``user`` sent or received and did not destroy.

        :raise NoSuchMessage: there is none (or it is someone else's).
        """
        message = await self._store.get_direct_message(message_id)
        if message is None or not self._visible(user, message):
            raise NoSuchMessage("No direct message with that ID.")
        return message

    async def destroy(self, user: Account, message_id: int) -> DirectMessage:
        """
        Destroy a message for ``user`` (its sender or recipient): they no
        longer see it; the other side still does.

        :return: the message as it was.
        :raise NoSuchMessage: as for :meth:`show`.
        """
        message = await self.show(user, message_id)
        await self._store.hide_direct_message(message.id, user.id)
        return message

    @staticmethod
    def _visible(user: Account, message: DirectMessage) -> bool:
        return (
            (message.sender.id == user.id and not message.sender_hidden)
            or (message.recipient.id == user.id and not message.recipient_hidden)
        )
