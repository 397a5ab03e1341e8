"""
Phones, IM and e-mail (migration 018, docs/design/devices.md): addresses
and their codes, what users chose, the devices' outbox, and the sweep that
finds what new posts, direct messages and follows call for.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import (
    DeviceAddress,
    DeviceAddressTaken,
    DeviceCode,
    DeviceFollowEvent,
    DeviceMessage,
    DevicePostEvent,
    DeviceQueueHealth,
    DeviceRecipient,
    DeviceSettings,
    DeviceSweep,
    IDeviceStore,
)
from distwit.store.sql.base import (
    ACCOUNT_COLUMNS,
    POST_COLUMNS,
    POSTS_FROM,
    SQLBase,
    account_from_row,
)
from distwit.store.sql.direct import _MESSAGE_COLUMNS, _MESSAGES_FROM, _message

#: The cursors of the sweep.
POSTS_CURSOR = "posts"
MESSAGES_CURSOR = "direct_messages"

#: A week, over which SMS are counted for the cap (ms).
WEEK_MS = 7 * 24 * 3600 * 1000

#: The longest error text kept with a message.
MAX_ERROR = 500

_ADDRESS_COLUMNS = "kind, address, verified, created_at"
_MESSAGE_ROW = (
    "id, account_id, kind, address, category, text, subject, unsubscribe, dedupe_key,"
    " created_at, due_at, tries"
)

#: Who each new post in ``(?, ?]`` may go to, and why: followers with its
#: author's notifications on, the accounts it mentions, the author of the
#: post it replies to; all local, all with a verified address (the others
#: could be sent nothing), never the author.
_POST_RECIPIENTS = """
SELECT p.id, f.follower_id, 'friend' FROM posts p
 JOIN follows f ON f.followee_id = p.author_id AND f.notifications = 1
 WHERE p.id > ? AND p.id <= ? AND p.kind = 'post' AND p.deleted_at IS NULL
 AND f.follower_id <> p.author_id
 AND EXISTS (SELECT 1 FROM device_addresses d WHERE d.account_id = f.follower_id
  AND d.verified = 1)
UNION ALL
SELECT p.id, m.account_id, 'mention' FROM posts p JOIN mentions m ON m.post_id = p.id
 WHERE p.id > ? AND p.id <= ? AND p.kind = 'post' AND p.deleted_at IS NULL
 AND m.account_id <> p.author_id
 AND EXISTS (SELECT 1 FROM device_addresses d WHERE d.account_id = m.account_id
  AND d.verified = 1)
UNION ALL
SELECT p.id, q.author_id, 'reply' FROM posts p JOIN posts q ON q.id = p.in_reply_to_status_id
 AND p.in_reply_to_status_id IS NOT NULL
 WHERE p.id > ? AND p.id <= ? AND p.kind = 'post' AND p.deleted_at IS NULL
 AND q.author_id <> p.author_id
 AND EXISTS (SELECT 1 FROM device_addresses d WHERE d.account_id = q.author_id
  AND d.verified = 1)
