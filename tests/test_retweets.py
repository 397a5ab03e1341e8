"""
Retweets through the Twitter API, in memory: ``statuses/retweet``,
``unretweet``, ``retweets``, ``retweets_of_me``, ``destroy`` of a retweet,
``retweeted_status``, ``retweet_count``, ``retweeted`` and ``include_rts``.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.test_api import BASE, APITestCase


class RetweetAPITests(APITestCase):
    def retweet(self, user: str, status_id: int) -> tuple[int, Any, Any]:
        return self.call("POST", f"/1.1/statuses/retweet/{status_id}.json", user)

    def test_retweet_shown_as_twitter_did(self) -> None:
        """
        Bob's retweet of alice's post is a status of bob's with the text
        "RT @alice: ..." and the original in retweeted_status; both count
        one retweet, and for bob both say retweeted; alice's follower sees
        it in the home timeline, and the original author in
        retweets_of_me and statuses/retweets.
        """
        original = self.post("alice", "worth repeating")
        code, body, _ = self.retweet("bob", original["id"])
        self.assertEqual(code, 200, body)
        self.assertEqual(body["text"], "RT @alice: worth repeating")
        self.assertEqual(body["user"]["screen_name"], "bob")
        self.assertEqual(body["retweeted_status"]["id"], original["id"])
        self.assertEqual(body["retweeted_status"]["user"]["screen_name"], "alice")
        self.assertEqual((body["retweet_count"], body["retweeted"]), (1, True))
        code, shown, _ = self.call("GET", f"/1.1/statuses/show/{original['id']}.json", "bob")
        self.assertEqual((shown["retweet_count"], shown["retweeted"]), (1, True))
        code, shown, _ = self.call("GET", f"/1.1/statuses/show/{original['id']}.json", "carol")
        self.assertEqual((shown["retweet_count"], shown["retweeted"]), (1, False))
        self.call("POST", "/1.1/friendships/create.json", "carol", data={"screen_name": "bob"})
        _, home, _ = self.call("GET", "/1.1/statuses/home_timeline.json", "carol")
        self.assertEqual([s["id"] for s in home], [body["id"]])
        self.assertEqual(home[0]["retweeted_status"]["text"], "worth repeating")
        _, mine, _ = self.call("GET", "/1.1/statuses/retweets_of_me.json", "alice")
        self.assertEqual([s["id"] for s in mine], [original["id"]])
        _, retweets, _ = self.call("GET", f"/1.1/statuses/retweets/{original['id']}.json")
        self.assertEqual([s["id"] for s in retweets], [body["id"]])
        bob = self.successResultOf(self.service.microblog.user("bob"))
        self.assertEqual((bob.statuses_count, bob.last_seq), (1, 1))
        # Feeds (and the pages, through the same Post.display_text) show it
        # as Twitter wrote it.
        d = self.stub.get(BASE + "/1.1/statuses/user_timeline.rss?screen_name=bob")
        self.stub.flush()
        feed = self.successResultOf(self.successResultOf(d).content())
        self.assertIn(b"RT @alice: worth repeating", feed)

    def test_twice_or_own_refused(self) -> None:
        """
        Retweeting one's own post, or the same post twice (also through the
        retweet itself), is Twitter's 327; an unknown status is 144.
        """
        original = self.post("alice", "once")
        self.assertError(self.retweet("alice", original["id"]), 403, 327)
        _, first, _ = self.retweet("bob", original["id"])
        self.assertError(self.retweet("bob", original["id"]), 403, 327)
        self.assertError(self.retweet("bob", first["id"]), 403, 327)
        self.assertError(self.retweet("bob", 12345), 404, 144)
        self.assertError(self.call("POST", "/1.1/statuses/retweet/x.json", "bob"), 400, 44)

    def test_unretweet_and_destroy(self) -> None:
        """
        unretweet (by the original's id) and destroy (of the retweet) both
        undo a retweet: it leaves timelines, the count drops, and it may be
        retweeted again; undoing what was not retweeted is 144.
        """
        original = self.post("alice", "undo me")
        _, retweet, _ = self.retweet("bob", original["id"])
        code, body, _ = self.call(
            "POST", f"/1.1/statuses/unretweet/{original['id']}.json", "bob"
        )
        self.assertEqual(code, 200, body)
        self.assertEqual((body["id"], body["retweet_count"], body["retweeted"]),
                         (original["id"], 0, False))
        _, timeline, _ = self.call("GET", "/1.1/statuses/user_timeline.json", "bob")
        self.assertEqual(timeline, [])
        self.assertError(
            self.call("POST", f"/1.1/statuses/unretweet/{original['id']}.json", "bob"), 404, 144
        )
        _, again, _ = self.retweet("bob", original["id"])
        code, _, _ = self.call("POST", f"/1.1/statuses/destroy/{again['id']}.json", "bob")
        self.assertEqual(code, 200)
        _, shown, _ = self.call("GET", f"/1.1/statuses/show/{original['id']}.json", "bob")
        self.assertEqual((shown["retweet_count"], shown["retweeted"]), (0, False))
        self.assertNotEqual(retweet["id"], again["id"])

    def test_include_rts(self) -> None:
        """
        include_rts=false leaves retweets out of the user and home
        timelines; by default they are in.
        """
        original = self.post("alice", "an original")
        self.post("bob", "bob's own")
        self.retweet("bob", original["id"])
        for path in ("/1.1/statuses/user_timeline.json?screen_name=bob",
                     "/1.1/statuses/home_timeline.json?"):
            _, with_rts, _ = self.call("GET", path, "bob")
            _, without, _ = self.call("GET", path + "&include_rts=false", "bob")
            self.assertEqual([s["text"] for s in with_rts],
                             ["RT @alice: an original", "bob's own"])
            self.assertEqual([s["text"] for s in without], ["bob's own"])

    def test_hooks_and_remote_count(self) -> None:
        """
        A retweet and its undoing call the on_retweet hooks (what tells the
        original's server); another server's retweet counts once however
        often its notice comes, and its undoing uncounts it.
        """
        microblog = self.service.microblog
        told: list[tuple[int, int, bool]] = []
        microblog.on_retweet.append(lambda rt, original, undo: told.append(
            (rt.id, original.id, undo)))
        original = self.post("alice", "hooked")
        _, retweet, _ = self.retweet("bob", original["id"])
        self.call("POST", f"/1.1/statuses/unretweet/{original['id']}.json", "bob")
        self.assertEqual(told, [(retweet["id"], original["id"], False),
                                (retweet["id"], original["id"], True)])
        for _ in range(2):
            post = self.successResultOf(
                microblog.record_remote_retweet(original["id"], "dave@s9.test", 3)
            )
        self.assertEqual(post.retweet_count, 1)
        post = self.successResultOf(
            microblog.record_remote_retweet(original["id"], "dave@s9.test", 3, undo=True)
        )
        self.assertEqual(post.retweet_count, 0)
        self.assertIsNone(self.successResultOf(
            microblog.record_remote_retweet(999, "dave@s9.test", 3)))


class RetweetAcrossServersTests(SynchronousTestCase):
    """
    Real processes: a registry, ping servers and three twitter servers.
    """

    INTERVAL = 2.0

    def test_retweet_reaches_followers_of_the_retweeter(self) -> None:
        """
        Alice (server 1) retweets bob's post (server 2; she follows him);
        carol on server 3 follows alice: carol's home timeline gets the
        retweet, with retweeted_status holding bob's text and user, though
        nobody on server 3 follows bob (the original is fetched from his
        server alone).
        """
        from tests.test_federation import Federation, acct, call, follow, home, post, wait_for

        federation = Federation(self)
        s1 = federation.twitter("s1", ["alice"], interval=self.INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=self.INTERVAL)
        s3 = federation.twitter("s3", ["carol"], interval=self.INTERVAL)
        follow(s1, "alice", acct("bob", s2))
        follow(s3, "carol", acct("alice", s1))
        post(s2, "bob", "bob's original")
        (copy,), _ = wait_for(lambda: home(s1, "alice"), 15, "bob's post on s1")
        retweet = call(s1, "POST", f"/1.1/statuses/retweet/{copy['id']}.json", "alice")
        self.assertEqual(retweet["text"], f"RT @{acct('bob', s2)}: bob's original")

        def with_original() -> Any:
            statuses = home(s3, "carol")
            if statuses and "retweeted_status" in statuses[0]:
                return statuses
            return None

        statuses, _ = wait_for(with_original, 4 * self.INTERVAL, "the retweet on s3")
        (shown,) = statuses
        self.assertEqual(shown["user"]["screen_name"], acct("alice", s1))
        self.assertEqual(shown["retweeted_status"]["text"], "bob's original")
        self.assertEqual(shown["retweeted_status"]["user"]["screen_name"], acct("bob", s2))
        self.assertEqual(shown["text"], f"RT @{acct('bob', s2)}: bob's original")
        # The retweet travelled as alice's item: her count says so there.
        alice = call(s3, "GET", f"/1.1/users/show.json?screen_name={acct('alice', s1)}",
                     "carol")
        self.assertEqual(alice["statuses_count"], 1)
