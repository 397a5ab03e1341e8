"""
Notices end to end, with real processes on 127.0.0.1 (tests.test_federation's
``Federation``): the durable outbox of follow notices across a receiver's
outage and a sender's ``kill -9``; mentions and replies that reach the
mentioned user's server though nobody there follows the author; notices
that a hostile server forges, replays or makes up.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from distwit.federation.range_feed import FeedItem, render_range_feed

from tests.test_federation import (
    Federation,
    HostilePeer,
    acct,
    call,
    follow,
    post,
    wait_for,
)
from tests.test_fetch import T0, author

#: The ping interval of these tests' twitter servers (seconds).
INTERVAL = 1.0


def mentions(server: Any, user: str, **query: Any) -> list[dict[str, Any]]:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return call(  # type: ignore[no-any-return]
        server, "GET", f"/1.1/statuses/mentions_timeline.json?count=50{extra}", user
    )


def followers_count(server: Any, user: str) -> int:
    me = call(server, "GET", "/1.1/account/verify_credentials.json", user)
    return int(me["followers_count"])


def known_at_ping(federation: Federation, who: str) -> bool:
    return any(
        ping.request("GET", f"/ping/lookup?acct={who}")[0] == 200 for ping in federation.pings
    )


class OutboxProcessTests(SynchronousTestCase):
    def test_follow_notice_survives_outage_and_kill(self) -> None:
        """
        bob on s2 follows alice on s1 while s1 is down; s2 is then killed
        (-9) and s1 comes back: when s2 restarts, the follow notice it
        queued reaches s1 (alice has one follower).  An unfollow queued
        while s1 is down again reaches it when it comes back, with s2
        running all along.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=INTERVAL)
        alice = acct("alice", s1)
        post(s1, "alice", "hello")
        wait_for(lambda: known_at_ping(federation, alice), 10, "alice at the ping server")

        s1.stop()
        follow(s2, "bob", alice)
        wait_for(lambda: "fails (sending notices)" in s2.log_text(), 10, "a failed try logged")
        s2.kill()
        s1 = federation.restart("s1", s1)
        self.assertEqual(followers_count(s1, "alice"), 0)
        s2 = federation.restart("s2", s2)
        wait_for(lambda: followers_count(s1, "alice") == 1, 30, "the follow notice on s1")

        s1.stop()
        call(s2, "POST", "/1.1/friendships/destroy.json", "bob", screen_name=alice)
        s1 = federation.restart("s1", s1)
        wait_for(lambda: followers_count(s1, "alice") == 0, 30, "the unfollow notice on s1")
        for server in (s1, s2):
            self.assertNotIn("Traceback", server.log_text())