"""


def _address(row: Any) -> DeviceAddress:
    return DeviceAddress(
        kind=row[0], address=row[1], verified=bool(row[2]), created_at=int(row[3])
    )


def _device_message(row: Any) -> DeviceMessage:
    return DeviceMessage(
        id=int(row[0]), account_id=int(row[1]), kind=row[2], address=row[3],
        category=row[4], text=row[5], subject=row[6], unsubscribe=row[7],
        dedupe_key=row[8], created_at=int(row[9]), due_at=int(row[10]), tries=int(row[11]),
    )


def _settings(row: Any) -> DeviceSettings:
    if row is None:
        return DeviceSettings()
    try:
        choices = {str(k): bool(v) for k, v in json.loads(row[4]).items()}
    except (ValueError, AttributeError):
        choices = {}
    return DeviceSettings(
        delivery_device=row[0],
        quiet_start=None if row[1] is None else int(row[1]),
        quiet_end=None if row[2] is None else int(row[2]),
        utc_offset=int(row[3]),
        choices=choices,
    )


@implementer(IDeviceStore)
class DevicesStore(SQLBase):
    """
    The devices part of :class:`~distwit.store.sql.SQLStore`.
    """

    # Addresses

    def _owner(self, txn: Any, kind: str, address: str) -> int | None:
        txn.execute(
            self._q(
                "SELECT account_id FROM device_addresses WHERE kind = ? AND address = ?"
                " AND verified = 1"
            ),
            (kind, address),
        )
        row = txn.fetchone()
        return None if row is None else int(row[0])

    def _cancel_to(self, txn: Any, kind: str, address: str, now: int = 0) -> None:
        txn.execute(
            self._q(
                "UPDATE device_outbox SET state = 'cancelled', finished_at = ?"
                " WHERE kind = ? AND address = ? AND state = 'pending'"
            ),
            (now, kind, address),
        )

    def _one_address(self, txn: Any, account_id: int, kind: str) -> DeviceAddress | None:
        txn.execute(
            self._q(
                f"SELECT {_ADDRESS_COLUMNS} FROM device_addresses"
                " WHERE account_id = ? AND kind = ?"
            ),
            (account_id, kind),
        )
        row = txn.fetchone()
        return None if row is None else _address(row)

    def add_device_address(
        self, account_id: int, kind: str, address: str, code_hash: str, expires_at: int,
        token: str, created_at: int,
    ) -> "Deferred[DeviceAddress]":
        def interaction(txn: Any) -> DeviceAddress:
            owner = self._owner(txn, kind, address)
            if owner is not None and owner != account_id:
                raise DeviceAddressTaken(address)
            old = self._one_address(txn, account_id, kind)
            if old is not None:
                if old.address != address:
                    self._cancel_to(txn, kind, old.address, created_at)
                txn.execute(
                    self._q("DELETE FROM device_addresses WHERE account_id = ? AND kind = ?"),
                    (account_id, kind),
                )
            txn.execute(
                self._q(
                    "INSERT INTO device_addresses (account_id, kind, address, verified,"
                    " code_hash, code_expires_at, code_tries, unsubscribe_token, created_at)"
                    " VALUES (?, ?, ?, 0, ?, ?, 0, ?, ?)"
                ),
                (account_id, kind, address, code_hash, expires_at, token, created_at),
            )
            if old is not None and old.address != address:
                self._fall_back(txn, account_id, kind)
            return DeviceAddress(kind, address, False, created_at)

        return self._run(interaction)

    def _fall_back(self, txn: Any, account_id: int, kind: str) -> None:
        """
        The account has no verified address of ``kind`` any more: its
        friends' posts no longer go there.
        """
        txn.execute(
            self._q(
                "UPDATE device_settings SET delivery_device = 'none'"
                " WHERE account_id = ? AND delivery_device = ?"
            ),
            (account_id, kind),
        )

    def device_code(self, account_id: int, kind: str) -> "Deferred[DeviceCode | None]":
        def interaction(txn: Any) -> DeviceCode | None:
            txn.execute(
                self._q(
                    f"SELECT {_ADDRESS_COLUMNS}, code_hash, code_expires_at, code_tries"
                    " FROM device_addresses WHERE account_id = ? AND kind = ?"
                ),
                (account_id, kind),
            )
            row = txn.fetchone()
            if row is None:
                return None
            return DeviceCode(_address(row), row[4], int(row[5]), int(row[6]))

        return self._run(interaction)

    def count_code_try(self, account_id: int, kind: str) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(
                self._q(
                    "UPDATE device_addresses SET code_tries = code_tries + 1"
                    " WHERE account_id = ? AND kind = ? RETURNING code_tries"
                ),
                (account_id, kind),
            )
            row = txn.fetchone()
            return 0 if row is None else int(row[0])

        return self._run(interaction)

    def verify_device_address(self, account_id: int, kind: str) -> "Deferred[DeviceAddress]":
        def interaction(txn: Any) -> DeviceAddress:
            found = self._one_address(txn, account_id, kind)
            if found is None:
                raise DeviceAddressTaken("")
            owner = self._owner(txn, kind, found.address)
            if owner is not None and owner != account_id:
                raise DeviceAddressTaken(found.address)
            try:
                txn.execute(
                    self._q(
                        "UPDATE device_addresses SET verified = 1, code_hash = '',"
                        " code_tries = 0 WHERE account_id = ? AND kind = ?"
                    ),
                    (account_id, kind),
                )
            except Exception as e:
                if self._engine.is_unique_violation(e):
                    raise DeviceAddressTaken(found.address) from None
                raise
            # Other accounts' claims on it waited for a code they cannot have.
            txn.execute(
                self._q(
                    "DELETE FROM device_addresses WHERE kind = ? AND address = ?"
                    " AND account_id <> ? AND verified = 0"
                ),
                (kind, found.address, account_id),
            )
            return DeviceAddress(kind, found.address, True, found.created_at)

        return self._run(interaction)

    def remove_device_address(self, account_id: int, kind: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            found = self._one_address(txn, account_id, kind)
            if found is None:
                return
            self._cancel_to(txn, kind, found.address)
            txn.execute(
                self._q("DELETE FROM device_addresses WHERE account_id = ? AND kind = ?"),
                (account_id, kind),
            )
            self._fall_back(txn, account_id, kind)

        return self._run(interaction)

    def device_addresses(self, account_id: int) -> "Deferred[list[DeviceAddress]]":
        def interaction(txn: Any) -> list[DeviceAddress]:
            txn.execute(
                self._q(
                    f"SELECT {_ADDRESS_COLUMNS} FROM device_addresses WHERE account_id = ?"
                    " ORDER BY kind"
                ),
                (account_id,),
            )
            return [_address(row) for row in txn.fetchall()]

        return self._run(interaction)

    def device_owner(self, kind: str, address: str) -> "Deferred[int | None]":
        return self._run(self._owner, kind, address)

    def device_by_token(self, token: str) -> "Deferred[tuple[int, str, str] | None]":
        def interaction(txn: Any) -> tuple[int, str, str] | None:
            txn.execute(
                self._q(
                    "SELECT account_id, kind, address FROM device_addresses"
                    " WHERE unsubscribe_token = ? AND verified = 1"
                ),
                (token,),
            )
            row = txn.fetchone()
            return None if row is None else (int(row[0]), row[1], row[2])

        return self._run(interaction)

    # Choices

    def _read_settings(self, txn: Any, account_id: int) -> DeviceSettings:
        txn.execute(
            self._q(
                "SELECT delivery_device, quiet_start, quiet_end, utc_offset, choices"
                " FROM device_settings WHERE account_id = ?"
            ),
            (account_id,),
        )
        return _settings(txn.fetchone())

    def _write_settings(self, txn: Any, account_id: int, settings: DeviceSettings) -> None:
        txn.execute(
            self._q(
                "INSERT INTO device_settings (account_id, delivery_device, quiet_start,"
                " quiet_end, utc_offset, choices) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account_id) DO UPDATE SET"
                " delivery_device = excluded.delivery_device,"
                " quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,"
                " utc_offset = excluded.utc_offset, choices = excluded.choices"
            ),
            (account_id, settings.delivery_device, settings.quiet_start, settings.quiet_end,
             settings.utc_offset, json.dumps(dict(settings.choices), sort_keys=True)),
        )

    def device_settings(self, account_id: int) -> "Deferred[DeviceSettings]":
        return self._run(self._read_settings, account_id)

    def save_device_settings(
        self, account_id: int, settings: DeviceSettings
    ) -> "Deferred[None]":
        return self._run(self._write_settings, account_id, settings)

    def stop_device(self, kind: str, address: str) -> "Deferred[int | None]":
        def interaction(txn: Any) -> int | None:
            # Whoever owns it: nothing more goes there (a code someone else
            # asked for included).
            self._cancel_to(txn, kind, address)
            owner = self._owner(txn, kind, address)
            if owner is None:
                return None
            settings = self._read_settings(txn, owner)
            choices = dict(settings.choices)
            for choice in ("mentions", "direct_messages", "followers"):
                choices[f"{kind}_{choice}"] = False
            delivery = "none" if settings.delivery_device == kind else settings.delivery_device
            self._write_settings(
                txn, owner,
                DeviceSettings(delivery, settings.quiet_start, settings.quiet_end,
                               settings.utc_offset, choices),
            )
            return owner

        return self._run(interaction)

    def set_device_notifications(
        self, follower_id: int, followee_id: int, on: bool
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q(
                    "UPDATE follows SET notifications = ? WHERE follower_id = ?"
                    " AND followee_id = ?"
                ),
                (1 if on else 0, follower_id, followee_id),
            )
            return bool(txn.rowcount)

        return self._run(interaction)

    def device_notifications_on(
        self, account_id: int, friend_ids: "list[int]"
    ) -> "Deferred[set[int]]":
        def interaction(txn: Any) -> set[int]:
            found: set[int] = set()
            ids = sorted(set(friend_ids))
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" for _ in chunk)
                txn.execute(
                    self._q(
                        "SELECT followee_id FROM follows WHERE follower_id = ?"
                        f" AND notifications = 1 AND followee_id IN ({marks})"
                    ),
                    [account_id, *chunk],
                )
                found.update(int(row[0]) for row in txn.fetchall())
            return found

        return self._run(interaction)

    # The outbox

    def _queue(
        self, txn: Any, account_id: int, kind: str, address: str, category: str, text: str,
        subject: str, unsubscribe: str, dedupe_key: str, due_at: int, now: int,
    ) -> bool:
        txn.execute(
            self._q(
                "INSERT INTO device_outbox (account_id, kind, address, category, text,"
                " subject, unsubscribe, dedupe_key, created_at, due_at, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
            ),
            (account_id, kind, address, category, text, subject, unsubscribe, dedupe_key,
             now, due_at, due_at),
        )
        return txn.fetchone() is not None

    def queue_device_message(
        self, account_id: int, kind: str, address: str, category: str, text: str,
        subject: str, unsubscribe: str, dedupe_key: str, due_at: int, now: int,
    ) -> "Deferred[bool]":
        return self._run(
            self._queue, account_id, kind, address, category, text, subject, unsubscribe,
            dedupe_key, due_at, now,
        )

    def _recipients(
        self, txn: Any, account_ids: "set[int]", now: int
    ) -> dict[int, DeviceRecipient]:
        found: dict[int, DeviceRecipient] = {}
        for account_id in sorted(account_ids):
            txn.execute(
                self._q(
                    "SELECT kind, address, unsubscribe_token FROM device_addresses"
                    " WHERE account_id = ? AND verified = 1"
                ),
                (account_id,),
            )
            addresses, tokens = {}, {}
            for kind, address, token in txn.fetchall():
                addresses[kind] = address
                tokens[kind] = token
            sms_week, cap_told = 0, False
            if "sms" in addresses:
                txn.execute(
                    self._q(
                        "SELECT category, COUNT(*) FROM device_outbox WHERE account_id = ?"
                        " AND kind = 'sms' AND created_at > ?"
                        " AND state IN ('pending', 'sent') AND category NOT IN ('code', 'answer')"
                        " GROUP BY category"
                    ),
                    (account_id, now - WEEK_MS),
                )
                for category, count in txn.fetchall():
                    if category == "cap":
                        cap_told = True
                    else:
                        sms_week += int(count)
            found[account_id] = DeviceRecipient(
                account_id, self._read_settings(txn, account_id), addresses, tokens,
                sms_week, cap_told,
            )
        return found

    def device_recipient(self, account_id: int, now: int) -> "Deferred[DeviceRecipient]":
        def interaction(txn: Any) -> DeviceRecipient:
            recipient: DeviceRecipient = self._recipients(txn, {account_id}, now)[account_id]
            return recipient

        return self._run(interaction)

    def _cursor(self, txn: Any, name: str) -> int:
        txn.execute(self._q("SELECT position FROM device_cursor WHERE name = ?"), (name,))
        row = txn.fetchone()
        return 0 if row is None else int(row[0])

    def device_sweep(self, limit: int, now: int) -> "Deferred[DeviceSweep]":
        def interaction(txn: Any) -> DeviceSweep:
            posts_from = self._cursor(txn, POSTS_CURSOR)
            messages_from = self._cursor(txn, MESSAGES_CURSOR)
            # Posts and direct messages take their ids from the id clock,
            # whose lock is held to commit: every row up to the highest id
            # seen now is visible (the outbox's sweep reads posts so too).
            txn.execute("SELECT MAX(id) FROM posts")
            highest = txn.fetchone()[0]
            posts_to = posts_from if highest is None else max(posts_from, int(highest))
            # At most `limit` ids further on: the ids of one window.
            txn.execute(
                self._q(
                    "SELECT id FROM posts WHERE id > ? AND id <= ? ORDER BY id LIMIT 1"
                    " OFFSET ?"
                ),
                (posts_from, posts_to, limit - 1),
            )
            row = txn.fetchone()
            if row is not None:
                posts_to = int(row[0])
            txn.execute(self._q(_POST_RECIPIENTS), (posts_from, posts_to) * 3)
            wanted: dict[int, list[tuple[int, str]]] = {}
            for post_id, account_id, why in txn.fetchall():
                wanted.setdefault(int(post_id), []).append((int(account_id), why))
            posts: list[DevicePostEvent] = []
            if wanted:
                marks = ", ".join("?" for _ in wanted)
                txn.execute(
                    self._q(
                        f"SELECT {POST_COLUMNS} FROM {POSTS_FROM}"
                        f" WHERE p.id IN ({marks}) ORDER BY p.id"
                    ),
                    sorted(wanted),
                )
                for post in self._posts_from_rows(txn, txn.fetchall()):
                    posts.append(DevicePostEvent(post, tuple(wanted[post.id])))
            txn.execute("SELECT MAX(id) FROM direct_messages")
            highest = txn.fetchone()[0]
            messages_to = (
                messages_from if highest is None else max(messages_from, int(highest))
            )
            txn.execute(
                self._q(
                    f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGES_FROM}"
                    " WHERE d.id > ? AND d.id <= ? ORDER BY d.id LIMIT ?"
                ),
                (messages_from, messages_to, limit),
            )
            messages = [_message(row) for row in txn.fetchall()]
            if len(messages) >= limit:
                messages_to = messages[-1].id
            messages = [m for m in messages if m.recipient.is_local]
            txn.execute(
                self._q(
                    f"SELECT f.followee_id, f.created_at, {ACCOUNT_COLUMNS} FROM follows f"
                    " JOIN accounts a ON a.id = f.follower_id"
                    " WHERE f.devices_seen = 0"
                    " ORDER BY f.created_at, f.follower_id, f.followee_id LIMIT ?"
                ),
                (limit,),
            )
            follows = [
                DeviceFollowEvent(account_from_row(row, 2), int(row[0]), int(row[1]))
                for row in txn.fetchall()
            ]
            concerned = {a for event in posts for a, _ in event.recipients}
            concerned.update(m.recipient.id for m in messages)
            concerned.update(f.followee_id for f in follows)
            return DeviceSweep(
                posts_from, posts_to, messages_from, messages_to, tuple(posts),
                tuple(messages), tuple(follows), self._recipients(txn, concerned, now),
            )

        return self._run(interaction)

    def _move_cursor(self, txn: Any, name: str, old: int, new: int) -> bool:
        if old == new:
            return self._cursor(txn, name) == old
        txn.execute(
            self._q(
                "UPDATE device_cursor SET position = ? WHERE name = ? AND position = ?"
                " RETURNING position"
            ),
            (new, name, old),
        )
        if txn.fetchone() is not None:
            return True
        if old == 0 and self._cursor(txn, name) == 0:
            txn.execute(
                self._q(
                    "INSERT INTO device_cursor (name, position) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING RETURNING position"
                ),
                (name, new),
            )
            return txn.fetchone() is not None
        return False

    def queue_device_sweep(
        self, sweep: DeviceSweep, messages: "list[tuple[Any, ...]]", now: int
    ) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            if not self._move_cursor(txn, POSTS_CURSOR, sweep.posts_from, sweep.posts_to):
                return False
            if not self._move_cursor(
                txn, MESSAGES_CURSOR, sweep.messages_from, sweep.messages_to
            ):
                # (The posts' cursor moved in this transaction: it rolls
                # back with the rest.)
                raise _Overtaken()
            for follow in sweep.follows:
                txn.execute(
                    self._q(
                        "UPDATE follows SET devices_seen = 1 WHERE follower_id = ?"
                        " AND followee_id = ? AND devices_seen = 0"
                    ),
                    (follow.follower.id, follow.followee_id),
                )
            for message in messages:
                row: tuple[Any, ...] = (*message, now)
                self._queue(txn, *row)
            return True

        d = self._run(interaction)

        def overtaken(failure: Any) -> bool:
            failure.trap(_Overtaken)
            return False

        return d.addErrback(overtaken)

    def claim_device_messages(
        self, now: int, lease_until: int, limit: int
    ) -> "Deferred[list[DeviceMessage]]":
        def interaction(txn: Any) -> list[DeviceMessage]:
            txn.execute(
                self._q(
                    f"SELECT {_MESSAGE_ROW}, next_at FROM device_outbox"
                    " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?"
                ),
                (now, limit),
            )
            claimed = []
            for row in txn.fetchall():
                # Taken only if no other process took it since the read.
                txn.execute(
                    self._q(
                        "UPDATE device_outbox SET next_at = ? WHERE id = ? AND next_at = ?"
                        " AND state = 'pending' RETURNING id"
                    ),
                    (lease_until, row[0], row[12]),
                )
                if txn.fetchone() is not None:
                    claimed.append(_device_message(row))
            return claimed

        return self._run(interaction)

    def _finish(self, message_id: int, state: str, now: int, error: str) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "UPDATE device_outbox SET state = ?, finished_at = ?, last_error = ?"
                    " WHERE id = ? AND state = 'pending'"
                ),
                (state, now, error[:MAX_ERROR], message_id),
            )

        return self._run(interaction)

    def device_message_sent(self, message_id: int, now: int) -> "Deferred[None]":
        return self._finish(message_id, "sent", now, "")

    def device_message_given_up(
        self, message_id: int, now: int, error: str
    ) -> "Deferred[None]":
        return self._finish(message_id, "given_up", now, error)

    def device_message_failed(
        self, message_id: int, next_at: int, error: str
    ) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q(
                    "UPDATE device_outbox SET tries = tries + 1, next_at = ?, last_error = ?"
                    " WHERE id = ? AND state = 'pending'"
                ),
                (next_at, error[:MAX_ERROR], message_id),
            )

        return self._run(interaction)

    def device_messages_due_now(self, now: int) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(
                self._q(
                    "UPDATE device_outbox SET next_at = ? WHERE state = 'pending'"
                    " AND next_at > ? AND next_at > due_at"
                ),
                (now, now),
            )
            txn.execute("SELECT COUNT(*) FROM device_outbox WHERE state = 'pending'")
            return int(txn.fetchone()[0])

        return self._run(interaction)

    def device_queue_health(self, now: int) -> "Deferred[DeviceQueueHealth]":
        def interaction(txn: Any) -> DeviceQueueHealth:
            txn.execute(
                self._q(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN tries > 0 THEN 1 ELSE 0 END), 0),"
                    " MIN(CASE WHEN due_at <= ? THEN due_at END)"
                    " FROM device_outbox WHERE state = 'pending'"
                ),
                (now,),
            )
            pending, failing, oldest = txn.fetchone()
            txn.execute(
                self._q(
                    "SELECT state, COUNT(*) FROM device_outbox WHERE finished_at > ?"
                    " AND state IN ('sent', 'given_up') GROUP BY state"
                ),
                (now - WEEK_MS,),
            )
            finished = {row[0]: int(row[1]) for row in txn.fetchall()}
            return DeviceQueueHealth(
                pending=int(pending), failing=int(failing),
                given_up=finished.get("given_up", 0), sent=finished.get("sent", 0),
                oldest_due=None if oldest is None else int(oldest),
            )

        return self._run(interaction)

    def prune_device_outbox(self, before: int) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            txn.execute(
                self._q(
                    "DELETE FROM device_outbox WHERE state <> 'pending' AND finished_at < ?"
                ),
                (before,),
            )
            return max(int(txn.rowcount), 0)

        return self._run(interaction)


class _Overtaken(Exception):
    """
    Another process moved a cursor of the sweep first.
    """
