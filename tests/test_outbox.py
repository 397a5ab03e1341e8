"""
The outbox and mention/reply notices in memory: a Clock, a scripted
client, a real synchronous SQLite store, the ``/s2s/notice`` route through
``StubTreq``.  The real processes are in tests/test_notices.py.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from distwit.core.microblog import Microblog
from distwit.federation.copier import Fetcher
from distwit.federation.follows import Federation
from distwit.federation.lookup import Lookup
from distwit.federation.notices import NoticeReceiver, PostNotices
from distwit.federation.outbox import MAX_DELAY, NoticeRefused, Outbox, retry_delay
from distwit.federation.range_feed import FeedItem, render_range_feed
from distwit.federation.resource import FederationAPI
from distwit.federation.sync import StaticPingList, SyncService
from distwit.model import RETWEET
from distwit.s2s.interfaces import S2SResponseError
from distwit.store.interfaces import OutboxItem

from tests.fakes import FakeVerifier, ScriptedClient, json_answer, post_signed
from tests.support import cheap_hasher, synchronous_sqlite_store
from tests.test_fetch import author

T0 = 1_700_000_000_000
ME = "http://s1.test"
S2 = "http://s2.test"
S3 = "http://s3.test"


class Warnings:
    """
    The warnings logged while it is installed.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.observe)
        case.addCleanup(globalLogPublisher.removeObserver, self.observe)

    def observe(self, event: dict[str, Any]) -> None:
        if event.get("log_level") is LogLevel.warn:
            self.events.append(event)

    def count(self, fragment: str) -> int:
        from twisted.logger import formatEvent

        return sum(1 for event in self.events if fragment in formatEvent(event))


class OutboxTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.path = self.mktemp()
        self.store = synchronous_sqlite_store(self.path)
        self.client = ScriptedClient()
        self.outbox = self.make_outbox()

    def make_outbox(self) -> Outbox:
        outbox = Outbox(self.store, self.client, self.clock, interval=2.0, per_peer=2)
        outbox.startService()
        self.addCleanup(lambda: outbox.running and outbox.stopService())
        return outbox

    def queue(self, target: str = S2, kind: str = "follow", n: int = 1) -> int:
        body = {"action": kind, "follower": f"alice{n}@s1.test", "followee": "bob@s2.test"}
        return self.successResultOf(Deferred.fromCoroutine(self.outbox.queue(target, kind, body)))

    def pending(self) -> list[OutboxItem]:
        return self.successResultOf(self.store.pending_notices(100))

    def test_delivered_at_once(self) -> None:
        """
        A queued notice is posted, signed, to the receiver's follow route
        without waiting for the next round, and forgotten once accepted.
        """
        self.client.routes[S2 + "/s2s/follow"] = {"ok": True}
        self.queue()
        self.clock.advance(0)
        self.assertEqual(
            self.client.posts_to(S2 + "/s2s/follow"),
            [{"action": "follow", "follower": "alice1@s1.test", "followee": "bob@s2.test"}],
        )
        self.assertEqual(self.pending(), [])

    def test_retried_with_capped_backoff_never_dropped(self) -> None:
        """
        While the receiver does not answer, the notice is tried again after
        1, 2, 4, ... seconds up to five minutes, forty times and more, and
        kept; when the receiver answers, it is delivered and forgotten.
        """
        self.client.routes[S2] = S2SResponseError("POST http://s2.test/s2s/follow: no answer")
        self.queue()
        self.clock.advance(0)
        tries = [self.clock.seconds()]
        for _ in range(40 * 150):
            self.clock.advance(2)
            count = len(self.client.posts_to(S2))
            if count > len(tries):
                tries.append(self.clock.seconds())
            if count >= 40:
                break
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        self.assertEqual(len(tries), 40)
        # Each gap is the backoff, rounded up to the 2 s rounds.
        for attempt, gap in enumerate(gaps, start=1):
            self.assertGreaterEqual(gap, retry_delay(attempt))
            self.assertLessEqual(gap, retry_delay(attempt) + 2)
        self.assertEqual(max(gaps), MAX_DELAY)
        [item] = self.pending()
        self.assertEqual(item.attempts, 40)
        self.assertIn("no answer", item.last_error)
        self.client.routes[S2] = {"ok": True}
        self.clock.advance(MAX_DELAY)
        self.assertEqual(self.pending(), [])

    def test_backoff_cut_short_when_receiver_answers(self) -> None:
        """
        Notices waiting out a long backoff for a server go at once when
        another notice to it gets through.
        """
        self.client.routes[S2] = S2SResponseError("no answer")
        self.queue(kind="mention", n=1)
        self.clock.advance(0)
        for _ in range(12):
            self.clock.advance(MAX_DELAY)
        self.client.routes[S2] = {"ok": True}
        self.queue(kind="mention", n=2)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.pending(), [])

    def test_follows_go_in_order(self) -> None:
        """
        A follow and the unfollow after it, to one server, go one by one
        in the order they were queued, also when the first fails and
        backs off: the receiver never gets the unfollow first.
        """
        self.client.hold = True
        self.queue(S2, "follow")
        self.queue(S2, "unfollow")
        sent: list[str] = []

        def next_sent() -> Any:
            for _ in range(20):
                self.clock.advance(1)
                if self.client.pending:
                    [(url, body, d)] = self.client.pending
                    self.client.pending.clear()
                    sent.append(body["action"])
                    return d
            return None

        self.clock.advance(0)
        next_sent().errback(S2SResponseError("no answer"))
        next_sent().callback({"ok": True})
        next_sent().callback({"ok": True})
        self.assertEqual(sent, ["follow", "follow", "unfollow"])
        self.assertEqual(self.pending(), [])

    def test_refused_for_good_is_dropped_once(self) -> None:
        """
        A 4xx answer (not 408 or 429) drops the notice with one warning
        that says why; 408 and 429 are tried again.
        """
        warnings = Warnings(self)
        self.client.routes[S2] = S2SResponseError(
            "POST http://s2.test/s2s/follow: HTTP 403 Forbidden: not yours", status=403
        )
        self.client.routes[S3] = S2SResponseError("HTTP 429", status=429)
        self.queue(S2)
        self.queue(S3)
        self.clock.advance(0)
        self.clock.advance(10)
        self.assertEqual([item.target for item in self.pending()], [S3])
        self.assertEqual(warnings.count("not yours"), 1)
        self.assertEqual(len(self.client.posts_to(S2)), 1)
        self.assertGreater(len(self.client.posts_to(S3)), 1)

    def test_restart_picks_up_pending(self) -> None:
        """
        Notices left by a stopped (or killed) outbox are sent at once by the
        next one on the same database, however long their backoff was.
        """
        self.client.routes[S2] = S2SResponseError("no answer")
        self.queue()
        self.clock.advance(0)
        for _ in range(10):
            self.clock.advance(MAX_DELAY)
        self.successResultOf(self.outbox.stopService())
        [item] = self.pending()
        self.assertGreater(item.next_at, self.clock.seconds() * 1000 + 60_000)
        self.client.routes[S2] = {"ok": True}
        store = synchronous_sqlite_store(self.path)
        self.store = store
        self.outbox = self.make_outbox()
        self.clock.advance(0)
        self.assertEqual(self.pending(), [])

    def test_bounded_per_server_and_cancelled_on_stop(self) -> None:
        """
        At most two notices are in flight to one server (another server
        is not held up); stopping cancels what is in flight and keeps it
        queued.  (Mentions: follows to one server go one by one, below.)
        """
        self.client.hold = True
        for n in range(5):
            self.queue(S2, kind="mention", n=n)
        self.queue(S3)
        self.clock.advance(0)
        self.assertEqual(sorted(url for url, _, _ in self.client.pending),
                         [S2 + "/s2s/notice"] * 2 + [S3 + "/s2s/follow"])
        self.successResultOf(self.outbox.stopService())
        # Each was cancelled (its failure handed on to the outbox's try).
        self.assertTrue(all(d.called for _, _, d in self.client.pending))
        self.assertEqual(len(self.pending()), 6)

    def test_unresolved_target_located(self) -> None:
        """
        A notice queued without its server is sent where ``locate`` says;
        one whose receiver cannot exist is dropped.
        """
        located: list[int] = []

        async def locate(item: OutboxItem) -> str:
            located.append(item.id)
            if json.loads(item.body)["targets"] == ["nobody@s9.test"]:
                raise NoticeRefused("s9.test has no user nobody")
            return S3

        self.outbox.locate = locate
        self.client.routes[S3 + "/s2s/notice"] = {"ok": True}
        body = {"kind": "mention", "author": "alice@s1.test", "seq": 1, "targets": []}
        for target in ("carol@s3.test", "nobody@s9.test"):
            body["targets"] = [target]
            self.successResultOf(
                Deferred.fromCoroutine(self.outbox.queue("", "mention", dict(body)))
            )
        self.clock.advance(0)
        self.assertEqual(len(located), 2)
        self.assertEqual([b["targets"] for b in self.client.posts_to(S3)], [["carol@s3.test"]])
        self.assertEqual(self.pending(), [])

    def test_failed_round_goes_on(self) -> None:
        """
        A round whose sweep fails is logged, and the loop goes on sending.
        """

        async def broken() -> None:
            raise RuntimeError("the sweep broke")

        self.outbox.sweep = broken
        self.client.routes[S2] = {"ok": True}
        self.queue()
        self.clock.advance(0)
        self.clock.advance(2)
        self.assertEqual(self.pending(), [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)


def feed(handle: str, authority: str, items: list[FeedItem], first: int, last: int) -> bytes:
    return render_range_feed(author(handle), authority, f"http://{authority}", items, first, last,
                             False)


class PostNoticesTests(SynchronousTestCase):
    """
    The sender's side: what a post queues.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        self.outbox = Outbox(self.store, self.client, self.clock)
        self.notices = PostNotices(self.store, self.outbox, "s1.test")
        self.dave = self.successResultOf(self.microblog.create_user("dave", "correct horse"))

    def post(self, text: str, reply_to: int | None = None) -> Any:
        return self.successResultOf(self.microblog.post(self.dave, text, "web", reply_to))

    def sweep(self) -> list[tuple[str, str, dict[str, Any]]]:
        self.successResultOf(Deferred.fromCoroutine(self.notices.sweep()))
        items = self.successResultOf(self.store.pending_notices(100))
        self.successResultOf(self.store.notices_due_now(0))
        for item in items:
            self.successResultOf(self.store.notice_done(item.id))
        return [(item.target, item.kind, json.loads(item.body)) for item in items]

    def test_mentions_one_notice_per_server(self) -> None:
        """
        A post mentioning two users of s2 and one of s3 queues one notice
        for each server, naming its users; the target is the server's URL
        when the account is known here, else left to be found.  Local
        mentions and posts with none queue nothing, and a post is noticed
        once.
        """
        self.successResultOf(self.store.ensure_account("carol", "s3.test", T0))
        self.successResultOf(self.store.note_remote_last("carol", "s3.test", 0, S3))
        self.post("nobody here")
        self.post("@dave talks to himself")
        mine = self.post("hi @alice@s2.test @Bob@S2.test and @carol@s3.test")
        self.assertEqual(self.sweep(), [
            ("", "mention", {"kind": "mention", "author": "dave@s1.test", "seq": mine.seq,
                             "targets": ["alice@s2.test", "bob@s2.test"]}),
            (S3, "mention", {"kind": "mention", "author": "dave@s1.test", "seq": mine.seq,
                             "targets": ["carol@s3.test"]}),
        ])
        self.assertEqual(self.sweep(), [])

    def test_reply_to_remote_post(self) -> None:
        """
        A reply to a remote author's post is a reply notice to its server,
        naming that author.
        """
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", T0))
        self.successResultOf(self.store.note_remote_last("carol", "s3.test", 0, S3))
        self.successResultOf(self.store.store_remote_items(
            carol.id, 4, 4, [FeedItem(4, "question", T0, False)], "s1.test", T0, aside=True
        ))
        [question] = self.successResultOf(self.store.range_posts(carol.id, 4, 4))
        reply = self.post("an answer", question.id)
        self.assertEqual(self.sweep(), [
            (S3, "reply", {"kind": "reply", "author": "dave@s1.test", "seq": reply.seq,
                           "targets": ["carol@s3.test"]}),
        ])


class NoticeReceiverTests(SynchronousTestCase):
    """
    ``POST /s2s/notice`` on s1, for alice.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        sync = SyncService(self.store, self.client, StaticPingList([]),
                           Fetcher(self.store, self.client, self.clock, "s1.test"),
                           self.clock, ME)
        federation = Federation(self.store, self.client, sync, self.clock, ME)
        self.microblog.federation = federation
        self.receiver = NoticeReceiver(
            self.store, Lookup(self.store, self.client, self.clock, "s1.test"), self.clock,
            "s1.test", per_minute=20,
        )
        self.verifier = FakeVerifier()
        api = FederationAPI(self.microblog, federation, self.verifier, ME, notices=self.receiver)
        self.stub = StubTreq(api.resource())
        self.alice = self.successResultOf(self.microblog.create_user("alice", "correct horse"))
        self.items: list[FeedItem] = []
        self.client.routes[S3 + "/s2s/feed/dave.rss"] = self.dave_feed

    def dave_feed(self, url: str, body: Any) -> bytes:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(url).query)
        first, last = int(query["from"][0]), int(query["to"][0])
        have = [item for item in self.items if first <= item.seq <= last]
        top = max([item.seq for item in self.items], default=0)
        return feed("dave", "s3.test", have, first, max(min(last, top), first - 1))

    def send(self, body: Any, signer: str | None = S3, code: int = 200) -> Any:
        answer, _ = json_answer(
            self, self.stub, post_signed(self.stub, ME + "/notice", signer, body), code
        )
        return answer

    def notice(self, seq: int, kind: str = "mention", author: str = "dave@s3.test",
               targets: tuple[str, ...] = ("alice@s1.test",)) -> dict[str, Any]:
        return {"kind": kind, "author": author, "seq": seq, "targets": list(targets)}

    def mentions(self) -> list[str]:
        posts = self.successResultOf(self.store.mentions_timeline(self.alice.id, 20, None, None))
        return [post.text for post in posts]

    def test_mention_fetched_and_kept_aside(self) -> None:
        """
        A mention notice makes s1 fetch that one post from dave's server
        (not the notice's word) and show it in alice's mentions; dave's
        account does not become one s1 copies; the same notice again is
        harmless.
        """
        self.items = [FeedItem(1, "first", T0, False), FeedItem(2, "hey @alice@s1.test", T0,
                                                                False)]
        answer = self.send(self.notice(2))
        self.assertTrue(answer["ok"])
        self.assertEqual(self.mentions(), ["hey @alice@s1.test"])
        self.assertEqual(self.client.requests[-1][1],
                         S3 + "/s2s/feed/dave.rss?from=2&to=2")
        dave = self.successResultOf(self.store.get_remote_account("dave", "s3.test"))
        self.assertEqual((dave.last_seq, dave.synced_seq, dave.home_url), (0, 0, S3))
        self.assertEqual(self.successResultOf(self.store.wanted(10)), [])
        self.send(self.notice(2))
        self.assertEqual(self.mentions(), ["hey @alice@s1.test"])

    def test_reply_to_local_post(self) -> None:
        """
        A reply notice keeps the reply with ``in_reply_to_status_id`` on
        alice's post here.
        """
        mine = self.successResultOf(self.microblog.post(self.alice, "what is up?"))
        self.items = [FeedItem(1, "@alice@s1.test not much", T0, False,
                               in_reply_to=("alice@s1.test", mine.seq))]
        self.send(self.notice(1, "reply"))
        dave = self.successResultOf(self.store.get_remote_account("dave", "s3.test"))
        [reply] = self.successResultOf(self.store.range_posts(dave.id, 1, 1))
        self.assertEqual(reply.in_reply_to_status_id, mine.id)
        self.assertEqual(self.mentions(), ["@alice@s1.test not much"])

    def test_refusals(self) -> None:
        """
        Unsigned: 401.  Signed by another server than the author's: 403.
        Naming nobody here: 400.  A post that is not there: 404.  A post
        that concerns nobody here: 422.  Malformed: 400.  Nothing is kept.
        """
        self.items = [FeedItem(1, "nothing for alice", T0, False)]
        self.assertIn("error", self.send(self.notice(1), signer=None, code=401))
        self.assertIn("may not speak", self.send(self.notice(1), signer=S2, code=403)["error"])
        self.send(self.notice(1, targets=("nobody@s1.test", "x@s2.test")), code=400)
        self.send(self.notice(7), code=404)
        self.send(self.notice(1), code=422)
        for bad in ({"kind": "mention"}, [], {"kind": "poke", "seq": 1},
                    self.notice(0), self.notice(1, author="not an acct")):
            self.send(bad, code=400)
        self.assertEqual(self.mentions(), [])
        dave = self.successResultOf(self.store.get_remote_account("dave", "s3.test"))
        posts = self.successResultOf(self.store.range_posts(dave.id, 1, 10)) if dave else []
        self.assertEqual(posts, [])

    def test_author_server_down(self) -> None:
        """
        When the author's server does not give the post, the answer is a
        502 (the sender will try again), not a 500.
        """
        self.client.routes[S3 + "/s2s/feed/dave.rss"] = S2SResponseError("no answer")
        self.send(self.notice(1), code=502)

    def test_flood_limited_per_signer(self) -> None:
        """
        Past its allowance in a minute a server's notices get 429; another
        server's do not; a minute later the first is heard again.
        """
        self.items = [FeedItem(1, "hey @alice@s1.test", T0, False)]
        for _ in range(20):
            self.send(self.notice(1))
        self.assertIn("too many", self.send(self.notice(1), code=429)["error"])
        # Heard (its server does not answer for the post: 502, not 429).
        self.send(self.notice(1, author="eve@s2.test"), signer=S2, code=502)
        self.clock.advance(61)
        self.send(self.notice(1))


