"""
Blocks, mutes and "no retweets" (docs/design/blocks.md): the endpoints in
memory; a block of a remote account between two real servers; real
client libraries blocking, unblocking and muting.
"""

from __future__ import annotations

import os
from typing import Any
from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli
from tests.test_api import BASE, APITestCase
from tests.test_federation import PASSWORD, Federation, acct, call, follow, post, wait_for
from tests.test_status_pages import StatusPagesTestCase


def ids(statuses: list[dict[str, Any]]) -> list[int]:
    return [status["id"] for status in statuses]


class BlocksAPITests(APITestCase):
    def get(self, path: str, user: str | None = "alice", **params: Any) -> Any:
        code, body, _ = self.call("GET", path, user, params=params or None)
        self.assertEqual(code, 200, body)
        return body

    def do(self, path: str, user: str = "alice", **data: Any) -> Any:
        code, body, _ = self.call("POST", path, user, data=data)
        self.assertEqual(code, 200, body)
        return body

    def follow(self, user: str, target: str) -> tuple[int, Any, Any]:
        return self.call("POST", "/1.1/friendships/create.json", user,
                         data={"screen_name": target})

    def test_local_block(self) -> None:
        """
        alice blocks bob: both follows go (counts too); bob's follow is
        refused with Twitter's 162 and its message, and so is alice's
        until she unblocks; blocks/ids, /list, /exists and the 1.0
        blocks/blocking/ids show bob; friendships/show tells alice she
        blocks bob, and tells carol nothing of it.  Unblocking brings no
        follow back, and bob may follow again.
        """
        self.assertEqual(self.follow("alice", "bob")[0], 200)
        self.assertEqual(self.follow("bob", "alice")[0], 200)
        body = self.do("/1.1/blocks/create.json", screen_name="bob")
        self.assertEqual(body["screen_name"], "bob")
        self.assertEqual((body["followers_count"], body["friends_count"]), (0, 0))
        self.assertEqual(self.get("/1.1/friends/ids.json")["ids"], [])
        self.assertEqual(self.get("/1.1/followers/ids.json")["ids"], [])
        refused = self.follow("bob", "alice")
        self.assertError(refused, 403, 162)
        self.assertEqual(
            refused[1]["errors"][0]["message"],
            "You have been blocked from following this account at the request of the user.",
        )
        self.assertError(self.follow("alice", "bob"), 403, 162)
        bob_id = body["id"]
        self.assertEqual(self.get("/1.1/blocks/ids.json")["ids"], [bob_id])
        self.assertEqual(self.get("/1.1/blocks/ids.json", stringify_ids="true")["ids"],
                         [str(bob_id)])
        listed = self.get("/1.1/blocks/list.json")
        self.assertEqual([u["screen_name"] for u in listed["users"]], ["bob"])
        self.assertEqual(listed["next_cursor"], 0)
        self.assertEqual(self.get("/blocks/blocking/ids.json"), [bob_id])
        self.assertEqual(self.get("/1.1/blocks/exists.json", screen_name="bob")["id"], bob_id)
        self.assertError(self.call("GET", "/1.1/blocks/exists.json", "alice",
                                   params={"screen_name": "carol"}), 404, 34)
        shown = self.get("/1.1/friendships/show.json", target_screen_name="bob")
        self.assertTrue(shown["relationship"]["source"]["blocking"])
        shown = self.get("/1.1/friendships/show.json", "carol", source_screen_name="alice",
                         target_screen_name="bob")
        self.assertFalse(shown["relationship"]["source"]["blocking"])
        lookup = self.get("/1.1/friendships/lookup.json", screen_name="bob")
        self.assertEqual(lookup[0]["connections"], ["blocking"])

        self.do("/1.1/blocks/destroy.json", user_id=bob_id)
        self.assertEqual(self.get("/1.1/blocks/ids.json")["ids"], [])
        self.assertEqual(self.get("/1.1/friends/ids.json")["ids"], [])
        self.assertEqual(self.get("/1.1/followers/ids.json")["ids"], [])
        self.assertEqual(self.follow("bob", "alice")[0], 200)
        self.assertEqual(self.get("/1.1/followers/ids.json")["ids"], [bob_id])

    def test_blocked_hidden_everywhere(self) -> None:
        """
        What bob posts, retweets, mentions and replies leaves every list
        alice reads once she blocks him: home (carol's retweet of bob's
        post too), mentions, carol's user timeline, search, carol's
        favorites, the retweets of bob's post, the conversation, the public
        timeline, bob's own timeline.  statuses/show of one of his posts,
        asked for by its id, still answers.  Others still see it all.
        """
        self.follow("alice", "carol")
        self.follow("alice", "bob")
        question = self.post("alice", "who has a ladder?")
        reply = self.post("bob", "@alice me, zebra", in_reply_to_status_id=question["id"])
        mention = self.post("bob", "hey @alice zebra")
        own = self.post("bob", "zebra crossing")
        retweet = self.do(f"/1.1/statuses/retweet/{own['id']}.json", "carol")
        self.do("/1.1/favorites/create.json", "carol", id=own["id"])
        carol_post = self.post("carol", "carol on zebras")
        bobs = {reply["id"], mention["id"], own["id"], retweet["id"]}

        places = {
            "home": ("/1.1/statuses/home_timeline.json", {}),
            "mentions": ("/1.1/statuses/mentions_timeline.json", {}),
            "carol's timeline": ("/1.1/statuses/user_timeline.json", {"screen_name": "carol"}),
            "favorites of carol": ("/1.1/favorites/list.json", {"screen_name": "carol"}),
            "retweets of bob's post": (f"/1.1/statuses/retweets/{own['id']}.json", {}),
            "conversation": (f"/1.1/statuses/conversation/{question['id']}.json", {}),
            "public timeline": ("/1.1/statuses/public_timeline.json", {}),
        }

        def seen(user: str) -> dict[str, set[int]]:
            found = {name: set(ids(self.get(path, user, **params))) & bobs
                     for name, (path, params) in places.items()}
            search = self.get("/1.1/search/tweets.json", user, q="zebra")["statuses"]
            found["search"] = set(ids(search)) & bobs
            return found

        before = seen("alice")
        self.assertTrue(all(before.values()), before)
        self.do("/1.1/blocks/create.json", screen_name="bob")
        self.assertEqual(seen("alice"), {name: set() for name in before})
        others = seen("carol")
        for personal in ("home", "mentions"):
            del others[personal], before[personal]
        self.assertEqual(others, before)
        # bob's own timeline is empty to alice; one status asked for by
        # its id still answers, as on Twitter.
        self.assertEqual(self.get("/1.1/statuses/user_timeline.json", screen_name="bob"), [])
        self.assertEqual(len(self.get("/1.1/statuses/user_timeline.json", "carol",
                                      screen_name="bob")), 3)
        self.assertEqual(self.get(f"/1.1/statuses/show/{own['id']}.json")["id"], own["id"])
        # Not hidden: carol's own post.
        self.assertIn(carol_post["id"], ids(self.get("/1.1/statuses/home_timeline.json")))

    def test_mutes(self) -> None:
        """
        A muted account's posts and retweets leave the home timeline and
        mentions; the follow stays; mutes/users/ids and /list show it;
        unmuting brings them back.
        """
        self.follow("alice", "bob")
        mention = self.post("bob", "hello @alice")
        original = self.post("carol", "carol's")
        retweet = self.do(f"/1.1/statuses/retweet/{original['id']}.json", "bob")
        body = self.do("/1.1/mutes/users/create.json", screen_name="bob")
        self.assertEqual(body["screen_name"], "bob")
        self.assertEqual(self.get("/1.1/statuses/home_timeline.json"), [])
        self.assertEqual(self.get("/1.1/statuses/mentions_timeline.json"), [])
        self.assertEqual(self.get("/1.1/friends/ids.json")["ids"], [body["id"]])
        self.assertEqual(self.get("/1.1/mutes/users/ids.json")["ids"], [body["id"]])
        listed = self.get("/1.1/mutes/users/list.json", skip_status="1")
        self.assertEqual([u["screen_name"] for u in listed["users"]], ["bob"])
        shown = self.get("/1.1/friendships/show.json", target_screen_name="bob")
        self.assertEqual((shown["relationship"]["source"]["muting"],
                          shown["relationship"]["source"]["blocking"]), (True, False))
        self.do("/1.1/mutes/users/destroy.json", screen_name="bob")
        self.assertEqual(ids(self.get("/1.1/statuses/home_timeline.json")),
                         [retweet["id"], mention["id"]])
        self.assertEqual(self.get("/1.1/mutes/users/ids.json")["ids"], [])

    def test_no_retweets(self) -> None:
        """
        friendships/update retweets=false hides bob's retweets (not his
        posts) from alice's home timeline and lists him in
        friendships/no_retweets/ids; it answers the relationship
        (want_retweets false); device is accepted; retweets=true undoes it.
        """
        self.follow("alice", "bob")
        own = self.post("bob", "bob's own")
        original = self.post("carol", "carol's")
        retweet = self.do(f"/1.1/statuses/retweet/{original['id']}.json", "bob")
        shown = self.get("/1.1/friendships/show.json", target_screen_name="bob")
        self.assertTrue(shown["relationship"]["source"]["want_retweets"])
        answer = self.do("/1.1/friendships/update.json", screen_name="bob", retweets="false",
                         device="true")
        self.assertFalse(answer["relationship"]["source"]["want_retweets"])
        self.assertTrue(answer["relationship"]["source"]["following"])
        self.assertEqual(ids(self.get("/1.1/statuses/home_timeline.json")), [own["id"]])
        bob_id = own["user"]["id"]
        self.assertEqual(self.get("/1.1/friendships/no_retweets/ids.json"), [bob_id])
        self.assertEqual(self.get("/1.1/friendships/no_retweets/ids.json", stringify_ids="1"),
                         [str(bob_id)])
        self.do("/1.1/friendships/update.json", screen_name="bob", retweets="true")
        self.assertEqual(ids(self.get("/1.1/statuses/home_timeline.json")),
                         [retweet["id"], own["id"]])
        self.assertEqual(self.get("/1.1/friendships/no_retweets/ids.json"), [])

    def test_errors_lists_and_xml(self) -> None:
        """
        Bad requests get Twitter's errors: no user named (170), an unknown
        one (50), blocking oneself, a GET of a write (34), no credentials
        (215), a bad boolean (44); lists/list is an empty list; blocks/ids
        and blocks/list come as XML too, unversioned.
        """
        self.assertError(self.call("POST", "/1.1/blocks/create.json", "alice", data={}),
                         400, 170)
        self.assertError(self.call("POST", "/1.1/blocks/create.json", "alice",
                                   data={"screen_name": "nobody"}), 404, 50)
        code, body, _ = self.call("POST", "/1.1/blocks/create.json", "alice",
                                  data={"screen_name": "alice"})
        self.assertEqual(code, 400, body)
        self.assertIn("yourself", body["errors"][0]["message"])
        self.assertError(self.call("GET", "/1.1/blocks/create.json", "alice",
                                   params={"screen_name": "bob"}), 404, 34)
        self.assertError(self.call("GET", "/1.1/blocks/ids.json"), 401, 215)
        self.assertError(self.call("POST", "/1.1/friendships/update.json", "alice",
                                   data={"screen_name": "bob", "retweets": "maybe"}), 400, 44)
        self.assertEqual(self.get("/1.1/lists/list.json"), [])
        self.assertEqual(self.get("/1.1/lists/list.json", None, screen_name="bob"), [])
        self.do("/blocks/create/bob.json")
        self.do("/1.1/friendships/update.json", screen_name="carol", retweets="false")
        for path, element in (("/blocks/ids.xml", "id"), ("/blocks/list.xml", "screen_name"),
                              ("/blocks/exists.xml?screen_name=bob", "screen_name"),
                              ("/blocks/blocking/ids.xml", "id"),
                              ("/1.1/friendships/no_retweets/ids.xml", "id"),
                              ("/1.1/mutes/users/ids.xml", "ids")):
            d = self.stub.get(BASE + path, auth=("alice", "alice-password"))
            self.stub.flush()
            response = self.successResultOf(d)
            self.assertEqual(response.code, 200)
            body_d = response.content()
            self.stub.flush()
            root = ElementTree.fromstring(self.successResultOf(body_d))
            found = [root] if root.tag == element else root.findall(f".//{element}")
            self.assertEqual(len(found), 1, (path, ElementTree.tostring(root)))


