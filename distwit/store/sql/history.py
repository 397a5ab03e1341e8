"""
Reach: what this server holds of remote authors beyond what the copier
keeps up to date (docs/design/reach.md).

- *History*: older messages of a remote author, fetched when someone reads
  past what is held.  They are stored below the run of numbers the copier
  holds, never touching ``last_seq`` or ``synced_seq``, with status ids
  derived from their created time so that ``max_id`` paging stays in order.
- *Direct* authors: those whose new numbers are learned from their own
  server rather than from the ping servers (another federation's).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.model import Account
from distwit.store.interfaces import IHistoryStore, NoSuchAccount
from distwit.store.sql.base import ACCOUNT_COLUMNS, account_from_row
from distwit.store.sql.posts import ID_SEQUENCE_BITS, status_id_floor
from distwit.store.sql.remote import RemoteStore

#: The offset within a millisecond's ids that a history post starts
#: looking down from: the top, as far as can be from the ids the id clock
#: hands out (from the bottom of the millisecond it stores in).
_HIGH = (1 << ID_SEQUENCE_BITS) - 1


@implementer(IHistoryStore)
class HistoryStore(RemoteStore):
    """
    The history and direct-author part of :class:`~distwit.store.sql.SQLStore`.
    """

    # History

    def _held_from(self, txn: Any, account: Account) -> int:
        synced = account.synced_seq
        if synced <= 0:
            return 1
        txn.execute(
            self._q("SELECT 1 FROM posts WHERE author_id = ? AND seq = ?"), (account.id, synced)
        )
        if txn.fetchone() is None:
            # The copy starts past synced_seq (start_sync_at) and has not
            # stored anything yet: nothing up to it is held.
            return synced + 1
        # The start of the run that ends at synced_seq: the highest held
        # number up to it whose predecessor is not held.
        txn.execute(
            self._q(
                "SELECT MAX(p.seq) FROM posts p WHERE p.author_id = ? AND p.seq <= ?"
                " AND NOT EXISTS (SELECT 1 FROM posts q"
                " WHERE q.author_id = p.author_id AND q.seq = p.seq - 1)"
            ),
            (account.id, synced),
        )
        row = txn.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else synced + 1

    def held_from(self, account_id: int) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            account = self._get_account(txn, account_id)
            if account.is_local:
                raise NoSuchAccount(account_id)
            return self._held_from(txn, account)

        return self._run(interaction)

    def store_history_items(
        self,
        account_id: int,
        items: "list[Any]",
        own_authority: str,
        stored_at: int,
    ) -> "Deferred[int]":
        def interaction(txn: Any) -> int:
            account = self._get_account(txn, account_id)
            if account.is_local:
                raise NoSuchAccount(account_id)
            start = self._held_from(txn, account)
            by_seq = {item.seq: item for item in items}
            # Only the numbers right below what is held, without a gap, so
            # that what is held stays one run (the next page goes on from
            # its start).
            run = []
            seq = start - 1
            while seq >= 1 and seq in by_seq:
                run.append(by_seq[seq])
                seq -= 1
            if not run:
                return 0
            txn.execute(self._q("SELECT MIN(id) FROM posts WHERE author_id = ?"), (account_id,))
            row = txn.fetchone()
            txn.execute(self._q("SELECT last_id FROM id_clock WHERE singleton = 1"))
            (clock_id,) = txn.fetchone()
            # Below every id of the author's held posts (newer numbers),
            # and below every id the clock will hand out (the next is at
            # least the last plus one, and at least the floor of now).
            upper = max(int(clock_id), status_id_floor(stored_at) - 1)
            if row is not None and row[0] is not None:
                upper = min(upper, int(row[0]) - 1)
            stored = 0
            for item in run:  # newest first: ids go down with the numbers
                post_id = min(status_id_floor(item.created_at) + _HIGH, upper)
                while post_id >= 1:
                    txn.execute(self._q("SELECT 1 FROM posts WHERE id = ?"), (post_id,))
                    if txn.fetchone() is None:
                        break
                    post_id -= 1
                if post_id < 1:
                    break
                self._insert_item(txn, account, item, own_authority, stored_at, post_id)
                upper = post_id - 1
                stored += 1
            txn.execute(
                self._q(
                    "UPDATE accounts SET statuses_count = (SELECT COUNT(*) FROM posts"
                    " WHERE author_id = ? AND deleted_at IS NULL AND kind <> 'profile')"
                    " WHERE id = ?"
                ),
                (account_id, account_id),
            )
            return stored

        return self._run(interaction)

    # Direct authors

    def set_direct(self, account_id: int, direct: bool) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            txn.execute(
                self._q("UPDATE accounts SET direct = ? WHERE id = ? AND authority <> ''"),
                (1 if direct else 0, account_id),
            )

        return self._run(interaction)

    def is_direct(self, account_id: int) -> "Deferred[bool | None]":
        def interaction(txn: Any) -> bool | None:
            txn.execute(self._q("SELECT direct FROM accounts WHERE id = ?"), (account_id,))
            row = txn.fetchone()
            return None if row is None or row[0] is None else bool(row[0])

        return self._run(interaction)

    def direct_subscriptions(self) -> "Deferred[list[Account]]":
        def interaction(txn: Any) -> list[Account]:
            txn.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.authority <> ''"
                " AND a.direct = 1 AND a.home_url <> ''"
                " AND EXISTS (SELECT 1 FROM follows f JOIN accounts l"
                " ON l.id = f.follower_id AND (l.authority || '') = ''"
                " WHERE f.followee_id = a.id) ORDER BY a.id"
            )
            return [account_from_row(row) for row in txn.fetchall()]

        return self._run(interaction)