class FavoriteNoticeTests(SynchronousTestCase):
    """
    Favorites across servers in memory: s1 (alice's post) counts the
    favorites other servers tell it of, and serves the counts; the
    favoriter's server asks for them.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        sync = SyncService(self.store, self.client, StaticPingList([]),
                           Fetcher(self.store, self.client, self.clock, "s1.test"),
                           self.clock, ME)
        self.outbox = Outbox(self.store, self.client, self.clock)
        self.federation = Federation(
            self.store, self.client, sync, self.clock, ME, outbox=self.outbox
        )
        self.microblog.federation = self.federation
        receiver = NoticeReceiver(
            self.store, Lookup(self.store, self.client, self.clock, "s1.test"), self.clock,
            "s1.test",
        )
        self.verifier = FakeVerifier()
        api = FederationAPI(self.microblog, self.federation, self.verifier, ME, notices=receiver)
        self.stub = StubTreq(api.resource())
        self.alice = self.successResultOf(self.microblog.create_user("alice", "correct horse"))
        self.mine = self.successResultOf(self.microblog.post(self.alice, "like me"))

    def favorite(self, kind: str = "favorite", favoriter: str = "eve@s2.test",
                 signer: str = S2, seq: int | None = None, code: int = 200) -> Any:
        body = {"kind": kind, "favoriter": favoriter, "author": "alice@s1.test",
                "seq": self.mine.seq if seq is None else seq, "targets": ["alice@s1.test"]}
        answer, _ = json_answer(
            self, self.stub, post_signed(self.stub, ME + "/notice", signer, body), code
        )
        return answer

    def count(self) -> int:
        return self.successResultOf(self.microblog.status(self.mine.id)).favorite_count

    def counts_answer(self, path: str, signer: str | None = S2, code: int = 200) -> Any:
        headers = {} if signer is None else {b"x-fake-signer": [signer.encode()]}
        d = self.stub.get(ME + path, headers=headers)
        self.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, code)
        return json.loads(self.successResultOf(response.content()))

    def test_counted_once_per_favoriter(self) -> None:
        """
        A favorite notice counts once however often it comes; another
        server's user counts too; an unfavorite takes one back.  The
        counts are served on a signed GET.
        """
        self.assertEqual(self.favorite()["favorite_count"], 1)
        self.assertEqual(self.favorite()["favorite_count"], 1)
        self.favorite(favoriter="zed@s3.test", signer=S3)
        self.assertEqual(self.count(), 2)
        self.assertEqual(self.counts_answer(f"/status/alice/{self.mine.seq}.json"),
                         {"favorite_count": 2, "retweet_count": 0})
        self.favorite("unfavorite")
        self.favorite("unfavorite")
        self.assertEqual(self.count(), 1)
        self.counts_answer(f"/status/alice/{self.mine.seq}.json", signer=None, code=401)
        self.counts_answer("/status/alice/99.json", code=404)
        self.counts_answer("/status/nobody/1.json", code=404)

    def test_refused(self) -> None:
        """
        A server may not favorite for another server's user (403), nor a
        post that is not here (404); nothing is counted.
        """
        self.favorite(favoriter="eve@s3.test", signer=S2, code=403)
        self.favorite(seq=9, code=404)
        self.favorite(favoriter="alice@s1.test", signer=ME, code=400)
        self.assertEqual(self.count(), 0)

    def test_remote_post_favorited_and_counted(self) -> None:
        """
        alice favoriting carol's post (of s3) queues a favorite notice for
        s3 (without asking s3 for a count that cannot hold it yet); showing
        the post asks s3 for its count (in the background) and shows it
        until it is 30 seconds old.
        """
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", T0))
        self.successResultOf(self.store.note_remote_last("carol", "s3.test", 0, S3))
        self.successResultOf(self.store.store_remote_items(
            carol.id, 5, 5, [FeedItem(5, "hers", T0, False)], "s1.test", T0, aside=True
        ))
        [hers] = self.successResultOf(self.store.range_posts(carol.id, 5, 5))
        counts = {"favorite_count": 7}
        self.client.routes[S3 + "/s2s/status/carol/5.json"] = lambda url, body: dict(counts)
        self.successResultOf(self.microblog.favorite(self.alice, hers.id))
        [item] = self.successResultOf(self.store.pending_notices(10))
        self.assertEqual((item.target, item.kind), (S3, "favorite"))
        self.assertEqual(json.loads(item.body), {
            "kind": "favorite", "favoriter": "alice@s1.test", "author": "carol@s3.test",
            "seq": 5, "targets": ["carol@s3.test"],
        })
        # The first showing asks s3 and shows the count held here (alice's).
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).favorite_count, 1)
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).favorite_count, 7)
        counts["favorite_count"] = 8
        self.clock.advance(10)
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).favorite_count, 7)
        self.clock.advance(25)
        self.successResultOf(self.microblog.status(hers.id))
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).favorite_count, 8)
        self.successResultOf(self.microblog.unfavorite(self.alice, hers.id))
        kinds = [i.kind for i in self.successResultOf(self.store.pending_notices(10))]
        self.assertEqual(kinds, ["favorite", "unfavorite"])


class RetweetNoticeTests(FavoriteNoticeTests):
    """
    Retweets across servers in memory: s1 (alice's post) counts the
    retweets of other servers' users once it has fetched each retweet from
    the retweeter's server; alice's retweets of remote posts queue notices;
    the counts come from the author's server.
    """

    def setUp(self) -> None:
        super().setUp()
        # As the twitter role wires it.
        self.microblog.on_retweet.append(self.federation.retweeted)
        #: eve's log on s2, as s2 serves it.
        self.eve_items: list[FeedItem] = []
        self.client.routes[S2 + "/s2s/feed/eve.rss"] = self.eve_feed

    def eve_feed(self, url: str, body: Any) -> bytes:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(url).query)
        first, last = int(query["from"][0]), int(query["to"][0])
        top = max([item.seq for item in self.eve_items], default=0)
        if first > top:
            raise S2SResponseError("no such message", status=404)
        have = [item for item in self.eve_items if first <= item.seq <= last]
        return feed("eve", "s2.test", have, first, min(last, top))

    def eve_retweets(self, seq: int, of: tuple[str, int] | None = None) -> None:
        of = ("alice@s1.test", self.mine.seq) if of is None else of
        self.eve_items = [i for i in self.eve_items if i.seq != seq]
        self.eve_items.append(FeedItem(seq, "", T0, False, kind=RETWEET, retweet_of=of))

    def eve_deletes(self, seq: int) -> None:
        self.eve_items = [i for i in self.eve_items if i.seq != seq]
        self.eve_items.append(FeedItem(seq, "", T0, True))

    def retweet(self, kind: str = "retweet", seq: int = 3, retweeter: str = "eve@s2.test",
                signer: str = S2, original_seq: Any = None, code: int = 200) -> Any:
        body = {"kind": kind, "retweeter": retweeter, "author": "alice@s1.test", "seq": seq,
                "original_seq": self.mine.seq if original_seq is None else original_seq,
                "targets": ["alice@s1.test"]}
        answer, _ = json_answer(
            self, self.stub, post_signed(self.stub, ME + "/notice", signer, body), code
        )
        return answer

    def retweets(self) -> int:
        return self.successResultOf(self.microblog.status(self.mine.id)).retweet_count

    def test_retweet_fetched_counted_once_and_undone(self) -> None:
        """
        A retweet notice is checked against the retweet fetched from the
        retweeter's server (one number) and counts once however often it
        comes; the counts are served with the favorites; an unretweet
        counts only once the retweet is a tombstone there.
        """
        self.eve_retweets(3)
        self.assertEqual(self.retweet()["retweet_count"], 1)
        self.assertEqual(self.retweet()["retweet_count"], 1)
        fetched = [url for _, url, _ in self.client.requests if "/s2s/feed/eve.rss" in url]
        self.assertIn("from=3", fetched[0])
        self.assertIn("to=3", fetched[0])
        self.assertEqual(self.retweets(), 1)
        self.assertEqual(self.counts_answer(f"/status/alice/{self.mine.seq}.json"),
                         {"favorite_count": 0, "retweet_count": 1})
        # Still live on s2: an unretweet is refused, the count stays.
        self.retweet("unretweet", code=422)
        self.assertEqual(self.retweets(), 1)
        self.eve_deletes(3)
        self.assertEqual(self.retweet("unretweet")["retweet_count"], 0)
        self.assertEqual(self.retweet("unretweet")["retweet_count"], 0)
        self.assertEqual(self.retweets(), 0)
        # A retweet the retweeter's server no longer has at all is gone too.
        self.eve_retweets(4)
        self.retweet(seq=4)
        self.eve_items = []
        self.assertEqual(self.retweet("unretweet", seq=4)["retweet_count"], 0)

    def test_refused(self) -> None:
        """
        Nothing of a retweet notice is believed: another server's user
        (403), a message that is no retweet of that post or not there
        (422, 404), a post not here (404), malformed (400), the
        retweeter's server down (502); nothing is counted.
        """
        super().test_refused()
        self.eve_retweets(3)
        self.retweet(retweeter="eve@s3.test", signer=S2, code=403)
        self.retweet(retweeter="alice@s1.test", signer=ME, code=400)
        self.retweet(original_seq=99, code=404)
        self.retweet(original_seq="1", code=400)
        self.retweet(seq=9, code=404)
        self.eve_items = [FeedItem(3, "just a post", T0, False)]
        self.retweet(code=422)
        self.eve_retweets(3, of=("alice@s1.test", self.mine.seq + 1))
        self.retweet(code=422)
        self.eve_retweets(3, of=("bob@s3.test", self.mine.seq))
        self.retweet(code=422)
        self.eve_deletes(3)
        self.retweet(code=404)
        self.client.routes[S2 + "/s2s/feed/eve.rss"] = S2SResponseError("no answer")
        self.retweet(code=502)
        self.assertEqual(self.retweets(), 0)

    def test_remote_post_retweeted_notice_and_counts(self) -> None:
        """
        alice retweeting carol's post (of s3) queues a retweet notice for
        s3 naming alice's retweet's own number; unretweeting (or deleting
        the retweet) queues an unretweet; showing the post shows s3's
        retweet count, asked again after the counts TTL (a setting).
        """
        self.federation.counts_ttl = 5
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", T0))
        self.successResultOf(self.store.note_remote_last("carol", "s3.test", 0, S3))
        self.successResultOf(self.store.store_remote_items(
            carol.id, 5, 5, [FeedItem(5, "hers", T0, False)], "s1.test", T0, aside=True
        ))
        [hers] = self.successResultOf(self.store.range_posts(carol.id, 5, 5))
        counts = {"favorite_count": 2, "retweet_count": 4}
        self.client.routes[S3 + "/s2s/status/carol/5.json"] = lambda url, body: dict(counts)
        retweet = self.successResultOf(self.microblog.retweet(self.alice, hers.id))
        [item] = self.successResultOf(self.store.pending_notices(10))
        self.assertEqual((item.target, item.kind), (S3, "retweet"))
        self.assertEqual(json.loads(item.body), {
            "kind": "retweet", "retweeter": "alice@s1.test", "seq": retweet.seq,
            "author": "carol@s3.test", "original_seq": 5, "targets": ["carol@s3.test"],
        })
        # The first showing asks s3 and shows the count held here (alice's).
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).retweet_count, 1)
        shown = self.successResultOf(self.microblog.status(hers.id))
        self.assertEqual((shown.favorite_count, shown.retweet_count), (2, 4))
        counts["retweet_count"] = 5
        self.clock.advance(3)
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).retweet_count, 4)
        self.clock.advance(3)
        self.successResultOf(self.microblog.status(hers.id))
        self.assertEqual(self.successResultOf(self.microblog.status(hers.id)).retweet_count, 5)
        self.successResultOf(self.microblog.unretweet(self.alice, hers.id))
        again = self.successResultOf(self.microblog.retweet(self.alice, hers.id))
        self.successResultOf(self.microblog.delete(self.alice, again.id))
        notices = self.successResultOf(self.store.pending_notices(10))
        self.assertEqual([i.kind for i in notices],
                         ["retweet", "unretweet", "retweet", "unretweet"])
        self.assertEqual([json.loads(i.body)["seq"] for i in notices],
                         [retweet.seq, retweet.seq, again.seq, again.seq])
        # Retweets of local posts make no notice.
        mine = self.successResultOf(self.microblog.retweet(self.alice, hers.id))
        bob = self.successResultOf(self.microblog.create_user("bob", "correct horse"))
        self.successResultOf(self.microblog.retweet(bob, self.mine.id))
        self.assertEqual(len(self.successResultOf(self.store.pending_notices(10))), 5)
        self.assertEqual(json.loads(
            self.successResultOf(self.store.pending_notices(10))[-1].body)["seq"], mine.seq)
