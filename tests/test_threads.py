"""
Conversations across servers (docs/design/threads.md): the replies index
each server serves, a conversation assembled on demand from the posts
each server holds, and the parent of a reply fetched for
``statuses/show``.

In memory (the real API and store, the other servers scripted) for the
bounds and the servers that do not answer; with three real twitter
servers at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import resolve
from distwit.federation import threads
from distwit.federation.range_feed import Counts, FeedItem, render_range_feed
from distwit.model import Account
from distwit.roles.twitter import TwitterService, make_twitter_web
from distwit.s2s.interfaces import S2SResponseError

from tests.fakes import SIGNER_HEADER, FakeVerifier, ScriptedClient
from tests.support import synchronous_sqlite_store
from tests.test_api import BASE, PASSWORDS, APITestCase
from tests.test_federation import Federation, acct, call, follow, home, post, wait_for

T0 = 1_700_000_000_000
S2 = "s2.test"
S2_URL = "http://s2.test"


class RemoteAuthor:
    """
    What a scripted server answers for one of its authors: the range
    feed of their messages (``{seq: (text, in_reply_to)}``), and the
    replies index of each (``{seq: [[acct, seq], ...]}``).
    """

    def __init__(self, handle: str, clock: Clock) -> None:
        self.handle = handle
        self.clock = clock
        self.messages: dict[int, tuple[str, tuple[str, int] | None]] = {}
        self.times: dict[int, int] = {}
        self.replies: dict[int, list[list[Any]]] = {}
        self.asked: list[int] = []

    def feed(self, url: str, body: Any) -> bytes:
        query = parse_qs(urlsplit(url).query)
        first, last = int(query["from"][0]), int(query["to"][0])
        self.asked.append(first)
        top = max(self.messages)
        author = Account(
            id=1, handle=self.handle, authority="", name=self.handle, created_at=T0,
            last_seq=top, statuses_count=top, followers_count=0, friends_count=0,
        )
        items = [
            FeedItem(seq=n, text=self.messages[n][0], created_at=self.created(n),
                     deleted=False, in_reply_to=self.messages[n][1])
            for n in range(first, min(last, top) + 1) if n in self.messages
        ]
        return render_range_feed(
            author, S2, S2_URL, items, first, min(last, top), False, Counts(top, 0, 0)
        )

    def created(self, seq: int) -> int:
        """
        When message ``seq`` was posted: the messages not yet read are
        given times in the order of their numbers when one of them is
        first read (the clock goes on a second each).
        """
        for n in sorted(set(self.messages) - set(self.times)):
            self.clock.advance(1)
            self.times[n] = int(self.clock.seconds()) * 1000
        return self.times[seq]

    def index(self, url: str, body: Any) -> Any:
        seq = int(url.rsplit("/", 1)[1].split(".")[0])
        return {"acct": f"{self.handle}@{S2}", "seq": seq, "replies": self.replies.get(seq, [])}


class ThreadTests(APITestCase):
    """
    alice is on this server (s1.test); bob is on s2.test, scripted.
    """

    def setUp(self) -> None:
        from treq.testing import StubTreq

        data = self.mktemp()
        os.makedirs(data)
        self.settings = resolve({"data": data, "public_url": BASE}, None)
        self.store = synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))
        self.clock = Clock()
        self.clock.advance(T0 / 1000 + 86400)
        self.client = ScriptedClient()
        self.verifier = FakeVerifier()
        self.service = TwitterService(
            self.settings, self.store, self.clock, self.make_hasher(),
            client=self.client, verifier=self.verifier,
        )
        self.authority = self.service.authority
        self.web = make_twitter_web(self.service)
        self.stub = StubTreq(self.web.root)
        for handle, password in PASSWORDS.items():
            self.successResultOf(self.service.microblog.create_user(handle, password))
        self.bob = RemoteAuthor("bob", self.clock)
        self.client.routes[f"{S2_URL}/s2s/feed/bob.rss"] = self.bob.feed
        self.client.routes[f"{S2_URL}/s2s/replies/bob/"] = self.bob.index

    def post(self, user: str, text: str, **extra: Any) -> Any:
        self.clock.advance(1)
        return super().post(user, text, **extra)

    def show(self, status_id: int) -> dict[str, Any]:
        code, body, _ = self.call("GET", f"/1.1/statuses/show/{status_id}.json")
        self.assertEqual(code, 200, body)
        return body  # type: ignore[no-any-return]

    def conversation(self, status_id: int, prefix: str = "/1.1/statuses") -> list[str]:
        code, body, _ = self.call("GET", f"{prefix}/conversation/{status_id}.json")
        self.assertEqual(code, 200, body)
        return [status["text"] for status in body]

    def hold_bob(self, seqs: list[int]) -> list[int]:
        """
        Copy bob's messages ``seqs`` here (as a follower's server would);
        their status ids.
        """
        bob = self.successResultOf(self.store.ensure_account("bob", S2, T0))
        self.successResultOf(self.store.note_remote_last("bob", S2, max(self.bob.messages),
                                                         S2_URL))
        ids = []
        for seq in seqs:
            text, reply = self.bob.messages[seq]
            item = FeedItem(seq=seq, text=text, created_at=self.bob.created(seq), deleted=False,
                            in_reply_to=reply)
            self.successResultOf(
                self.store.store_remote_original(bob.id, item, self.authority, T0)
            )
            (held,) = self.successResultOf(self.store.range_posts(bob.id, seq, seq))
            ids.append(held.id)
        return ids

    # The replies index served

    def index(self, path: str, signer: str | None = "http://s2.test") -> tuple[int, Any]:
        headers = {} if signer is None else {SIGNER_HEADER.decode(): signer}
        code, body, _ = self.call("GET", path, headers=headers)
        return code, body

    def test_replies_index(self) -> None:
        """
        The index of alice's message lists the live replies held here,
        newest first; unsigned requests are refused; a number that does
        not exist is a 404.
        """
        first = self.post("alice", "first")
        reply = self.post("bob", "@alice yes", in_reply_to_status_id=first["id"])
        gone = self.post("carol", "@alice no", in_reply_to_status_id=first["id"])
        self.post("carol", "@alice maybe", in_reply_to_status_id=first["id"])
        self.assertEqual(self.call("POST", f"/1.1/statuses/destroy/{gone['id']}.json",
                                   "carol")[0], 200)
        self.bob.messages = {1: ("@alice from afar", (f"alice@{self.authority}", 1))}
        self.hold_bob([1])
        self.assertEqual(reply["in_reply_to_status_id"], first["id"])
        code, body = self.index("/s2s/replies/alice/1.json")
        self.assertEqual(code, 200, body)
        self.assertEqual(body, {
            "acct": f"alice@{self.authority}", "seq": 1,
            "replies": [[f"bob@{S2}", 1], [f"carol@{self.authority}", 2],
                        [f"bob@{self.authority}", 1]],
        })
        self.assertEqual(self.index("/s2s/replies/alice/1.json", None)[0], 401)
        self.assertEqual(self.index("/s2s/replies/alice/2.json")[0], 404)
        self.assertEqual(self.index("/s2s/replies/nobody/1.json")[0], 404)
        self.assertEqual(self.index("/s2s/replies/alice/x.json")[0], 404)
        self.assertEqual(self.index("/s2s/replies/alice/1.rss")[0], 404)

    # Conversations

    def test_conversation_across(self) -> None:
        """
        alice's post, bob's reply (held), carol's reply to bob (held),
        and bob's reply to carol that only bob's server knows of: the
        conversation of any of them is all four, oldest first, at both
        prefixes; bob's reply is fetched from his server once.
        """
        first = self.post("alice", "first")
        self.bob.messages = {1: ("bob answers", (f"alice@{self.authority}", 1))}
        (b1,) = self.hold_bob([1])
        c1 = self.post("carol", "carol answers bob", in_reply_to_status_id=b1)
        self.bob.messages[2] = ("bob answers carol", (f"carol@{self.authority}", 1))
        self.bob.messages[3] = ("not in this thread", None)
        # carol's index lives here; bob's server lists a reply by someone
        # not replying to bob at all: it is not taken.
        self.bob.replies[1] = [[f"bob@{S2}", 3], ["junk", 1], [f"bob@{S2}", "x"]]
        expected = ["first", "bob answers", "carol answers bob"]
        self.assertEqual(self.conversation(c1["id"]), expected)
        self.clock.advance(threads.CACHE_SECONDS + 1)
        # Now carol's reply is known to have a reply on bob's server, by
        # the copy of bob's message 2 (as a follower's server copies).
        self.hold_bob([2])
        expected.append("bob answers carol")
        for status_id in (first["id"], b1, c1["id"]):
            self.assertEqual(self.conversation(status_id), expected)
        self.assertEqual(self.conversation(first["id"], "/api/statusnet"), expected)

    def test_fetches_ancestors_and_replies(self) -> None:
        """
        Of a reply whose parent is not held, the parent is fetched from
        its author's server; replies only the author's server lists are
        fetched from theirs.
        """
        self.bob.messages = {
            1: ("bob starts", None),
            2: ("bob goes on", (f"bob@{S2}", 1)),
            3: ("bob again", (f"bob@{S2}", 1)),
        }
        self.bob.replies = {1: [[f"bob@{S2}", 3], [f"bob@{S2}", 2]]}
        first = self.post("alice", "hello")
        (b2,) = self.hold_bob([2])
        self.assertEqual(self.conversation(b2), ["bob starts", "bob goes on", "bob again"])
        self.assertEqual(sorted(self.bob.asked), [1, 3])
        self.assertEqual(self.conversation(first["id"]), ["hello"])

    def test_bounds(self) -> None:
        """
        At most MAX_POSTS posts, MAX_DEPTH levels down.
        """
        self.patch(threads, "MAX_POSTS", 4)
        self.bob.messages = {1: ("root", None)}
        for n in range(2, 10):
            self.bob.messages[n] = (f"reply {n}", (f"bob@{S2}", 1))
        self.bob.replies = {1: [[f"bob@{S2}", n] for n in range(9, 1, -1)]}
        (root,) = self.hold_bob([1])
        self.assertEqual(len(self.conversation(root)), 4)

        self.patch(threads, "MAX_POSTS", 200)
        self.patch(threads, "MAX_DEPTH", 2)
        self.bob.messages[21] = ("level 0", None)
        for n in range(22, 26):
            self.bob.messages[n] = (f"level {n - 21}", (f"bob@{S2}", n - 1))
        self.bob.replies = {n: [[f"bob@{S2}", n + 1]] for n in range(21, 25)}
        (root,) = self.hold_bob([21])
        self.assertEqual(self.conversation(root), ["level 0", "level 1", "level 2"])
        # Up as well: of the deepest, two levels up.
        (deepest,) = self.hold_bob([25])
        self.assertEqual(self.conversation(deepest), ["level 2", "level 3", "level 4"])

    def test_server_down(self) -> None:
        """
        bob's server does not answer: the conversation answers what is held
        when the deadline passes (no error), and the next one does not wait
        on bob's server again at once.
        """
        self.bob.messages = {1: ("bob starts", None), 2: ("bob goes on", (f"bob@{S2}", 1))}
        (b2,) = self.hold_bob([2])
        first = self.post("alice", "@bob@s2.test yes", in_reply_to_status_id=b2)
        self.client.hold = True
        d = self.stub.get(f"{BASE}/1.1/statuses/conversation/{first['id']}.json")
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(threads.DEADLINE)
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        self.assertEqual(response.code, 200, body)
        self.assertEqual([s["text"] for s in json.loads(body)],
                         ["bob goes on", "@bob@s2.test yes"])
        asked = len(self.client.requests)
        self.clock.advance(threads.CACHE_SECONDS + 1)
        self.assertEqual(self.conversation(first["id"]), ["bob goes on", "@bob@s2.test yes"])
        self.assertEqual(len(self.client.requests), asked)
        # Refused outright (the outbound policy, a 500): the same.
        self.client.hold = False
        self.client.routes[f"{S2_URL}/s2s/feed/bob.rss"] = S2SResponseError("refused")
        self.clock.advance(threads.FAILURE_PAUSE + threads.CACHE_SECONDS + 1)
        self.assertEqual(self.conversation(first["id"]), ["bob goes on", "@bob@s2.test yes"])

    def test_one_assembly_at_a_time(self) -> None:
        """
        Two readers of a conversation being assembled share the one
        assembly: bob's server is asked once.
        """
        self.bob.messages = {1: ("bob starts", None), 2: ("bob goes on", (f"bob@{S2}", 1))}
        self.bob.replies = {1: [[f"bob@{S2}", 2]]}
        (root,) = self.hold_bob([1])
        self.client.hold = True
        url = f"{BASE}/1.1/statuses/conversation/{root}.json"
        first, second = self.stub.get(url), self.stub.get(url)
        self.stub.flush()
        # (Showing bob's post also asks his server for its counts: not the
        # conversation's business.)
        asked = [p for p in self.client.pending if "/replies/" in p[0]]
        self.assertEqual(len(asked), 1, self.client.pending)
        (index_url, _, pending) = asked[0]
        self.client.pending.remove(asked[0])
        self.client.hold = False
        pending.callback(self.bob.index(index_url, None))
        self.stub.flush()
        for d in (first, second):
            response = self.successResultOf(d)
            body = json.loads(self.successResultOf(response.content()))
            self.assertEqual([s["text"] for s in body], ["bob starts", "bob goes on"])
        self.assertEqual(
            [r[1] for r in self.client.requests if "/replies/" in r[1]],
            [f"{S2_URL}/s2s/replies/bob/1.json", f"{S2_URL}/s2s/replies/bob/2.json"],
        )

    def test_untrusted_answers(self) -> None:
        """
        A replies index that is no index, or lists messages its authors'
        servers do not have (deleted, never there): the conversation is
        what is held, and a missing message is not asked for again at
        once.
        """
        self.bob.messages = {1: ("bob starts", None)}
        (root,) = self.hold_bob([1])
        self.client.routes[f"{S2_URL}/s2s/replies/bob/"] = ["not", "an", "index"]
        self.assertEqual(self.conversation(root), ["bob starts"])
        self.clock.advance(threads.FAILURE_PAUSE + 1)
        self.client.routes[f"{S2_URL}/s2s/replies/bob/"] = self.bob.index
        self.bob.replies = {1: [[f"bob@{S2}", 7]] * 3 + [[f"bob@{S2}", 0], [f"bob@{S2}", True]]}
        self.assertEqual(self.conversation(root), ["bob starts"])
        self.assertEqual(self.bob.asked, [7])
        self.clock.advance(threads.CACHE_SECONDS + 1)
        self.assertEqual(self.conversation(root), ["bob starts"])
        self.assertEqual(self.bob.asked, [7])

    def test_show_fetches_parent(self) -> None:
        """
        ``statuses/show`` of a reply whose parent is not held fetches the
        parent: ``in_reply_to_status_id`` is filled.
        """
        self.bob.messages = {1: ("bob starts", None), 2: ("bob goes on", (f"bob@{S2}", 1))}
        (b2,) = self.hold_bob([2])
        shown = self.show(b2)
        self.assertIsNotNone(shown["in_reply_to_status_id"])
        parent = self.show(shown["in_reply_to_status_id"])
        self.assertEqual(parent["text"], "bob starts")

    def test_show_parent_server_down(self) -> None:
        """
        The parent's server does not answer: show answers after
        PARENT_WAIT without the parent, and later once it is there.
        """
        self.bob.messages = {1: ("bob starts", None), 2: ("bob goes on", (f"bob@{S2}", 1))}
        (b2,) = self.hold_bob([2])
        self.client.hold = True
        d = self.stub.get(f"{BASE}/1.1/statuses/show/{b2}.json")
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(threads.PARENT_WAIT)
        self.stub.flush()
        response = self.successResultOf(d)
        body = json.loads(self.successResultOf(response.content()))
        self.assertEqual(response.code, 200, body)
        self.assertIsNone(body["in_reply_to_status_id"])
        self.assertEqual(body["in_reply_to_screen_name"], f"bob@{S2}")
        # The fetch went on: when it comes, the parent is held.
        [(url, _, pending)] = [p for p in self.client.pending if "/s2s/feed/" in p[0]]
        pending.callback(self.bob.feed(url, None))
        self.assertIsNotNone(self.show(b2)["in_reply_to_status_id"])

    def test_not_found(self) -> None:
        code, body, _ = self.call("GET", "/1.1/statuses/conversation/12345.json")
        self.assertEqual(code, 404, body)
        self.assertEqual(body["errors"][0]["code"], 144)
        code, body, _ = self.call("GET", "/1.1/statuses/conversation/x.json")
        self.assertEqual(code // 100, 4, body)
        self.assertIn("errors", body)


FIVE = ["alice starts", "bob answers alice", "carol answers bob", "alice answers carol",
        "dave answers alice"]


class ThreadProcessTests(SynchronousTestCase):
    """
    alice@s1 posts; bob@s2 replies; carol@s3 replies to bob; alice replies
    to carol; dave@s2 replies to alice's first post.  alice follows bob and
    dave, bob follows carol, carol follows alice and bob: each author's
    server holds the direct replies to them.  dave follows alice only for
    her first post (so that s2 can reply to it).  s2 ends holding four of
    the five, s3 four; s1 all five, carol's reply fetched by the
    conversation alice read before replying.
    """

    def held(self, server: Any) -> set[str]:
        db = sqlite3.connect(os.path.join(server.data, "distwit.sqlite3"))
        try:
            rows = db.execute("SELECT text FROM posts WHERE deleted_at IS NULL").fetchall()
        finally:
            db.close()
        return {row[0] for row in rows} & set(FIVE)

    def test_conversation_on_three_servers(self) -> None:
        federation = Federation(self)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["bob", "dave"])
        s3 = federation.twitter("s3", ["carol"])
        follow(s1, "alice", acct("bob", s2))
        follow(s1, "alice", acct("dave", s2))
        follow(s2, "bob", acct("carol", s3))
        follow(s2, "dave", acct("alice", s1))
        follow(s3, "carol", acct("alice", s1))
        follow(s3, "carol", acct("bob", s2))

        def seen(server: Any, user: str, text: str) -> Any:
            def find() -> Any:
                for status in home(server, user):
                    if status["text"] == text:
                        return status
                return None
            return wait_for(find, 30, f"{text!r} on {server.url}")[0]

        def next_second() -> None:
            # Times travel to the second: each post in a second of its own,
            # so that "oldest first" has one answer.
            time.sleep(1.05 - time.time() % 1)

        a1 = post(s1, "alice", FIVE[0])
        a1_on_s2 = seen(s2, "dave", FIVE[0])
        call(s2, "POST", "/1.1/friendships/destroy.json", "dave",
             screen_name=acct("alice", s1))
        next_second()
        b1 = call(s2, "POST", "/1.1/statuses/update.json", "bob", status=FIVE[1],
                  in_reply_to_status_id=a1_on_s2["id"])
        self.assertEqual(b1["in_reply_to_status_id"], a1_on_s2["id"])
        b1_on_s3 = seen(s3, "carol", FIVE[1])
        next_second()
        call(s3, "POST", "/1.1/statuses/update.json", "carol", status=FIVE[2],
             in_reply_to_status_id=b1_on_s3["id"])
        seen(s2, "bob", FIVE[2])
        seen(s1, "alice", FIVE[1])

        # alice reads the conversation of her post: carol's reply is
        # fetched (bob's server knows it), and she answers it.
        def carol_found() -> Any:
            statuses = call(s1, "GET", f"/1.1/statuses/conversation/{a1['id']}.json", "alice")
            return next((s for s in statuses if s["text"] == FIVE[2]), None)

        c1_on_s1 = wait_for(carol_found, 60, "carol's reply in the conversation on s1")[0]
        next_second()
        call(s1, "POST", "/1.1/statuses/update.json", "alice", status=FIVE[3],
             in_reply_to_status_id=c1_on_s1["id"])
        next_second()
        call(s2, "POST", "/1.1/statuses/update.json", "dave", status=FIVE[4],
             in_reply_to_status_id=a1_on_s2["id"])
        seen(s3, "carol", FIVE[3])
        seen(s1, "alice", FIVE[4])
        self.assertEqual(self.held(s2), set(FIVE) - {FIVE[3]})
        self.assertEqual(self.held(s3), set(FIVE) - {FIVE[4]})

        for server, user, text in ((s1, "alice", FIVE[3]), (s2, "dave", FIVE[4]),
                                   (s3, "carol", FIVE[2])):
            start = seen(server, user, text)
            last: list[list[str]] = []

            def whole(server: Any = server, start: Any = start, user: str = user) -> Any:
                statuses = call(server, "GET",
                                f"/1.1/statuses/conversation/{start['id']}.json", user)
                last[:] = [[s["text"] for s in statuses]]
                return last[0] == FIVE

            try:
                wait_for(whole, 40, f"the whole conversation on {server.url}", step=1.0)
            except AssertionError:
                self.fail(f"conversation on {server.url}: {last}")
            statuses = call(server, "GET", f"/1.1/statuses/conversation/{start['id']}.json",
                            user)
            by_text = {s["text"]: s for s in statuses}
            # Linked: each reply names its parent as this server numbers it.
            self.assertEqual(by_text[FIVE[2]]["in_reply_to_status_id"], by_text[FIVE[1]]["id"])
            self.assertEqual(by_text[FIVE[3]]["in_reply_to_status_id"], by_text[FIVE[2]]["id"])
            self.assertEqual(by_text[FIVE[4]]["in_reply_to_status_id"], by_text[FIVE[0]]["id"])
