"""
Direct messages: their own table (migration 012), which nothing that
reads posts ever joins (docs/design/direct-messages.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import DirectMessage, IDirectMessageStore, QueuedNotice
from distwit.store.sql.base import ACCOUNT_COLUMNS, SQLBase, account_from_row

_SENDER_COLUMNS = ACCOUNT_COLUMNS
_RECIPIENT_COLUMNS = ACCOUNT_COLUMNS.replace("a.", "b.")
_MESSAGE_COLUMNS = (
    "d.id, d.text, d.created_at, d.origin_key, d.sender_hidden, d.recipient_hidden, "
    + _SENDER_COLUMNS + ", " + _RECIPIENT_COLUMNS
)
_MESSAGES_FROM = (
    "direct_messages d JOIN accounts a ON a.id = d.sender_id"
    " JOIN accounts b ON b.id = d.recipient_id"
)
#: Columns of one account in ACCOUNT_COLUMNS.
_ACCOUNT_WIDTH = ACCOUNT_COLUMNS.count(",") + 1


def _message(row: Any) -> DirectMessage:
    return DirectMessage(
        id=int(row[0]),
        text=row[1],
        created_at=int(row[2]),
        origin_key=row[3],
        sender_hidden=bool(row[4]),
        recipient_hidden=bool(row[5]),
        sender=account_from_row(row, 6),
        recipient=account_from_row(row, 6 + _ACCOUNT_WIDTH),
    )


@implementer(IDirectMessageStore)
class DirectMessagesStore(SQLBase):
    """
    The direct messages part of :class:`~distwit.store.sql.SQLStore`.
    """

    def _select(self, txn: Any, where: str, args: tuple[Any, ...]) -> list[DirectMessage]:
        txn.execute(self._q(f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGES_FROM} {where}"), args)
        return [_message(row) for row in txn.fetchall()]

    def create_direct_message(
        self,
        sender_id: int,
        recipient_id: int,
        text: str,
        created_at: int,
        origin_key: str,
        notice: "QueuedNotice | None" = None,
    ) -> "Deferred[tuple[DirectMessage, bool]]":
        def interaction(txn: Any) -> tuple[DirectMessage, bool]:
            where = "WHERE d.sender_id = ? AND d.origin_key = ?"
            found = self._select(txn, where, (sender_id, origin_key))
            if found:
                return found[0], False
            # An id from the status ids' clock: time-ordered like
            # Twitter's, and (its row locked to commit) visible in id
            # order, so since_id polling never skips a message.
            message_id = self._next_status_id(txn, created_at)
            txn.execute(
                self._q(
                    "INSERT INTO direct_messages (id, sender_id, recipient_id, text,"
                    " created_at, origin_key) VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (message_id, sender_id, recipient_id, text, created_at, origin_key),
            )
            if notice is not None:
                self._insert_notice(txn, *notice)
            [message] = self._select(txn, "WHERE d.id = ?", (message_id,))
            return message, True

        return self._run(interaction)

    def get_direct_message(self, message_id: int) -> "Deferred[DirectMessage | None]":
        def interaction(txn: Any) -> DirectMessage | None:
            found = self._select(txn, "WHERE d.id = ?", (message_id,))
            return found[0] if found else None

        return self._run(interaction)

    def direct_messages(
        self,
        account_id: int,
        sent: bool,
        count: int,
        since_id: int | None,
        max_id: int | None,
        offset: int = 0,
    ) -> "Deferred[list[DirectMessage]]":
        mine, hidden = ("sender_id", "sender_hidden") if sent else (
            "recipient_id", "recipient_hidden"
        )

        def interaction(txn: Any) -> list[DirectMessage]:
            return self._select(
                txn,
                f"WHERE d.{mine} = ? AND d.{hidden} = 0 AND d.id > ? AND d.id <= ?"
                " ORDER BY d.id DESC LIMIT ? OFFSET ?",
                (
                    account_id,
                    since_id or 0,
                    max_id if max_id is not None else 2**63 - 1,
                    count,
                    offset,
                ),
            )

        return self._run(interaction)

    def hide_direct_message(self, message_id: int, account_id: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            hidden = 0
            for mine, column in (("sender_id", "sender_hidden"),
                                 ("recipient_id", "recipient_hidden")):
                txn.execute(
                    self._q(
                        f"UPDATE direct_messages SET {column} = 1"
                        f" WHERE id = ? AND {mine} = ? AND {column} = 0"
                    ),
                    (message_id, account_id),
                )
                hidden += max(int(txn.rowcount), 0)
            return hidden > 0

        return self._run(interaction)
