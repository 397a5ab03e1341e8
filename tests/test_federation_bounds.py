"""
What this server believes of strangers, in memory (a Clock, a scripted
client, a real synchronous SQLite store): a lying ping server, a registry
outage, a peer coming back, a forced follow.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from distwit.federation.copier import Fetcher
from distwit.federation.follows import Federation
from distwit.federation.sync import RegistryPingList, StaticPingList, SyncService
from distwit.s2s import paths
from distwit.s2s.interfaces import ForbiddenAuthority, S2SResponseError

from tests.fakes import ScriptedClient
from tests.support import synchronous_sqlite_store
from tests.test_fetch import T0, FeedServer

ME = "http://s1.test"
PING = "http://p1.test"
REGISTRY = "http://r.test"
INTERVAL = 5.0


class Peers(SynchronousTestCase):
    """
    alice on this server follows carol@s3.test; one ping server answers
    with whatever ``self.changes`` holds.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.alice = self.successResultOf(self.store.create_user("alice", "", "h", T0))
        self.carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", T0))
        self.successResultOf(self.store.follow(self.alice.id, self.carol.id, T0))
        self.successResultOf(
            self.store.note_remote_last("carol", "s3.test", 0, "http://s3.test")
        )
        self.server = FeedServer("carol", "s3.test", 0)
        self.client.routes["http://s3.test/s2s/feed/carol.rss"] = self.server
        self.changes: dict[str, Any] = {}
        self.cursor = 0
        self.client.routes[PING + "/ping/exchange"] = self.answer
        self.fetcher = Fetcher(self.store, self.client, self.clock, "s1.test")

    def answer(self, url: str, body: Any) -> Any:
        self.cursor += 1
        changes, self.changes = self.changes, {}
        return {"epoch": "e1", "cursor": self.cursor, "changes": changes}

    def start(self, pings: Any = None) -> SyncService:
        sync = SyncService(
            self.store, self.client, pings or StaticPingList([PING]), self.fetcher,
            self.clock, ME, interval=INTERVAL, long_poll=0, replicas=1,
        )
        sync.startService()
        self.addCleanup(self.fetcher.stop)
        self.addCleanup(sync.stopService)
        return sync

    def carol_posts(self, last: int) -> None:
        """
        carol posts up to ``last`` on her server, and it reports that.
        """
        self.server.last = last
        self.changes["carol@s3.test"] = {"last": last, "home": "http://s3.test"}

    def held(self) -> tuple[int, int]:
        carol = self.successResultOf(self.store.get_account(self.carol.id))
        return carol.synced_seq, carol.last_seq

    def exchanges(self) -> int:
        return len(self.client.posts_to(PING + "/ping/exchange"))


class LyingPingServerTests(Peers):
    def test_claim_denied_by_the_author_is_forgotten(self) -> None:
        """
        A ping server claims carol's last number is 2**63 - 1 while her
        server holds 2: what she has is copied, the claim is forgotten, and
        her next post arrives at the next round (not after a backoff).
        """
        self.carol_posts(2)
        self.start()
        self.assertEqual(self.held(), (2, 2))
        self.changes["carol@s3.test"] = {"last": 2**63 - 1, "home": "http://s3.test"}
        self.clock.advance(INTERVAL)
        self.assertEqual(self.held(), (2, 2))
        self.carol_posts(3)
        self.clock.advance(INTERVAL)
        self.assertEqual(self.held(), (3, 3))

    def test_numbers_outside_64_bits_refused(self) -> None:
        """
        Entries with 2**70, 2**63, -1, 1.5 or true as a last number are
        refused and logged; the rest of the answer is applied and the
        exchanges with that ping server go on.
        """
        self.start()
        for bad in (2**70, 2**63, -1, 1.5, True):
            self.changes = {
                "carol@s3.test": {"last": bad, "home": "http://s3.test"},
            }
            self.clock.advance(INTERVAL)
            self.assertEqual(self.held(), (0, 0), bad)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.carol_posts(1)
        self.clock.advance(INTERVAL)
        self.assertEqual(self.held(), (1, 1))
        self.assertEqual(self.exchanges(), 7)

    def test_cursor_outside_64_bits_refused(self) -> None:
        """
        An answer whose cursor is beyond 64 bits is refused: nothing of it
        is applied, the cursor is not taken.
        """
        self.client.routes[PING + "/ping/exchange"] = {
            "epoch": "e1", "cursor": 2**64,
            "changes": {"carol@s3.test": {"last": 1, "home": "http://s3.test"}},
        }
        self.server.last = 1
        self.start()
        self.assertEqual(self.held(), (0, 0))


