"""
Following across federations (docs/design/reach.md): a server whose
author reports to another registry's ping servers learns that author's
new numbers from the author's server itself, polling its last-number
document with ``If-None-Match`` at the ping interval.

In memory (two twitter services, the poller reaching the other's real
route through StubTreq) and with real processes: two registries, each
with its ping server and twitter server.
"""

from __future__ import annotations

import os
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import resolve
from distwit.federation.direct import ConditionalGetter, DirectPoller, LastAnswer
from distwit.roles.twitter import TwitterService, make_twitter_web
from distwit.s2s.interfaces import S2SResponseError

from tests.fakes import FakeVerifier, RecordingFetcher, ScriptedClient
from tests.processes import free_port
from tests.support import cheap_hasher, synchronous_sqlite_store
from tests.test_federation import PASSWORD, Federation, acct, arrived, follow, post, wait_for
from tests.test_fetch import T0

S2 = "http://s2.test"
REGISTRY_A = "http://registry-a.test"
REGISTRY_B = "http://registry-b.test"
INTERVAL = 5.0


class DirectPollTests(SynchronousTestCase):
    """
    alice (on s1, federation A) follows carol on s2 (federation B), whose
    real ``/s2s/last/carol.json`` route the poller reaches in memory.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        data = self.mktemp()
        os.makedirs(data)
        settings = resolve({"data": data, "public_url": S2, "registry": REGISTRY_B}, None)
        s2_store = synchronous_sqlite_store(os.path.join(data, "s2.sqlite3"))
        self.s2 = TwitterService(
            settings, s2_store, self.clock, cheap_hasher(),
            client=ScriptedClient(), verifier=FakeVerifier(),
        )
        self.stub = StubTreq(make_twitter_web(self.s2).root)
        self.carol_there = self.successResultOf(
            self.s2.microblog.create_user("carol", PASSWORD)
        )
        self.store = synchronous_sqlite_store(self.mktemp())
        alice = self.successResultOf(self.store.create_user("alice", "", "h", T0))
        self.carol = self.successResultOf(self.store.ensure_account("carol", "s2.test", T0))
        self.successResultOf(self.store.note_remote_last("carol", "s2.test", 0, S2))
        self.successResultOf(self.store.set_direct(self.carol.id, True))
        self.successResultOf(self.store.follow(alice.id, self.carol.id, T0))
        self.getter = ConditionalGetter(self.stub, self.clock, "http://s1.test")
        self.answers: list[str] = []
        self.failing = False
        self.fetcher = RecordingFetcher()

    async def get_last(self, url: str, etag: str | None) -> LastAnswer | None:
        if self.failing:
            self.answers.append("failed")
            raise S2SResponseError(f"GET {url}: no answer")
        answer = await self.getter.get(url, etag)
        self.answers.append("304" if answer is None else str(answer.body["last"]))
        return answer

    def start(self) -> DirectPoller:
        poller = DirectPoller(
            self.store, self.get_last, self.fetcher, self.clock,
            registry=REGISTRY_A, interval=INTERVAL,
        )
        poller.startService()
        self.addCleanup(poller.stopService)
        self.stub.flush()
        return poller

    def tick(self, seconds: float = INTERVAL) -> None:
        self.clock.advance(seconds)
        self.stub.flush()

    def carol_posts(self, text: str) -> None:
        self.successResultOf(self.s2.microblog.post(self.carol_there, text))

    def test_new_numbers_go_to_the_copier(self) -> None:
        """
        Each interval one conditional poll: 304 while carol posts nothing,
        her new number as soon as she does, which is recorded and wanted
        by the copier.
        """
        self.start()
        self.assertEqual(self.answers, ["0"])
        self.tick()
        self.assertEqual(self.answers, ["0", "304"])
        self.carol_posts("one")
        self.carol_posts("two")
        self.tick()
        self.assertEqual(self.answers, ["0", "304", "2"])
        self.assertEqual([(a.handle, a.last_seq) for a in self.fetcher.wanted], [("carol", 2)])
        carol = self.successResultOf(self.store.get_account(self.carol.id))
        self.assertEqual(carol.last_seq, 2)
        self.tick()
        self.assertEqual(self.answers[-1], "304")
        self.assertEqual(len(self.fetcher.wanted), 1)

    def test_backoff(self) -> None:
        """
        While carol's server does not answer, polls back off (doubling from
        the interval); the first answer ends the backoff.
        """
        self.start()
        self.failing = True
        for _ in range(12):
            self.tick()
        # Failed at 5, then 10 s later (15), then 20 s later (35): at 60 s
        # the next is due at 75.
        self.assertEqual(self.answers, ["0", "failed", "failed", "failed"])
        self.failing = False
        self.carol_posts("back")
        for _ in range(4):
            self.tick()
        self.assertEqual(self.answers[4:], ["1", "304"])

    def test_same_registry_stops_direct(self) -> None:
        """
        When carol's server says it reports to our registry, she is polled
        no more: the ping servers tell of her posts.
        """
        self.s2.federation.registry = REGISTRY_A  # type: ignore[union-attr]
        self.start()
        self.assertEqual(self.successResultOf(self.store.is_direct(self.carol.id)), False)
        self.tick()
        self.assertEqual(self.answers, ["0"])

    def test_unfollowed_not_polled(self) -> None:
        """
        Nobody here follows carol any more: she is not polled.
        """
        alice = self.successResultOf(self.store.get_local_user("alice"))
        self.successResultOf(self.store.unfollow(alice.id, self.carol.id))
        self.start()
        self.tick()
        self.assertEqual(self.answers, [])

    def test_last_document(self) -> None:
        """
        The document names carol, her last number and the registry; its
        ETag changes with the number; an unknown handle is 404.
        """
        first = self.successResultOf(self.getter.get(f"{S2}/s2s/last/carol.json", None))
        assert first is not None
        self.assertEqual(first.body, {"acct": "carol@s2.test", "last": 0,
                                      "registry": REGISTRY_B})
        self.assertIsNone(
            self.successResultOf(self.getter.get(f"{S2}/s2s/last/carol.json", first.etag))
        )
        self.carol_posts("one")
        again = self.successResultOf(self.getter.get(f"{S2}/s2s/last/carol.json", first.etag))
        assert again is not None
        self.assertNotEqual(again.etag, first.etag)
        failure = self.failureResultOf(
            self.getter.get(f"{S2}/s2s/last/nobody.json", None), S2SResponseError
        )
        self.assertIn("404", str(failure.value))


class TwoFederationsTests(SynchronousTestCase):
    def test_follow_across_federations(self) -> None:
        """
        Two federations, each its own registry, ping server and twitter
        server.  alice on A follows ``@bob@B`` (as pasted from Mastodon):
        bob's posts reach her within a couple of ping intervals, learned
        from bob's server directly.  Following an account B does not know
        is "User not found." (50, 404), one on a server that does not
        exist is 50 with 502; neither is recorded.
        """
        a = Federation(self, pings=1)
        b = Federation(self, pings=1)
        s1 = a.twitter("a1", ["alice"])
        s2 = b.twitter("b1", ["bob"])
        bob = acct("bob", s2)
        post(s2, "bob", "before alice followed")
        follow(s1, "alice", "@" + bob)
        wait_for(arrived(s1, "alice", "before alice followed"), 30, "bob's earlier post")
        post(s2, "bob", "hello from federation B")
        wait_for(arrived(s1, "alice", "hello from federation B"), 30, "bob's new post")
        self.assertIn("its numbers come from", s1.log_text())

        auth = ("alice", PASSWORD)
        nobody = acct("nobody", s2)
        code, body = s1.request("POST", "/1.1/friendships/create.json", auth,
                                {"screen_name": nobody})
        self.assertEqual((code, body["errors"][0]["code"]), (404, 50), body)
        self.assertEqual(body["errors"][0]["message"], "User not found.")
        nowhere = f"someone@127.0.0.1:{free_port()}"
        code, body = s1.request("POST", "/1.1/friendships/create.json", auth,
                                {"screen_name": nowhere})
        self.assertEqual((code, body["errors"][0]["code"]), (502, 50), body)
        self.assertIn("127.0.0.1", body["errors"][0]["message"])
        code, friends = s1.request("GET", "/1.1/friends/ids.json", auth)
        self.assertEqual((code, len(friends["ids"])), (200, 1), friends)
        for name in (nobody, nowhere):
            code, body = s1.request(
                "GET", "/1.1/statuses/user_timeline.json?screen_name=" + name, auth
            )
            self.assertEqual(code, 404, body)
        self.assertNotIn("Traceback", s1.log_text())