class BlockedOnPagesTests(StatusPagesTestCase):
    def test_pages_hide_the_blocked(self) -> None:
        """
        Once alice blocks bob, his posts leave her home page, the public
        page, his profile page, the thread of her status page and the
        hashtag page as she sees them; a visitor not signed in
        still sees them on the public page.
        """
        self.run_(self.microblog.follow(self.alice, self.bob))
        question = self.run_(self.microblog.post(self.alice, "a #zebra question"))
        self.run_(self.microblog.post(
            self.bob, "bob writes zebra #zebra", in_reply_to_status_id=question.id))
        alice = self.signed_in("alice")
        # The thread on alice's status page and the hashtag page too.
        paths = ("/home", "/", "/bob", f"/alice/status/{question.seq}", "/hashtag/zebra")
        for path in paths:
            self.assertIn("bob writes zebra", alice.get(path).text, path)
        self.run_(self.microblog.block(self.alice, self.bob))
        for path in paths:
            page = alice.get(path)
            self.assertEqual(page.code, 200, path)
            self.assertNotIn("bob writes zebra", page.text, path)
        self.assertIn("bob writes zebra", self.browser().get("/").text)


class BlockAcrossServersTests(SynchronousTestCase):
    def test_block_remote_account(self) -> None:
        """
        alice (s1) and dave (s2) follow each other; dave mentions alice,
        replies to her in a conversation, and carol (s1) retweets and
        favorites his post.  alice blocks ``@dave@s2``: on s1 nothing of
        dave's shows to alice in home, mentions, carol's timeline, search,
        carol's favorites, the retweets of his post, the conversation,
        friends and followers; his later posts, which s1 still copies for
        carol, neither.  Both follows are gone (s2 is told of alice's
        unfollow).  dave's new follow from s2 is refused by s1 (s2 drops
        the notice) and not recorded; after the unblock, it is.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice", "carol"])
        s2 = federation.twitter("s2", ["dave"])
        alice, dave = acct("alice", s1), acct("dave", s2)
        post(s2, "dave", "dave's first words")
        follow(s1, "alice", dave)
        follow(s1, "carol", dave)
        follow(s1, "alice", "carol")
        follow(s2, "dave", alice)
        wait_for(lambda: len(call(s1, "GET", "/1.1/followers/ids.json", "alice")["ids"]) == 1,
                 30, "dave's follow on s1", step=0.25)
        question = post(s1, "alice", "who knows a good zebra joke?")
        own = post(s2, "dave", "zebras are striped horses")
        post(s2, "dave", f"@{alice} hello zebra")
        copies, _ = wait_for(
            lambda: [s for s in call(s2, "GET", "/1.1/statuses/home_timeline.json", "dave")
                     if s["text"] == question["text"]], 30, "alice's question on s2")
        call(s2, "POST", "/1.1/statuses/update.json", "dave",
             status=f"@{alice} a zebra walks into a bar", in_reply_to_status_id=copies[0]["id"])

        def dave_ids(statuses: list[dict[str, Any]]) -> set[int]:
            found = set()
            for status in statuses:
                for shown in (status, status.get("retweeted_status") or {}):
                    if shown.get("user", {}).get("screen_name") == dave:
                        found.add(status["id"])
            return found

        def on_s1(path: str, user: str = "alice") -> list[dict[str, Any]]:
            body = call(s1, "GET", path, user)
            return body["statuses"] if isinstance(body, dict) else body  # type: ignore

        wait_for(lambda: any(s["text"] == own["text"]
                             for s in on_s1("/1.1/statuses/home_timeline.json")),
                 30, "dave's post in alice's home on s1", step=0.25)
        wait_for(lambda: len(dave_ids(on_s1("/1.1/statuses/mentions_timeline.json"))) == 2,
                 30, "dave's mention and reply on s1", step=0.25)
        dave_post = [s for s in on_s1("/1.1/statuses/home_timeline.json")
                     if s["text"] == own["text"]][0]
        call(s1, "POST", f"/1.1/statuses/retweet/{dave_post['id']}.json", "carol")
        call(s1, "POST", "/1.1/favorites/create.json", "carol", id=dave_post["id"])
        places = [
            "/1.1/statuses/home_timeline.json",
            "/1.1/statuses/mentions_timeline.json",
            "/1.1/statuses/user_timeline.json?screen_name=carol",
            "/1.1/search/tweets.json?q=zebra",
            "/1.1/favorites/list.json?screen_name=carol",
            f"/1.1/statuses/retweets/{dave_post['id']}.json",
            f"/1.1/statuses/conversation/{question['id']}.json",
        ]
        before = {path: dave_ids(on_s1(path)) for path in places}
        self.assertTrue(all(before.values()), before)

        call(s1, "POST", "/1.1/blocks/create.json", "alice", screen_name="@" + dave)
        self.assertEqual({path: dave_ids(on_s1(path)) for path in places},
                         {path: set() for path in places})
        self.assertEqual(call(s1, "GET", "/1.1/friends/ids.json", "alice")["ids"], [
            call(s1, "GET", "/1.1/users/show.json?screen_name=carol", "alice")["id"]])
        self.assertEqual(call(s1, "GET", "/1.1/followers/ids.json", "alice")["ids"], [])
        wait_for(lambda: [u["screen_name"] for u in call(
            s2, "GET", "/1.1/followers/list.json?skip_status=1", "dave")["users"]
        ] == [acct("carol", s1)],
                 30, "alice's unfollow on s2", step=0.25)
        # dave's later posts still come to s1 (carol follows him), not to alice.
        later = post(s2, "dave", f"@{alice} zebra again, later")
        wait_for(lambda: any(s["text"] == later["text"]
                             for s in on_s1("/1.1/statuses/home_timeline.json", "carol")),
                 30, "dave's later post on s1", step=0.25)
        for path in places:
            self.assertEqual(dave_ids(on_s1(path)), set(), path)

        # dave follows again from s2 (after an unfollow, so s2 sends a notice).
        call(s2, "POST", "/1.1/friendships/destroy.json", "dave", screen_name=alice)
        follow(s2, "dave", alice)
        wait_for(lambda: "dropping follow notice" in s2.log_text(), 30,
                 "s2 told that s1 refuses the follow")
        self.assertIn("blocked from following", s2.log_text())
        self.assertEqual(call(s1, "GET", "/1.1/followers/ids.json", "alice")["ids"], [])

        call(s1, "POST", "/1.1/blocks/destroy.json", "alice", screen_name=dave)
        self.assertEqual(call(s1, "GET", "/1.1/blocks/ids.json", "alice")["ids"], [])
        call(s2, "POST", "/1.1/friendships/destroy.json", "dave", screen_name=alice)
        follow(s2, "dave", alice)
        wait_for(lambda: len(call(s1, "GET", "/1.1/followers/ids.json", "alice")["ids"]) == 1,
                 30, "dave's follow on s1 after the unblock", step=0.25)
        self.assertEqual(len(call(s1, "GET", "/1.1/friends/ids.json", "alice")["ids"]), 1)
        for server in (s1, s2):
            self.assertNotIn("Traceback", server.log_text())


class ClientLibraryTests(SynchronousTestCase):
    def test_tweepy(self) -> None:
        """
        tweepy 4 (over https, OAuth 1.0a) blocks and unblocks, lists blocks
        and their ids, mutes and unmutes, gets 162 when following someone
        who blocks it, and turns off someone's retweets.
        """
        import tweepy

        from tests.test_clients import approve, create_app
        from tests.test_tls import TLSFederation

        helper = TLSFederation(self)
        os.environ["REQUESTS_CA_BUNDLE"] = helper.ca_file
        self.addCleanup(os.environ.pop, "REQUESTS_CA_BUNDLE", None)
        server = helper.start("s1", users=("alice", "bob", "carol"))
        host = server.url.split("//", 1)[1]
        key, secret = create_app(server, "carol")

        class DistwitAuth(tweepy.OAuth1UserHandler):
            def _get_oauth_url(self, endpoint: str) -> str:
                return f"https://{host}/oauth/{endpoint}"

        def sign_in(handle: str) -> tweepy.API:
            auth = DistwitAuth(key, secret, callback="oob")
            url = auth.get_authorization_url()
            auth.get_access_token(approve(url, handle, PASSWORD, helper.ca_file))
            return tweepy.API(auth, host=host)

        alice, bob = sign_in("alice"), sign_in("bob")
        bob.create_friendship(screen_name="alice")
        blocked = alice.create_block(screen_name="bob")
        self.assertEqual(blocked.screen_name, "bob")
        self.assertEqual([u.screen_name for u in alice.get_blocks()], ["bob"])
        self.assertEqual(alice.get_blocked_ids(), [blocked.id])
        self.assertEqual(alice.get_follower_ids(), [])
        with self.assertRaises(tweepy.errors.Forbidden) as raised:
            bob.create_friendship(screen_name="alice")
        self.assertEqual(raised.exception.api_codes, [162])
        alice.destroy_block(user_id=blocked.id)
        self.assertEqual(alice.get_blocked_ids(), [])
        self.assertEqual(alice.get_blocks(), [])
        muted = alice.create_mute(screen_name="bob")
        self.assertEqual(alice.get_muted_ids(), [muted.id])
        self.assertEqual([u.screen_name for u in alice.get_mutes()], ["bob"])
        alice.destroy_mute(screen_name="bob")
        self.assertEqual(alice.get_muted_ids(), [])
        self.assertEqual(alice.no_retweets_friendships(), [])
        alice.create_friendship(screen_name="bob")
        source, _ = alice.update_friendship(screen_name="bob", retweets=False)
        self.assertFalse(source.want_retweets)
        self.assertEqual(alice.no_retweets_friendships(), [blocked.id])
        self.assertEqual(alice.get_lists(), [])
        self.assertNotIn("Traceback", server.log_text())

    def test_python_twitter(self) -> None:
        """
        python-twitter 3.5 blocks and unblocks, lists blocks and their ids,
        mutes and unmutes.
        """
        import twitter

        from tests.test_clients import create_app

        base = os.path.abspath(self.mktemp())
        data = os.path.join(base, "s1")
        for handle in ("alice", "bob", "carol"):
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.assertEqual(done.returncode, 0, done.stderr)
        server = ServerProcess(data)
        self.addCleanup(server.stop)
        key, secret = create_app(server, "carol")
        done = run_cli("token", "create", "--consumer-key", key, "--user", "alice",
                       "--data", data)
        self.assertEqual(done.returncode, 0, done.stderr)
        token = dict(line.split("=", 1) for line in done.stdout.splitlines())
        alice = twitter.Api(key, secret, token["access_token"], token["access_token_secret"],
                            base_url=server.url + "/1.1")
        blocked = alice.CreateBlock(screen_name="bob")
        self.assertEqual(blocked.screen_name, "bob")
        self.assertEqual([u.screen_name for u in alice.GetBlocks()], ["bob"])
        self.assertEqual(alice.GetBlocksIDs(), [blocked.id])
        alice.DestroyBlock(user_id=blocked.id)
        self.assertEqual(alice.GetBlocksIDs(), [])
        alice.CreateMute(screen_name="bob")
        self.assertEqual([u.screen_name for u in alice.GetMutes()], ["bob"])
        self.assertEqual(alice.GetMutesIDs(), [blocked.id])
        alice.DestroyMute(screen_name="bob")
        self.assertEqual(alice.GetMutesIDs(), [])
        self.assertNotIn("Traceback", server.log_text())
