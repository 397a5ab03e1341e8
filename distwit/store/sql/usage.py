"""
How much the server's own users use it, counted for NodeInfo
(``/nodeinfo/2.1``): local users, those active lately, their posts.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import IUsageStore, UsageCounts
from distwit.store.sql.base import SQLBase, status_id_floor


@implementer(IUsageStore)
class UsageStore(SQLBase):
    def usage_counts(self, month_start: int, halfyear_start: int) -> "Deferred[UsageCounts]":
        def interaction(txn: Any) -> UsageCounts:
            txn.execute("SELECT COUNT(*) FROM local_users")
            users = int(txn.fetchone()[0])
            # Status ids grow with the time a message was stored (their
            # high bits are the millisecond): "since" is a range of the
            # primary key.
            active = self._q(
                "SELECT COUNT(DISTINCT p.author_id) FROM posts p"
                " JOIN local_users u ON u.account_id = p.author_id WHERE p.id >= ?"
            )
            txn.execute(active, (status_id_floor(month_start),))
            month = int(txn.fetchone()[0])
            txn.execute(active, (status_id_floor(halfyear_start),))
            halfyear = int(txn.fetchone()[0])
            txn.execute(
                "SELECT COUNT(*) FROM posts p JOIN local_users u ON u.account_id = p.author_id"
                " WHERE p.kind = 'post' AND p.deleted_at IS NULL"
            )
            posts = int(txn.fetchone()[0])
            return UsageCounts(users, month, halfyear, posts)

        return self._run(interaction)
