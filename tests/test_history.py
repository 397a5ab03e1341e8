"""
History on demand (docs/design/reach.md): a remote author's timeline read
past what this server holds is fetched from the author's server, page by
page, and stored below what is held with ids that keep ``max_id`` paging
in order, so that any post of any age can be read.

In memory (the real API and store, the author's server scripted) and, at
the end, with real processes.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import resolve
from distwit.federation.follows import HISTORY
from distwit.roles.twitter import TwitterService, make_twitter_web
from distwit.s2s.interfaces import S2SResponseError

from tests.fakes import FakeVerifier, ScriptedClient
from tests.support import synchronous_sqlite_store
from tests.test_api import APITestCase, PASSWORDS
from tests.test_federation import Federation, acct, call, follow, home, post, wait_for
from tests.test_fetch import T0, FeedServer

FEED = "http://s3.test/s2s/feed/carol.rss"


class HistoryTests(APITestCase):
    """
    alice follows carol@s3.test, who has 500 messages; the last
    :data:`HISTORY` were copied when alice followed her.
    """

    def setUp(self) -> None:
        from treq.testing import StubTreq

        data = self.mktemp()
        os.makedirs(data)
        self.settings = resolve({"data": data, "public_url": "http://s1.test"}, None)
        self.store = synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))
        self.clock = Clock()
        self.clock.advance(T0 / 1000 + 86400)
        self.client = ScriptedClient()
        self.service = TwitterService(
            self.settings, self.store, self.clock, self.make_hasher(),
            client=self.client, verifier=FakeVerifier(),
        )
        self.web = make_twitter_web(self.service)
        self.stub = StubTreq(self.web.root)
        for handle, password in PASSWORDS.items():
            self.successResultOf(self.service.microblog.create_user(handle, password))
        self.server = FeedServer("carol", "s3.test", 500)
        self.client.routes[FEED] = self.server
        store = self.store
        alice = self.successResultOf(store.get_local_user("alice"))
        carol = self.successResultOf(store.ensure_account("carol", "s3.test", T0))
        self.carol = carol
        self.successResultOf(store.note_remote_last("carol", "s3.test", 500, "http://s3.test"))
        self.successResultOf(store.follow(alice.id, carol.id, T0))
        self.successResultOf(store.start_sync_at(carol.id, 500 - HISTORY))
        fetcher = self.service.fetcher
        assert fetcher is not None
        self.successResultOf(fetcher.fetch(carol.id))
        self.server.asked.clear()

    def timeline(self, **params: Any) -> list[dict[str, Any]]:
        code, body, _ = self.call(
            "GET", "/1.1/statuses/user_timeline.json", "alice",
            params={"screen_name": "carol@s3.test", **params},
        )
        self.assertEqual(code, 200, body)
        return body  # type: ignore[no-any-return]

    def test_read_to_the_first_post(self) -> None:
        """
        Paging carol's timeline with max_id reads all 500 messages, each
        once, newest first; the older ones are fetched in pages of 200
        from her server as they are reached, and what was held is not
        fetched again.
        """
        seen: list[str] = []
        max_id = None
        while True:
            page = self.timeline(count=200, **({"max_id": max_id} if max_id else {}))
            if not page:
                break
            seen += [status["text"] for status in page]
            max_id = page[-1]["id"] - 1
        self.assertEqual(seen, [f"message {n}" for n in range(500, 0, -1)])
        self.assertEqual(self.server.asked, [(281, 480), (81, 280), (1, 80)])
        carol = self.successResultOf(self.store.get_account(self.carol.id))
        self.assertEqual((carol.synced_seq, carol.last_seq, carol.statuses_count),
                         (500, 500, 500))

    def test_held_is_not_fetched(self) -> None:
        """
        Reading no further than what is held asks carol's server nothing:
        backfill on follow stays at HISTORY.
        """
        self.assertEqual(len(self.timeline(count=HISTORY)), HISTORY)
        self.assertEqual(len(self.timeline(count=5)), 5)
        self.assertEqual(self.server.asked, [])
        self.assertEqual(len(self.timeline(count=HISTORY, since_id=1)), HISTORY)
        self.assertEqual(self.server.asked, [])

    def test_page(self) -> None:
        """
        ``page`` (Twitter's older paging) reaches past what is held too.
        """
        page = self.timeline(count=20, page=3)
        self.assertEqual([s["text"] for s in page], [f"message {n}" for n in range(460, 440, -1)])

    def test_server_down(self) -> None:
        """
        carol's server does not answer: the reader gets what is held (no
        error), and the next reads do not wait on it again at once.
        """
        self.client.routes[FEED] = S2SResponseError("no answer")
        self.assertEqual(len(self.timeline(count=50)), HISTORY)
        asked = len(self.client.requests)
        self.assertEqual(len(self.timeline(count=50)), HISTORY)
        self.assertEqual(len(self.client.requests), asked)
        self.clock.advance(60)
        self.client.routes[FEED] = self.server
        self.assertEqual(len(self.timeline(count=50)), 50)


class HistoryProcessTests(SynchronousTestCase):
    def test_five_hundred_posts(self) -> None:
        """
        carol posts 500 times through the API of her server; bob, on
        another server, follows her and gets her last HISTORY posts; then
        he reads her whole timeline by max_id paging on his server: every
        post exactly once, in order, down to her first.
        """
        federation = Federation(self, pings=1)
        config = os.path.join(federation.base, "fast-posting.ini")
        with open(config, "w") as f:
            f.write("[twitter]\nrate_limit_writes = 2000\nrate_limit_address_writes = 2000\n")
        s1 = federation.twitter("s1", ["bob"])
        s3 = federation.twitter("s3", ["carol"], options=("--config", config))
        for n in range(1, 501):
            post(s3, "carol", f"carol {n}")
        carol = acct("carol", s3)
        follow(s1, "bob", carol)

        def copied() -> Any:
            return len([s for s in home(s1, "bob") if s["user"]["screen_name"] == carol])

        count, _ = wait_for(lambda: copied() >= HISTORY, 30, "carol's latest posts")
        self.assertEqual(copied(), HISTORY)
        seen: list[str] = []
        max_id = None
        while True:
            path = f"/1.1/statuses/user_timeline.json?screen_name={carol}&count=200"
            page = call(s1, "GET", path + (f"&max_id={max_id}" if max_id else ""), "bob")
            if not page:
                break
            seen += [status["text"] for status in page]
            max_id = page[-1]["id"] - 1
        self.assertEqual(seen, [f"carol {n}" for n in range(500, 0, -1)])
