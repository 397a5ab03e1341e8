"""
Notifications: the mentions, replies, new followers, retweets and
favorites of a user's posts, newest first, and how many they have not seen
(the count in the pages' header).

Every read goes through :meth:`Notifications.hidden_from`: the one place
where the accounts a user does not want to hear from (blocked, muted) are
left out of what they are notified of.
"""

from __future__ import annotations

from distwit.model import Account
from distwit.store.interfaces import IStore, NotificationRecord

#: The header shows at most this many unread ("99+" beyond).
MAX_UNREAD = 99


class Notifications:
    """
    :param store: the :class:`IStore`.
    """

    def __init__(self, store: IStore) -> None:
        self._store = store

    async def hidden_from(self, user: Account) -> list[int]:
        """
        The ids of the accounts whose acts ``user`` is not notified of:
        those they block or mute (docs/design/blocks.md).
        """
        hidden = await self._store.hidden_accounts(user.id)
        return sorted(hidden.silenced)

    async def page(
        self, user: Account, before: int | None, count: int
    ) -> list[NotificationRecord]:
        """
        Up to ``count`` notifications of ``user`` older than ``before``
        (ms; ``None``: the newest), newest first.
        """
        found: list[NotificationRecord] = await self._store.notifications(
            user.id, before, count, await self.hidden_from(user)
        )
        return found

    async def unread(self, user: Account) -> int:
        """
        How many notifications ``user`` has not seen (at most
        :data:`MAX_UNREAD` + 1).
        """
        count: int = await self._store.unread_notifications(
            user.id, MAX_UNREAD + 1, await self.hidden_from(user)
        )
        return count

    async def seen(self, user: Account, shown: list[NotificationRecord]) -> None:
        """
        ``user`` saw ``shown`` (the newest page): nothing up to the newest
        of them is unread any more.
        """
        if shown:
            await self._store.see_notifications(user.id, max(n.at for n in shown))


__all__ = ["MAX_UNREAD", "Notifications"]