class RegistryOutageTests(Peers):
    def test_outage_delays_nothing(self) -> None:
        """
        The registry is unreachable for 20 s: the last known list of ping
        servers is kept, every round still exchanges, carol's post arrives
        at the next round, and the outage is logged once (no traceback),
        then its end once.
        """
        url = paths.registry_pings_url(REGISTRY)
        self.client.routes[url] = {"pings": [{"url": PING}]}
        logged: list[dict[str, Any]] = []
        pings = RegistryPingList(self.client, REGISTRY)
        pings.log = Logger(observer=logged.append)
        self.start(pings)
        self.assertEqual(self.exchanges(), 1)
        self.client.routes[url] = S2SResponseError("connection refused")
        for second in range(1, 21):
            self.clock.advance(1)
            if second == 7:
                self.carol_posts(1)
                self.clock.advance(0)
        self.assertEqual(self.exchanges(), 1 + 4)
        self.assertEqual(self.held(), (1, 1))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(
            [e["log_format"].split(" ", 2)[2][:11] for e in logged], ["unavailable"]
        )
        self.client.routes[url] = {"pings": [{"url": PING}]}
        self.clock.advance(INTERVAL)
        self.assertEqual(len(logged), 2)
        self.assertIn("answers again", logged[1]["log_format"])

    def test_outage_at_start(self) -> None:
        """
        A registry down when the server starts gives no ping servers (and
        no traceback); they are used as soon as it answers.
        """
        url = paths.registry_pings_url(REGISTRY)
        self.client.routes[url] = S2SResponseError("connection refused")
        self.start(RegistryPingList(self.client, REGISTRY))
        self.clock.advance(3)
        self.assertEqual(self.exchanges(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.client.routes[url] = {"pings": [{"url": PING}]}
        self.clock.advance(1)
        self.assertEqual(self.exchanges(), 1)


class ReturningPeerTests(Peers):
    def test_returning_peer_fetched_at_once(self) -> None:
        """
        carol's server is down for 75 s from the first try to fetch her
        post 1 (the tries back off to a minute); it comes back and she
        posts 2: both arrive within one interval, not after the backoff.
        """
        feeds = "http://s3.test/s2s/feed/carol.rss"
        self.start()
        self.client.routes[feeds] = S2SResponseError("connection refused")
        self.carol_posts(1)
        for _ in range(80):
            self.clock.advance(1)
        self.assertEqual(self.held(), (0, 1))
        self.client.routes[feeds] = self.server
        self.clock.advance(1)
        self.carol_posts(2)
        self.clock.advance(INTERVAL)
        self.assertEqual(self.held(), (2, 2))


class ForcedFollowTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.alice = self.successResultOf(self.store.create_user("alice", "", "h", T0))
        sync = SyncService(
            self.store, self.client, StaticPingList([]), Fetcher(
                self.store, self.client, self.clock, "s1.test"
            ), self.clock, ME,
        )
        self.federation = Federation(self.store, self.client, sync, self.clock, ME)

    def notice(self, action: str, follower: str, followee: str) -> Any:
        body = {"action": action, "follower": follower, "followee": followee}
        return self.federation.receive_notice("http://evil.test", body)

    def test_cannot_make_ours_follow(self) -> None:
        """
        A signed notice from evil.test saying alice follows (or unfollows)
        mallory@evil.test is refused: alice follows nobody.
        """
        for action in ("follow", "unfollow"):
            self.failureResultOf(
                self.notice(action, "alice@s1.test", "mallory@evil.test"), ForbiddenAuthority
            )
        alice = self.successResultOf(self.store.get_account(self.alice.id))
        self.assertEqual(alice.friends_count, 0)
        self.assertEqual(self.successResultOf(self.store.subscriptions()), [])

    def test_own_user_may_follow_ours(self) -> None:
        """
        evil.test may say that its own user eve follows alice (and later
        does not), but not that someone of another server does.
        """
        self.successResultOf(self.notice("follow", "eve@evil.test", "alice@s1.test"))
        alice = self.successResultOf(self.store.get_account(self.alice.id))
        self.assertEqual(alice.followers_count, 1)
        self.failureResultOf(
            self.notice("follow", "bob@s2.test", "alice@s1.test"), ForbiddenAuthority
        )
        self.successResultOf(self.notice("unfollow", "eve@evil.test", "alice@s1.test"))
        alice = self.successResultOf(self.store.get_account(self.alice.id))
        self.assertEqual(alice.followers_count, 0)
