"""
The fetcher without sockets: range planning in pages, retries with
backoff, the bound per peer, tombstones, stopping.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.federation.range_feed import FeedItem, render_range_feed
from distwit.model import Account
from distwit.federation.copier import Fetcher

from tests.fakes import ScriptedClient
from tests.support import synchronous_sqlite_store

T0 = 1_700_000_000_000


def author(handle: str) -> Account:
    """
    ``handle`` as its own server sees it (a local account there).
    """
    return Account(id=1, handle=handle, authority="", name=handle, created_at=T0,
                   last_seq=0, statuses_count=0, followers_count=0, friends_count=0)


class FeedServer:
    """
    A peer's range feeds, made on demand; ``missing`` numbers are not
    there, ``deleted`` maps a deletion record's number to its target.
    """

    def __init__(self, handle: str, authority: str, last: int) -> None:
        self.handle, self.authority, self.last = handle, authority, last
        self.missing: set[int] = set()
        self.deleted: dict[int, int] = {}
        self.asked: list[tuple[int, int]] = []

    def __call__(self, url: str, body: Any) -> bytes:
        query = parse_qs(urlsplit(url).query)
        first, last = int(query["from"][0]), int(query["to"][0])
        self.asked.append((first, last))
        # As the real server: capped at the author's last, first - 1 when
        # it has nothing from first on.
        last = max(min(last, self.last), first - 1)
        items = []
        for n in range(first, last + 1):
            if n in self.missing:
                continue
            if n in self.deleted:
                items.append(FeedItem(seq=n, text="", created_at=T0, deleted=True,
                                      deletes=self.deleted[n]))
            else:
                items.append(FeedItem(seq=n, text=f"message {n}", created_at=T0,
                                      deleted=False))
        return render_range_feed(author(self.handle), self.authority,
                                 f"http://{self.authority}", items, first, last, False)


class FetcherTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.fetcher = Fetcher(self.store, self.client, self.clock, "s1.test", per_peer=2)
        self.alice = self.successResultOf(self.store.create_user("alice", "", "h", T0))

    def remote(self, handle: str, authority: str, last: int) -> tuple[Account, FeedServer]:
        account = self.successResultOf(self.store.ensure_account(handle, authority, T0))
        self.successResultOf(self.store.follow(self.alice.id, account.id, T0))
        account = self.successResultOf(
            self.store.note_remote_last(handle, authority, last, f"http://{authority}")
        )
        server = FeedServer(handle, authority, last)
        self.client.routes[f"http://{authority}/s2s/feed/{handle}.rss"] = server
        return account, server

    def synced(self, account: Account) -> int:
        return self.successResultOf(self.store.get_account(account.id)).synced_seq

    def test_pages(self) -> None:
        """
        450 missing messages come in pages of at most 200: 1-200, 201-400,
        401-450; then everything is held.
        """
        carol, server = self.remote("carol", "s3.test", 450)
        self.fetcher.want(carol)
        self.assertEqual(server.asked, [(1, 200), (201, 400), (401, 450)])
        self.assertEqual(self.synced(carol), 450)
        home = self.successResultOf(self.store.home_timeline(self.alice.id, 200, None, None))
        self.assertEqual(len(home), 200)

    def test_gap_backs_off_and_retries(self) -> None:
        """
        A peer that lacks a message it announced: what came before the gap
        is kept, the rest stays wanted; retries wait 2, 4, 8 seconds (want()
        in between does nothing), and once the message is there the sweep
        completes the copy.
        """
        carol, server = self.remote("carol", "s3.test", 10)
        server.missing = {5}
        self.fetcher.want(carol)
        self.assertEqual(self.synced(carol), 4)
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        for delay in (2, 4, 8):
            asked = len(server.asked)
            self.fetcher.want(carol)
            self.clock.advance(delay - 0.5)
            self.successResultOf(self.fetcher.sweep())
            self.assertEqual(len(server.asked), asked, f"retried before {delay}s")
            self.clock.advance(0.5)
            self.successResultOf(self.fetcher.sweep())
            self.assertEqual(len(server.asked), asked + 1, f"not retried after {delay}s")
        server.missing = set()
        self.clock.advance(16)
        self.successResultOf(self.fetcher.sweep())
        self.assertEqual(self.synced(carol), 10)

    def test_wrong_feed_stays_wanted(self) -> None:
        """
        A page for another author is refused: nothing stored, still wanted.
        """
        carol, server = self.remote("carol", "s3.test", 3)
        self.client.routes["http://s3.test/s2s/feed/carol.rss"] = FeedServer("dave", "s3.test", 3)
        self.fetcher.want(carol)
        self.assertEqual(self.synced(carol), 0)
        wanted = self.successResultOf(self.store.wanted(10))
        self.assertEqual([a.id for a in wanted], [carol.id])

    def test_bound_per_peer(self) -> None:
        """
        At most ``per_peer`` fetches run at once against one server; other
        servers' go on meanwhile.
        """
        accounts = [self.remote(f"u{i}", "s3.test", 1)[0] for i in range(3)]
        other, _ = self.remote("dave", "s4.test", 1)
        self.client.hold = True
        for account in [*accounts, other]:
            self.fetcher.want(account)
        hosts = [urlsplit(url).netloc for url, _, _ in self.client.pending]
        self.assertEqual(sorted(hosts), ["s3.test", "s3.test", "s4.test"])

    def test_tombstones(self) -> None:
        """
        A deletion record in a page removes the message it deletes from a
        local follower's home timeline.
        """
        carol, server = self.remote("carol", "s3.test", 3)
        server.deleted = {3: 1}
        self.fetcher.want(carol)
        home = self.successResultOf(self.store.home_timeline(self.alice.id, 20, None, None))
        self.assertEqual([p.text for p in home], ["message 2"])

    def test_stop_cancels(self) -> None:
        """
        stop() cancels the fetches in flight and fires when they are done;
        nothing is wanted after.
        """
        carol, _ = self.remote("carol", "s3.test", 3)
        self.client.hold = True
        self.fetcher.want(carol)
        (pending,) = self.client.pending
        self.successResultOf(self.fetcher.stop())
        self.assertTrue(pending[2].called)
        self.fetcher.want(carol)
        self.assertEqual(len(self.client.pending), 1)

    def test_next_page_asked_while_storing(self) -> None:
        """
        The next page is asked for before the one in hand is stored (the
        peer renders while this server writes); the copy is the same.
        """
        carol, server = self.remote("carol", "s3.test", 450)
        self.client.hold = True
        asked_when_storing: list[list[str]] = []
        store_items = self.store.store_remote_items

        def store(*args: Any, **kwargs: Any) -> Any:
            asked_when_storing.append([url for url, _, d in self.client.pending if not d.called])
            return store_items(*args, **kwargs)

        self.store.store_remote_items = store  # type: ignore[method-assign]
        self.fetcher.want(carol)
        for expected in range(3):
            url, _, d = self.client.pending[expected]
            d.callback(server(url, None))
        self.assertEqual(server.asked, [(1, 200), (201, 400), (401, 450)])
        self.assertEqual(asked_when_storing, [
            ["http://s3.test/s2s/feed/carol.rss?from=201&to=400"],
            ["http://s3.test/s2s/feed/carol.rss?from=401&to=450"],
            [],
        ])
        self.assertEqual(self.synced(carol), 450)

    def test_stop_cancels_the_page_asked_ahead(self) -> None:
        """
        Stopping while a page is stored and the next is on its way cancels
        that one too, and nothing is logged as an error.
        """
        carol, server = self.remote("carol", "s3.test", 450)
        self.client.hold = True
        self.fetcher.want(carol)
        url, _, d = self.client.pending[0]
        d.callback(server(url, None))
        ahead = self.client.pending[1][2]
        self.successResultOf(self.fetcher.stop())
        self.assertTrue(ahead.called)
        self.assertEqual(self.synced(carol), 200)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_denied_claim_forgotten(self) -> None:
        """
        A ping server claimed carol's last number is 2**63 - 1; her server
        serves up to 3.  Messages 1-3 are copied, the claim is forgotten
        (nothing is wanted, nothing backs off), and her real message 4 is
        fetched as soon as it is reported.
        """
        carol, server = self.remote("carol", "s3.test", 3)
        self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 2**63 - 1, "http://s3.test")
        )
        self.fetcher.want(carol)
        self.assertEqual(server.asked, [(1, 200)])
        carol = self.successResultOf(self.store.get_account(carol.id))
        self.assertEqual((carol.synced_seq, carol.last_seq), (3, 3))
        self.assertEqual(self.successResultOf(self.store.wanted(10)), [])
        server.last = 4
        carol = self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 4, "http://s3.test")
        )
        self.fetcher.want(carol)
        self.assertEqual(self.synced(carol), 4)
        home = self.successResultOf(self.store.home_timeline(self.alice.id, 20, None, None))
        self.assertEqual(home[0].text, "message 4")

    def test_denied_claim_when_held_everything(self) -> None:
        """
        Held up to carol's real last (5), a claim of 2**63 - 1 gets an empty
        page: the claim goes back to 5, and 6 is fetched when it comes.
        """
        carol, server = self.remote("carol", "s3.test", 5)
        self.fetcher.want(carol)
        self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 2**63 - 1, "http://s3.test")
        )
        self.fetcher.want(carol)
        carol = self.successResultOf(self.store.get_account(carol.id))
        self.assertEqual((carol.synced_seq, carol.last_seq), (5, 5))
        server.last = 6
        carol = self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 6, "http://s3.test")
        )
        self.fetcher.want(carol)
        self.assertEqual(self.synced(carol), 6)

    def test_copy_started_past_the_author(self) -> None:
        """
        Followed on a claimed last of 10**15 (so the copy starts 20 before
        it), carol's server has nothing there: the claim and the start are
        both forgotten, and her next message is copied.
        """
        carol, server = self.remote("carol", "s3.test", 2)
        self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 10**15, "http://s3.test")
        )
        self.successResultOf(self.store.start_sync_at(carol.id, 10**15 - 20))
        self.fetcher.want(carol)
        carol = self.successResultOf(self.store.get_account(carol.id))
        self.assertEqual((carol.synced_seq, carol.last_seq), (0, 0))
        server.last = 3
        carol = self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 3, "http://s3.test")
        )
        self.fetcher.want(carol)
        self.assertEqual(self.synced(carol), 3)