class MentionReplyTests(SynchronousTestCase):
    def test_mention_and_reply_reach_unfollowed(self) -> None:
        """
        dave on s3, whom nobody on s1 follows, mentions alice on s1: the
        post is in alice's mentions within two ping intervals (and a client
        polling with since_id sees it), and s1 does not start copying dave's
        other posts.  dave's reply to alice's post arrives the same way,
        pointing at alice's post on s1.  A mention made while s1 is down
        arrives when it is back.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=INTERVAL)
        s3 = federation.twitter("s3", ["dave"], interval=INTERVAL)
        alice, dave = acct("alice", s1), acct("dave", s3)
        post(s3, "dave", "an older post of dave's")
        before = post(s1, "alice", "anyone there?")
        since = before["id"]

        text = f"hello @{alice} from s3"
        post(s3, "dave", text)

        def mentioned(text: str) -> Any:
            found = [s for s in mentions(s1, "alice", since_id=since) if s["text"] == text]
            return found and found[0]

        found, _ = wait_for(lambda: mentioned(text), 2 * INTERVAL, "the mention on s1")
        self.assertEqual(found["user"]["screen_name"], dave)
        # bob (s2) is not mentioned: s2 got nothing.
        self.assertEqual(mentions(s2, "bob"), [])

        # The reply: dave sees alice's post (he follows her), and answers it.
        follow(s3, "dave", alice)
        question = post(s1, "alice", "who wants tea?")
        copies, _ = wait_for(
            lambda: [s for s in call(s3, "GET", "/1.1/statuses/home_timeline.json", "dave")
                     if s["text"] == "who wants tea?"],
            10, "alice's question on s3",
        )
        answer = f"@{alice} me please"
        call(s3, "POST", "/1.1/statuses/update.json", "dave", status=answer,
             in_reply_to_status_id=copies[0]["id"])
        reply, _ = wait_for(lambda: mentioned(answer), 2 * INTERVAL, "the reply on s1")
        self.assertEqual(reply["in_reply_to_status_id"], question["id"])
        self.assertEqual(reply["in_reply_to_screen_name"], "alice")

        # s1 keeps what it was told of, and does not copy dave's history.
        timeline = call(s1, "GET", f"/1.1/statuses/user_timeline.json?screen_name={dave}",
                        "alice")
        self.assertEqual(sorted(s["text"] for s in timeline), sorted([text, answer]))

        s1.stop()
        late = f"are you back, @{alice}?"
        post(s3, "dave", late)
        s1 = federation.restart("s1", s1)
        wait_for(lambda: mentioned(late), 30, "the mention made while s1 was down")
        for server in (s1, s2, s3):
            self.assertNotIn("Traceback", server.log_text())


class HostileNoticeTests(SynchronousTestCase):
    def test_forged_replayed_made_up(self) -> None:
        """
        A server's notice about another server's user is refused (403); the
        same signed notice twice is refused as a replay (401); a notice of
        a post its author's server does not have gets 404, of a post about
        nobody here 422, of nobody here 400.  alice's mentions hold only the
        honest one.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL)
        peer = HostilePeer(self)
        alice = acct("alice", s1)
        eve = f"eve@{peer.authority}"
        url = s1.url + "/s2s/notice"

        posts = {1: "nothing to see", 2: f"psst @{alice}"}

        def serve(seq: int) -> None:
            # What eve's server answers for the range seq..seq.
            items = [FeedItem(seq, posts[seq], T0, False)] if seq in posts else []
            last = seq if items else seq - 1
            peer.feeds["eve.rss"] = render_range_feed(
                author("eve"), peer.authority, peer.url, items, seq, last, False
            )

        def notice(seq: int, who: str = eve, targets: tuple[str, ...] = (alice,)) -> Any:
            return {"kind": "mention", "author": who, "seq": seq, "targets": list(targets)}

        code, body = peer.post(url, notice(2, who="dave@127.0.0.1:1"))
        self.assertEqual(code, 403, body)
        self.assertIn("refused notice", s1.log_text())
        code, body = peer.post(url, notice(2, who=acct("mallory", s1)))
        self.assertEqual(code, 403, body)

        serve(2)
        headers, raw = peer.signed(url, notice(2))
        code, body = peer.send(url, headers, raw)
        self.assertEqual(code, 200, body)
        code, body = peer.send(url, headers, raw)
        self.assertEqual(code, 401, body)
        self.assertIn("replayed", body["error"])

        serve(9)
        self.assertEqual(peer.post(url, notice(9))[0], 404)
        serve(1)
        self.assertEqual(peer.post(url, notice(1))[0], 422)
        self.assertEqual(peer.post(url, notice(2, targets=("nobody@" + alice.split("@")[1],)))[0],
                         400)
        self.assertEqual(peer.post(url, raw=b"{not json")[0], 400)
        self.assertEqual([s["text"] for s in mentions(s1, "alice")], [f"psst @{alice}"])
        self.assertNotIn("Traceback", s1.log_text())


class FavoritesAcrossServersTests(SynchronousTestCase):
    def test_counts_agree(self) -> None:
        """
        dave's post on s3 is favorited by alice on s1 and by bob on s2: s3
        counts two, and s1 and s2 show the count s3 has; bob's unfavorite
        brings s3's count back to one.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=INTERVAL)
        s3 = federation.twitter("s3", ["dave"], interval=INTERVAL)
        dave = acct("dave", s3)
        follow(s1, "alice", dave)
        follow(s2, "bob", dave)
        original = post(s3, "dave", "favorite me")

        def copy_on(server: Any, user: str) -> Any:
            found = [s for s in call(server, "GET", "/1.1/statuses/home_timeline.json", user)
                     if s["text"] == "favorite me"]
            return found and found[0]

        on_s1, _ = wait_for(lambda: copy_on(s1, "alice"), 10, "dave's post on s1")
        on_s2, _ = wait_for(lambda: copy_on(s2, "bob"), 10, "dave's post on s2")
        call(s1, "POST", f"/1.1/favorites/create/{on_s1['id']}.json", "alice")
        call(s2, "POST", f"/1.1/favorites/create/{on_s2['id']}.json", "bob")

        def count(server: Any, user: str, status_id: int) -> int:
            shown = call(server, "GET", f"/1.1/statuses/show/{status_id}.json", user)
            return int(shown["favorite_count"])

        wait_for(lambda: count(s3, "dave", original["id"]) == 2, 10, "two favorites on s3")
        wait_for(lambda: count(s1, "alice", on_s1["id"]) == 2, 10, "s3's count on s1")
        wait_for(lambda: count(s2, "bob", on_s2["id"]) == 2, 10, "s3's count on s2")

        call(s2, "POST", f"/1.1/favorites/destroy/{on_s2['id']}.json", "bob")
        wait_for(lambda: count(s3, "dave", original["id"]) == 1, 10, "one favorite on s3")
        for server in (s1, s2, s3):
            self.assertNotIn("Traceback", server.log_text())
