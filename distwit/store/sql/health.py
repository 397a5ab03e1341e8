"""
Operations: the admin flag of local users, and what the federation health
view reads (``peer_health``, the completeness of followed authors'
copies, the outbox by receiver).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from distwit.store.interfaces import AuthorCopy, IHealthStore, OutboxTarget, PeerRecord
from distwit.store.sql.base import SQLBase

_PEER_COLUMNS = (
    "authority, kind, url, last_success, last_failure, failures, latency_ms, last_error,"
    " certificate_error, updated_at"
)


@implementer(IHealthStore)
class HealthStore(SQLBase):
    def set_admin(self, handle: str, admin: bool) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q(
                    "UPDATE accounts SET admin = ? WHERE handle_key = ? AND authority = ''"
                    " AND id IN (SELECT account_id FROM local_users)"
                ),
                (1 if admin else 0, handle.lower()),
            )
            return bool(txn.rowcount and txn.rowcount > 0)

        return self._run(interaction)

    def is_admin(self, account_id: int) -> "Deferred[bool]":
        def interaction(txn: Any) -> bool:
            txn.execute(
                self._q("SELECT admin FROM accounts WHERE id = ? AND authority = ''"),
                (account_id,),
            )
            row = txn.fetchone()
            return row is not None and bool(row[0])

        return self._run(interaction)

    def admins(self) -> "Deferred[list[str]]":
        def interaction(txn: Any) -> list[str]:
            txn.execute(
                "SELECT handle FROM accounts WHERE admin <> 0 AND authority = ''"
                " ORDER BY handle_key"
            )
            return [str(row[0]) for row in txn.fetchall()]

        return self._run(interaction)

    def save_peers(self, records: list[PeerRecord]) -> "Deferred[None]":
        def interaction(txn: Any) -> None:
            for r in records:
                txn.execute(
                    self._q(
                        f"INSERT INTO peer_health ({_PEER_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (authority, kind) DO UPDATE SET"
                        " url = excluded.url, last_success = excluded.last_success,"
                        " last_failure = excluded.last_failure, failures = excluded.failures,"
                        " latency_ms = excluded.latency_ms, last_error = excluded.last_error,"
                        " certificate_error = excluded.certificate_error,"
                        " updated_at = excluded.updated_at"
                    ),
                    (
                        r.authority, r.kind, r.url, r.last_success, r.last_failure, r.failures,
                        r.latency_ms, r.last_error, r.certificate_error, r.updated_at,
                    ),
                )

        return self._run(interaction)

    def peers(self) -> "Deferred[list[PeerRecord]]":
        def interaction(txn: Any) -> list[PeerRecord]:
            txn.execute(f"SELECT {_PEER_COLUMNS} FROM peer_health ORDER BY kind, authority")
            return [
                PeerRecord(
                    str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]),
                    int(row[5]), int(row[6]), str(row[7]), str(row[8]), int(row[9]),
                )
                for row in txn.fetchall()
            ]

        return self._run(interaction)

    def followed_authors(self) -> "Deferred[list[AuthorCopy]]":
        def interaction(txn: Any) -> list[AuthorCopy]:
            txn.execute(
                "SELECT a.handle, a.authority, a.synced_seq, a.last_seq, COUNT(*)"
                " FROM accounts a JOIN follows f ON f.followee_id = a.id"
                " JOIN accounts l ON l.id = f.follower_id AND (l.authority || '') = ''"
                " WHERE a.authority <> ''"
                " GROUP BY a.id, a.handle, a.authority, a.synced_seq, a.last_seq"
                " ORDER BY a.last_seq - a.synced_seq DESC, a.authority, a.handle"
            )
            return [
                AuthorCopy(str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]))
                for row in txn.fetchall()
            ]

        return self._run(interaction)

    def outbox_targets(self) -> "Deferred[list[OutboxTarget]]":
        def interaction(txn: Any) -> list[OutboxTarget]:
            txn.execute(
                "SELECT target, COUNT(*), MIN(created_at), MAX(attempts) FROM outbox"
                " GROUP BY target ORDER BY COUNT(*) DESC, target"
            )
            rows = txn.fetchall()
            found = []
            for target, depth, oldest, attempts in rows:
                txn.execute(
                    self._q(
                        "SELECT last_error FROM outbox WHERE target = ? AND last_error <> ''"
                        " ORDER BY id DESC LIMIT 1"
                    ),
                    (target,),
                )
                error = txn.fetchone()
                found.append(
                    OutboxTarget(
                        str(target), int(depth), int(oldest), int(attempts),
                        str(error[0]) if error else "",
                    )
                )
            return found

        return self._run(interaction)

    def federation_totals(self) -> "Deferred[tuple[int, int, int, int]]":
        def interaction(txn: Any) -> tuple[int, int, int, int]:
            txn.execute(
                "SELECT COUNT(*), COALESCE(SUM(last_seq - synced_seq), 0) FROM accounts"
                " WHERE authority <> '' AND synced_seq < last_seq AND home_url <> ''"
            )
            behind, missing = txn.fetchone()
            txn.execute("SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM outbox")
            depth, oldest = txn.fetchone()
            return int(behind), int(missing), int(depth), int(oldest)

        return self._run(interaction)
