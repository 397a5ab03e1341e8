"""
The sync service and rendezvous hashing, with a Clock, a scripted client
and a real (synchronous) SQLite store: no sockets.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from distwit.core.accts import rendezvous
from distwit.core.microblog import Microblog
from distwit.federation.copier import Fetcher
from distwit.federation.interfaces import IFetcher, IPingList
from distwit.federation.sync import RegistryPingList, StaticPingList, SyncService

from tests.fakes import RecordingFetcher, ScriptedClient
from tests.support import cheap_hasher, synchronous_sqlite_store

ME = "http://s1.test:8081"
PINGS = ["http://p1.test:9001", "http://p2.test:9002", "http://p3.test:9003"]


class RendezvousTests(SynchronousTestCase):
    def test_choice(self) -> None:
        """
        Each acct gets `replicas` distinct servers, the same whatever the
        order of the list; adding a server moves an acct only onto the new
        server; removing one moves only the accts it held.
        """
        accts = [f"user{i}@s1.test" for i in range(200)]
        for acct in accts:
            chosen = rendezvous(acct, PINGS, 2)
            self.assertEqual(len(set(chosen)), 2)
            self.assertEqual(chosen, rendezvous(acct, list(reversed(PINGS)), 2))
        bigger = PINGS + ["http://p4.test:9004"]
        moved = 0
        for acct in accts:
            before, after = set(rendezvous(acct, PINGS, 2)), set(rendezvous(acct, bigger, 2))
            self.assertTrue(after - before <= {"http://p4.test:9004"})
            moved += before != after
        self.assertTrue(0 < moved < len(accts))
        for acct in accts:
            before = set(rendezvous(acct, PINGS, 2))
            after = set(rendezvous(acct, PINGS[:2], 2))
            if "http://p3.test:9003" not in before:
                self.assertEqual(before, after)
        self.assertEqual(rendezvous("a@b", [], 2), [])
        self.assertEqual(rendezvous("a@b", PINGS[:1], 2), PINGS[:1])


class ProviderTests(SynchronousTestCase):
    def test_providers(self) -> None:
        """
        Both ping lists (a registry's over HTTP, a fixed one) provide
        :class:`IPingList`; the fetcher provides :class:`IFetcher`.
        """
        client = ScriptedClient()
        self.assertTrue(verifyObject(IPingList, RegistryPingList(client, "http://r.test")))
        self.assertTrue(verifyObject(IPingList, StaticPingList(PINGS)))
        store = synchronous_sqlite_store(self.mktemp())
        self.addCleanup(store.close)
        self.assertTrue(verifyObject(IFetcher, Fetcher(store, client, Clock(), "s1.test")))
        self.assertTrue(verifyObject(IFetcher, RecordingFetcher()))


class SyncTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = synchronous_sqlite_store(self.mktemp())
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        self.alice = self.successResultOf(self.microblog.create_user("alice", "password1"))
        self.client = ScriptedClient()
        self.fetcher = RecordingFetcher()
        self.epochs = {url: "epoch-1" for url in PINGS}
        self.cursor = 0
        self.changes: dict[str, dict[str, Any]] = {}
        for url in PINGS:
            self.client.routes[url + "/ping/exchange"] = self.answer_for(url)
        self.sync = SyncService(
            self.store, self.client, StaticPingList(PINGS), self.fetcher, self.clock,
            ME, interval=5.0, replicas=2,
        )
        self.microblog.local_changed = self.sync.local_changed

    def answer_for(self, url: str) -> Any:
        def answer(request_url: str, body: Any) -> Any:
            self.cursor += 1
            return {"epoch": self.epochs[url], "cursor": self.cursor,
                    "changes": self.changes.pop(url, {})}

        return answer

    def exchanges(self, url: str) -> list[Any]:
        return self.client.posts_to(url + "/ping/exchange")

    def start(self) -> None:
        self.sync.startService()
        self.addCleanup(self.sync.stopService)

    def test_first_exchange_is_full(self) -> None:
        """
        The first exchange with each ping server resets: it reports every
        local user and subscribes every followed remote acct that the
        server answers for, and no others.
        """
        self.successResultOf(self.microblog.post(self.alice, "hello"))
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", 0))
        self.successResultOf(self.store.follow(self.alice.id, carol.id, 0))
        self.start()
        for url in PINGS:
            sent = self.exchanges(url)
            self.assertEqual(len(sent), 1)
            body = sent[0]
            self.assertTrue(body["reset"])
            self.assertEqual((body["server"], body["cursor"], body["epoch"]), (ME, None, None))
            mine = url in rendezvous("alice@s1.test:8081", PINGS, 2)
            self.assertEqual(body["reports"], {"alice@s1.test:8081": 1} if mine else {})
            theirs = url in rendezvous("carol@s3.test", PINGS, 2)
            self.assertEqual(body["subscribe"], ["carol@s3.test"] if theirs else [])

    def test_idle_round_is_small(self) -> None:
        """
        After the first exchange, an idle round reports and subscribes
        nothing and sends the cursor and epoch it was given.
        """
        self.successResultOf(self.microblog.post(self.alice, "hello"))
        self.start()
        first = {url: self.exchanges(url)[0] for url in PINGS}
        self.clock.advance(5)
        for url in PINGS:
            body = self.exchanges(url)[1]
            self.assertFalse(body["reset"])
            self.assertEqual((body["reports"], body["subscribe"]), ({}, []))
            self.assertEqual(body["epoch"], "epoch-1")
            self.assertIsNotNone(body["cursor"])
            self.assertIsNot(first[url], body)

    def test_post_reported_at_once(self) -> None:
        """
        A local post is reported to its ping servers without waiting for the
        next round, and only to them.
        """
        self.start()
        before = {url: len(self.exchanges(url)) for url in PINGS}
        self.successResultOf(self.microblog.post(self.alice, "news"))
        self.clock.advance(0)
        responsible = rendezvous("alice@s1.test:8081", PINGS, 2)
        for url in PINGS:
            sent = self.exchanges(url)[before[url]:]
            if url in responsible:
                self.assertEqual([b["reports"] for b in sent], [{"alice@s1.test:8081": 1}])
            else:
                self.assertEqual(sent, [])

    def test_reread_reports_what_it_was_not_told(self) -> None:
        """
        What another process could not tell this one (a post, a follow, an
        unfollow) is reported and (un)subscribed when it reads the store
        again, and only that: a second reading sends nothing.
        """
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", 0))
        self.start()
        self.microblog.local_changed = None  # the message that was lost
        self.successResultOf(self.microblog.post(self.alice, "news"))
        self.successResultOf(self.store.follow(self.alice.id, carol.id, 0))
        self.clock.advance(0)
        before = {url: len(self.exchanges(url)) for url in PINGS}
        self.successResultOf(ensureDeferred(self.sync.reread()))
        self.clock.advance(0)
        reports = rendezvous("alice@s1.test:8081", PINGS, 2)
        subscribes = rendezvous("carol@s3.test", PINGS, 2)
        for url in PINGS:
            sent = self.exchanges(url)[before[url]:]
            if url in reports:
                self.assertIn({"alice@s1.test:8081": 1}, [b["reports"] for b in sent])
            if url in subscribes:
                self.assertIn(["carol@s3.test"], [b["subscribe"] for b in sent])
            if url not in reports and url not in subscribes:
                self.assertEqual(sent, [])
        self.successResultOf(self.store.unfollow(self.alice.id, carol.id))
        self.successResultOf(ensureDeferred(self.sync.reread()))
        self.clock.advance(5)
        for url in subscribes:
            self.assertIn(["carol@s3.test"], [b["unsubscribe"] for b in self.exchanges(url)])
        before = {url: len(self.exchanges(url)) for url in PINGS}
        self.successResultOf(ensureDeferred(self.sync.reread()))
        self.clock.advance(0)
        self.assertEqual(before, {url: len(self.exchanges(url)) for url in PINGS})

    def test_posts_during_an_exchange(self) -> None:
        """
        Posts made while a report is under way go in the next report as
        soon as it is answered, not a round later; a stream of posts makes
        one report per REPORT_COALESCE seconds, not one per post; a failed
        report waits for the next round.
        """
        from distwit.federation.sync import REPORT_COALESCE

        url = rendezvous("alice@s1.test:8081", PINGS, 2)[0]
        self.start()
        self.client.hold = True
        self.successResultOf(self.microblog.post(self.alice, "one"))
        self.clock.advance(0)
        held = [p for p in self.client.pending if p[0].startswith(url)]
        self.assertEqual(held[0][1]["reports"], {"alice@s1.test:8081": 1})
        for n in range(5):
            self.successResultOf(self.microblog.post(self.alice, f"more {n}"))
        self.client.hold = False
        self.clock.advance(REPORT_COALESCE / 2)
        self.assertEqual(len([p for p in self.client.pending if p[0].startswith(url)]), 1)
        answer = self.answer_for(url)
        held[0][2].callback(answer(url, held[0][1]))
        self.clock.advance(REPORT_COALESCE)
        self.assertEqual(self.exchanges(url)[-1]["reports"], {"alice@s1.test:8081": 6})
        # A failing ping server is not hammered: the next try is the round.
        self.client.routes[url + "/ping/exchange"] = ConnectionError("down")
        count = len(self.exchanges(url))
        self.successResultOf(self.microblog.post(self.alice, "while down"))
        self.clock.advance(REPORT_COALESCE)
        self.clock.advance(REPORT_COALESCE)
        self.clock.advance(1)
        self.assertEqual(len(self.exchanges(url)), count + 1)

    def test_many_subscriptions_in_chunks(self) -> None:
        """
        Subscriptions too many for one exchange (a ping server takes 1 MiB)
        go in several, each under the budget, one after another without
        waiting for the next round; together they are the whole list.
        """
        import json

        from distwit.federation.sync import EXCHANGE_BUDGET, REPORT_COALESCE

        accts = {f"someone_{i:06d}@server{i % 7}.example.org" for i in range(40_000)}
        self.sync._subscriptions.update(accts)
        self.sync._loaded = True
        self.sync._pings = StaticPingList(PINGS[:1])
        self.start()
        for _ in range(20):
            self.clock.advance(REPORT_COALESCE)
        sent = self.exchanges(PINGS[0])
        self.assertGreater(len(sent), 1)
        for body in sent:
            self.assertLess(len(json.dumps(body, separators=(",", ":"))), EXCHANGE_BUDGET + 10_000)
        self.assertTrue(sent[0]["reset"])
        self.assertEqual(set().union(*(b["subscribe"] for b in sent)), accts)

    def test_delete_reported(self) -> None:
        """
        A delete takes a number, so it is reported like a post.
        """
        post = self.successResultOf(self.microblog.post(self.alice, "oops"))
        self.start()
        self.successResultOf(self.microblog.delete(self.alice, post.id))
        self.clock.advance(0)
        url = rendezvous("alice@s1.test:8081", PINGS, 2)[0]
        self.assertEqual(self.exchanges(url)[-1]["reports"], {"alice@s1.test:8081": 2})

    def test_new_epoch_reports_again(self) -> None:
        """
        When a ping server answers with a new epoch (it restarted), this
        server reports and subscribes everything again at once.
        """
        self.successResultOf(self.microblog.post(self.alice, "hello"))
        url = rendezvous("alice@s1.test:8081", PINGS, 2)[0]
        self.start()
        self.epochs[url] = "epoch-2"
        self.clock.advance(5)
        self.clock.advance(0)
        last = self.exchanges(url)[-1]
        self.assertTrue(last["reset"])
        self.assertEqual(last["reports"], {"alice@s1.test:8081": 1})
        self.assertIsNone(last["cursor"])
        self.clock.advance(5)
        self.assertFalse(self.exchanges(url)[-1]["reset"])
        self.assertEqual(self.exchanges(url)[-1]["epoch"], "epoch-2")

    def test_changes_wanted(self) -> None:
        """
        A change for a subscribed acct raises what is known of it and asks
        the fetcher for it; changes for other accts, or naming a home that
        is not the acct's authority, are ignored.
        """
        carol = self.successResultOf(self.store.ensure_account("carol", "s3.test", 0))
        dave = self.successResultOf(self.store.ensure_account("dave", "s3.test", 0))
        self.successResultOf(self.store.follow(self.alice.id, carol.id, 0))
        self.successResultOf(self.store.follow(self.alice.id, dave.id, 0))
        self.start()
        url = rendezvous("carol@s3.test", PINGS, 2)[0]
        self.changes[url] = {
            "carol@s3.test": {"last": 7, "home": "http://s3.test"},
            "dave@s3.test": {"last": 9, "home": "http://evil.test"},
            "erin@s3.test": {"last": 3, "home": "http://s3.test"},
        }
        self.clock.advance(5)
        self.assertEqual([a.screen_name for a in self.fetcher.wanted], ["carol@s3.test"])
        carol = self.successResultOf(self.store.get_account(carol.id))
        self.assertEqual((carol.last_seq, carol.home_url), (7, "http://s3.test"))
        dave = self.successResultOf(self.store.get_account(dave.id))
        self.assertEqual(dave.last_seq, 0)
        self.flushLoggedErrors()

    def test_failure_does_not_stop_the_loop(self) -> None:
        """
        A ping server that fails is tried again at the next round, and the
        others are unaffected.
        """
        self.client.routes[PINGS[0] + "/ping/exchange"] = ValueError("down")
        self.start()
        self.clock.advance(5)
        self.assertEqual(len(self.exchanges(PINGS[0])), 2)
        self.assertEqual(len(self.exchanges(PINGS[1])), 2)
        self.assertGreaterEqual(self.fetcher.sweeps, 2)

    def test_malformed_answer(self) -> None:
        """
        An answer without epoch, cursor and changes is an error for that
        exchange; nothing is applied.
        """
        self.client.routes[PINGS[0] + "/ping/exchange"] = {"cursor": "x"}
        self.start()
        self.assertEqual(self.fetcher.wanted, [])
        self.assertEqual(len(self.exchanges(PINGS[0])), 1)

    def test_stop_cancels(self) -> None:
        """
        Stopping the service cancels exchanges in flight and the loop.
        """
        self.client.hold = True
        self.sync.startService()
        self.assertEqual(len(self.client.pending), 3)
        d = self.sync.stopService()
        self.successResultOf(d)
        for _, _, pending in self.client.pending:
            # Nobody answered it, so only the cancel can have fired it.
            self.assertTrue(pending.called)
        self.clock.advance(10)
        self.assertEqual(len(self.client.requests), 3)

    def test_no_ping_servers_yet(self) -> None:
        """
        While the registry lists no ping server (a federation starting up)
        the sync service asks again after a second, not a whole interval.
        """
        pings = StaticPingList([])
        self.sync._pings = pings
        self.start()
        self.assertEqual(self.client.requests, [])
        pings._urls = sorted(PINGS)
        self.clock.advance(1)
        for url in PINGS:
            self.assertEqual(len(self.exchanges(url)), 1)
        # Then the interval again: no more quick retries.
        self.clock.advance(1)
        self.assertEqual(len(self.exchanges(PINGS[0])), 1)


class LongPollTests(SynchronousTestCase):
    def test_long_poll_loops(self) -> None:
        """
        In long-poll mode each ping server gets an exchange with wait=N, and
        a new one as soon as the last is answered.
        """
        clock = Clock()
        store = synchronous_sqlite_store(self.mktemp())
        client = ScriptedClient()
        client.hold = True
        sync = SyncService(store, client, StaticPingList(PINGS[:1]), RecordingFetcher(),
                           clock, ME, interval=5.0, long_poll=20.0)
        sync.startService()
        self.addCleanup(sync.stopService)
        self.assertEqual([url for url, _, _ in client.pending],
                         [PINGS[0] + "/ping/exchange?wait=20"])
        _, _, d = client.pending.pop()
        d.callback({"epoch": "e", "cursor": 1, "changes": {}})
        self.assertEqual(len(client.pending), 1)
        self.assertEqual(client.pending[0][1]["cursor"], 1)

