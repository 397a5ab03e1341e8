"""
Direct messages (issue 15, docs/design/direct-messages.md).

In memory, through the API: the classic endpoints in JSON and XML, the
2016+ events, Twitter's code 150, who may read and destroy.  Across real
servers (processes on loopback): both ways with real client libraries
(Python Twitter Tools as 2008 XML and JSON, python-twitter, tweepy 4),
nowhere public on either server, through an outage of the recipient's
server, refused on both servers when the recipient does not follow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any
from xml.etree import ElementTree

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_api import BASE, PASSWORDS, APITestCase
from tests.test_fuzz import API_VALUES, FUZZ, FuzzCase

TEXT_141 = "x" * 141
#: The password of every user of the servers the tests start
#: (tests.test_federation.PASSWORD).
PASSWORD_OF = "correct horse battery"


class DirectMessageAPITests(APITestCase):
    def send(self, sender: str, recipient: str, text: str,
             path: str = "/1.1/direct_messages/new.json", **extra: Any) -> tuple[int, Any, Any]:
        return self.call("POST", path, sender, data={"screen_name": recipient, "text": text,
                                                     **extra})

    def follow(self, user: str, target: str) -> None:
        code, body, _ = self.call("POST", "/1.1/friendships/create.json", user,
                                  data={"screen_name": target})
        self.assertEqual(code, 200, body)

    def raw(self, method: str, path: str, user: str, data: Any = None) -> tuple[int, bytes, str]:
        kwargs: dict[str, Any] = {"auth": (user, PASSWORDS[user])}
        if data is not None:
            kwargs["data"] = data
        d = self.stub.request(method, BASE + path, **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        return response.code, body, response.headers.getRawHeaders("content-type")[0]

    def test_sent_and_received(self) -> None:
        """
        Bob follows alice, so alice may message him: the answer is
        Twitter's direct message (ids, text, time, both users and their
        ids and names, entities); bob receives it, alice has sent it; both
        may show it; carol may not (34), nor see it anywhere.
        """
        self.follow("bob", "alice")
        code, sent, _ = self.send("alice", "bob", "hello bob #dm http://example.com")
        self.assertEqual(code, 200, sent)
        self.assertEqual(sent["text"], "hello bob #dm http://example.com")
        self.assertEqual(sent["id_str"], str(sent["id"]))
        self.assertEqual((sent["sender_screen_name"], sent["recipient_screen_name"]),
                         ("alice", "bob"))
        self.assertEqual((sent["sender"]["id"], sent["recipient"]["id"]),
                         (sent["sender_id"], sent["recipient_id"]))
        self.assertEqual((sent["sender_id_str"], sent["recipient_id_str"]),
                         (str(sent["sender_id"]), str(sent["recipient_id"])))
        self.assertRegex(sent["created_at"], r"\A[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d ")
        self.assertEqual([h["text"] for h in sent["entities"]["hashtags"]], ["dm"])
        self.assertEqual([u["url"] for u in sent["entities"]["urls"]], ["http://example.com"])
        _, received, _ = self.call("GET", "/1.1/direct_messages.json", "bob")
        self.assertEqual([m["id"] for m in received], [sent["id"]])
        _, mine, _ = self.call("GET", "/1.1/direct_messages/sent.json", "alice")
        self.assertEqual([m["id"] for m in mine], [sent["id"]])
        self.assertEqual(self.call("GET", "/1.1/direct_messages.json", "alice")[1], [])
        self.assertEqual(self.call("GET", "/1.1/direct_messages/sent.json", "bob")[1], [])
        for user in ("alice", "bob"):
            for path in (f"/1.1/direct_messages/show/{sent['id']}.json",
                         f"/1.1/direct_messages/show.json?id={sent['id']}"):
                code, shown, _ = self.call("GET", path, user)
                self.assertEqual((code, shown["text"]), (200, sent["text"]))
        self.assertError(
            self.call("GET", f"/1.1/direct_messages/show/{sent['id']}.json", "carol"), 404, 34
        )
        self.assertEqual(self.call("GET", "/1.1/direct_messages.json", "carol")[1], [])
        self.assertError(self.call("GET", "/1.1/direct_messages.json"), 401, 215)

    def test_2008_paths_and_parameters(self) -> None:
        """
        The unversioned paths of 2008 (at the root and under /api/), and
        the recipient as ``user`` (a screen name or an id) or ``user_id``.
        """
        self.follow("bob", "alice")
        _, bob, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "alice")
        for path, field, value in [
            ("/direct_messages/new.json", "user", "bob"),
            ("/api/direct_messages/new.json", "user", str(bob["id"])),
            ("/direct_messages/new.json", "user_id", str(bob["id"])),
        ]:
            code, body, _ = self.call("POST", path, "alice",
                                      data={field: value, "text": f"by {field} {value}"})
            self.assertEqual((code, body.get("recipient_screen_name")), (200, "bob"), body)
        code, received, _ = self.call("GET", "/direct_messages.json", "bob")
        self.assertEqual((code, len(received)), (200, 3))
        code, received, _ = self.call("GET", "/api/direct_messages.json", "bob")
        self.assertEqual((code, len(received)), (200, 3))

    def test_must_be_followed(self) -> None:
        """
        Twitter's rule: only to a follower.  Else 403 with code 150; to
        oneself too.  Once carol follows alice, alice may write to her.
        """
        result = self.send("alice", "carol", "hi carol")
        self.assertError(result, 403, 150)
        self.assertEqual(
            result[1]["errors"][0]["message"],
            "You cannot send messages to users who are not following you.",
        )
        self.assertError(self.send("alice", "alice", "me"), 403, 150)
        self.follow("alice", "carol")  # alice following carol is not enough
        self.assertError(self.send("alice", "carol", "hi carol"), 403, 150)
        self.follow("carol", "alice")
        self.assertEqual(self.send("alice", "carol", "hi carol")[0], 200)
        self.assertEqual(self.call("GET", "/1.1/direct_messages/sent.json", "alice")[1][0]["text"],
                         "hi carol")

    def test_blocked_sender(self) -> None:
        """
        A block: carol's earlier message from alice leaves carol's list, and
        alice can no longer write to her (150), even once carol follows her
        again through a record the block left (another server may hold one).
        """
        self.follow("carol", "alice")
        self.assertEqual(self.send("alice", "carol", "before the block")[0], 200)
        received = self.call("GET", "/1.1/direct_messages.json", "carol")[1]
        self.assertEqual([m["text"] for m in received], ["before the block"])
        code, body, _ = self.call("POST", "/1.1/blocks/create.json", "carol",
                                  data={"screen_name": "alice"})
        self.assertEqual(code, 200, body)
        self.assertEqual(self.call("GET", "/1.1/direct_messages.json", "carol")[1], [])
        self.assertError(self.send("alice", "carol", "after the block"), 403, 150)
        # A follow the block could not remove (as a remote server's would be).
        carol = self.successResultOf(self.store.get_local_user("carol"))
        alice = self.successResultOf(self.store.get_local_user("alice"))
        self.successResultOf(self.store.set_hiding(carol.id, alice.id, "blocking", False, 0))
        self.successResultOf(self.store.follow(carol.id, alice.id, 0))
        self.successResultOf(self.store.set_hiding(carol.id, alice.id, "blocking", True, 0))
        self.assertError(self.send("alice", "carol", "after the block"), 403, 150)

    def test_bad_requests(self) -> None:
        """
        No text, empty text, too long (as for posts), no or unknown
        recipient: Twitter's errors, never a traceback; nothing kept.
        """
        self.follow("bob", "alice")
        self.assertError(self.call("POST", "/1.1/direct_messages/new.json", "alice",
                                   data={"screen_name": "bob"}), 400, 170)
        self.assertError(self.send("alice", "bob", "   "), 400, 170)
        self.assertError(self.send("alice", "bob", TEXT_141), 403, 186)
        self.assertEqual(self.send("alice", "bob", "x" * 140)[0], 200)
        self.assertError(self.call("POST", "/1.1/direct_messages/new.json", "alice",
                                   data={"text": "to whom?"}), 400, 170)
        self.assertError(self.send("alice", "nobody", "hi"), 404, 50)
        self.assertError(self.call("GET", "/1.1/direct_messages/new.json", "alice"), 404, 34)
        self.assertError(self.call("GET", "/1.1/direct_messages/show/x.json", "alice"), 400, 44)
        self.assertError(self.call("GET", "/1.1/direct_messages/show.json", "alice"), 400, 170)
        self.assertError(self.call("GET", "/1.1/direct_messages/show/99.json", "alice"), 404, 34)
        self.assertEqual(len(self.call("GET", "/1.1/direct_messages.json", "bob")[1]), 1)

    def test_destroy(self) -> None:
        """
        The recipient destroys a message: gone for them (show 404, not in
        their list, a second destroy 404), still there for the sender, who
        may destroy it too.  Nobody else may (34).
        """
        self.follow("bob", "alice")
        _, first, _ = self.send("alice", "bob", "first")
        _, second, _ = self.send("alice", "bob", "second")
        self.assertError(self.call("POST", f"/1.1/direct_messages/destroy/{first['id']}.json",
                                   "carol"), 404, 34)
        code, body, _ = self.call("POST", f"/1.1/direct_messages/destroy/{first['id']}.json",
                                  "bob")
        self.assertEqual((code, body["id"], body["text"]), (200, first["id"], "first"))
        self.assertError(self.call("GET", f"/1.1/direct_messages/show/{first['id']}.json",
                                   "bob"), 404, 34)
        self.assertError(self.call("POST", f"/1.1/direct_messages/destroy/{first['id']}.json",
                                   "bob"), 404, 34)
        self.assertEqual([m["id"] for m in self.call("GET", "/1.1/direct_messages.json",
                                                       "bob")[1]], [second["id"]])
        self.assertEqual([m["id"] for m in self.call("GET", "/1.1/direct_messages/sent.json",
                                                       "alice")[1]], [second["id"], first["id"]])
        code, _, _ = self.call("POST", "/1.1/direct_messages/destroy.json", "alice",
                               data={"id": str(first["id"])})
        self.assertEqual(code, 200)
        self.assertEqual([m["id"] for m in self.call("GET", "/1.1/direct_messages/sent.json",
                                                       "alice")[1]], [second["id"]])
        self.assertError(self.call("GET", "/1.1/direct_messages/destroy.json", "alice"), 404, 34)

    def test_paging(self) -> None:
        """
        since_id, max_id, count and page as for timelines.
        """
        self.follow("bob", "alice")
        ids = [self.send("alice", "bob", f"m{i}")[1]["id"] for i in range(5)]
        newest_first = ids[::-1]

        def listed(query: str) -> list[int]:
            code, body, _ = self.call("GET", "/1.1/direct_messages.json?" + query, "bob")
            self.assertEqual(code, 200, body)
            return [m["id"] for m in body]

        self.assertEqual(listed("count=2"), newest_first[:2])
        self.assertEqual(listed("count=2&page=2"), newest_first[2:4])
        self.assertEqual(listed(f"since_id={ids[2]}"), newest_first[:2])
        self.assertEqual(listed(f"max_id={ids[2]}"), newest_first[2:])
        self.assertEqual(listed(f"since_id={ids[0]}&max_id={ids[3]}"), newest_first[1:4])
        self.assertError(self.call("GET", "/1.1/direct_messages.json?since_id=x", "bob"), 400, 44)
        self.assertError(self.call("GET", "/1.1/direct_messages.json?page=0", "bob"), 400, 44)

    def test_xml(self) -> None:
        """
        The 2008 XML: ``<direct-messages type="array">`` (empty too) of
        ``<direct_message>`` with ``<sender>`` and ``<recipient>``; a single
        message as ``<direct_message>``; errors as ``<errors>``.
        """
        code, body, kind = self.raw("GET", "/direct_messages.xml", "bob")
        self.assertEqual((code, kind), (200, "application/xml; charset=utf-8"))
        root = ElementTree.fromstring(body)
        self.assertEqual((root.tag, root.get("type"), len(root)), ("direct-messages", "array", 0))
        self.follow("bob", "alice")
        code, body, _ = self.raw("POST", "/direct_messages/new.xml", "alice",
                                 data={"user": "bob", "text": "in <xml> & out"})
        self.assertEqual(code, 200, body)
        sent = ElementTree.fromstring(body)
        self.assertEqual(sent.tag, "direct_message")
        self.assertEqual(sent.findtext("text"), "in <xml> & out")
        for path in ("/direct_messages.xml", "/direct_messages/sent.xml"):
            user = "bob" if path == "/direct_messages.xml" else "alice"
            root = ElementTree.fromstring(self.raw("GET", path, user)[1])
            (message,) = root.findall("direct_message")
            self.assertEqual(message.findtext("id"), sent.findtext("id"))
            self.assertEqual(message.findtext("sender_screen_name"), "alice")
            self.assertEqual(message.findtext("recipient_screen_name"), "bob")
            self.assertEqual(message.find("sender").findtext("screen_name"), "alice")
            self.assertEqual(message.find("recipient").findtext("screen_name"), "bob")
        code, body, _ = self.raw("GET", f"/direct_messages/show/{sent.findtext('id')}.xml",
                                 "carol")
        self.assertEqual(code, 404)
        self.assertEqual(ElementTree.fromstring(body).find("error").get("code"), "34")
        code, body, _ = self.raw("POST", "/direct_messages/new.xml", "alice",
                                 data={"user": "carol", "text": "no"})
        self.assertEqual(code, 403)
        self.assertEqual(ElementTree.fromstring(body).find("error").get("code"), "150")

    def test_events(self) -> None:
        """
        The 2016+ events API: events/new (JSON body), events/list (sent and
        received, with a cursor), events/show, events/destroy (DELETE).
        """
        self.follow("bob", "alice")
        self.follow("alice", "bob")
        _, bob, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "alice")

        def new(sender: str, recipient_id: Any, text: Any) -> tuple[int, Any, Any]:
            event = {"event": {"type": "message_create", "message_create": {
                "target": {"recipient_id": recipient_id}, "message_data": {"text": text}}}}
            return self.call("POST", "/1.1/direct_messages/events/new.json", sender,
                             data=json.dumps(event).encode(),
                             headers={"content-type": "application/json"})

        code, created, _ = new("alice", str(bob["id"]), "event one")
        self.assertEqual(code, 200, created)
        event = created["event"]
        self.assertEqual(event["type"], "message_create")
        self.assertEqual(event["message_create"]["message_data"]["text"], "event one")
        self.assertEqual(event["message_create"]["target"]["recipient_id"], str(bob["id"]))
        _, reply, _ = self.send("bob", "alice", "a reply")
        _, listed, _ = self.call("GET", "/1.1/direct_messages/events/list.json", "alice")
        self.assertEqual([e["id"] for e in listed["events"]], [str(reply["id"]), event["id"]])
        _, first_page, _ = self.call("GET", "/1.1/direct_messages/events/list.json?count=1",
                                     "alice")
        self.assertEqual([e["id"] for e in first_page["events"]], [str(reply["id"])])
        _, second_page, _ = self.call(
            "GET", "/1.1/direct_messages/events/list.json?count=1&cursor="
            + first_page["next_cursor"], "alice")
        self.assertEqual([e["id"] for e in second_page["events"]], [event["id"]])
        _, shown, _ = self.call("GET", f"/1.1/direct_messages/events/show.json?id={event['id']}",
                                "bob")
        self.assertEqual(shown["event"]["id"], event["id"])
        code, _, _ = self.call("DELETE",
                               f"/1.1/direct_messages/events/destroy.json?id={event['id']}", "bob")
        self.assertEqual(code, 200)
        self.assertError(self.call(
            "GET", f"/1.1/direct_messages/events/show.json?id={event['id']}", "bob"), 404, 34)
        self.assertError(new("carol", str(bob["id"]), "not followed"), 403, 150)
        self.assertError(new("alice", "999999", "nobody"), 404, 50)
        self.assertError(new("alice", str(bob["id"]), ""), 400, 170)
        self.assertError(self.call("POST", "/1.1/direct_messages/events/new.json", "alice",
                                   data=b"{not json", headers={"content-type": "application/json"}),
                         400, 44)

    def test_never_public(self) -> None:
        """
        A message is in no timeline, search, feed or count of either user.
        """
        self.follow("bob", "alice")
        self.follow("alice", "bob")
        secret = "secretword between us"
        self.assertEqual(self.send("alice", "bob", secret)[0], 200)
        self.assertEqual(self.send("bob", "alice", "@alice " + secret)[0], 200)
        for user in ("alice", "bob", "carol"):
            for path in (
                "/1.1/statuses/home_timeline.json",
                "/1.1/statuses/mentions_timeline.json",
                "/1.1/statuses/user_timeline.json?screen_name=alice",
                "/1.1/statuses/user_timeline.json?screen_name=bob",
                "/1.1/statuses/public_timeline.json",
                "/1.1/search/tweets.json?q=secretword",
                "/1.1/favorites/list.json",
            ):
                code, body, _ = self.call("GET", path, user)
                self.assertEqual(code, 200, (path, body))
                if "search" in path:
                    body = body["statuses"]  # its search_metadata repeats the query
                self.assertNotIn("secretword", json.dumps(body), path)
        for path in ("/alice.rss", "/bob.atom", "/1.1/statuses/user_timeline.rss?screen_name=bob"):
            code, body, _ = self.raw("GET", path, "carol")
            self.assertNotIn(b"secretword", body, path)
        _, alice, _ = self.call("GET", "/1.1/users/show.json?screen_name=alice", "bob")
        self.assertEqual((alice["statuses_count"], alice["favourites_count"]), (0, 0))


def followers_count(server: Any, handle: str) -> int:
    from tests.test_federation import call

    return int(call(server, "GET", f"/1.1/users/show.json?screen_name={handle}",
                    handle)["followers_count"])


class DirectMessagesAcrossServersTests(SynchronousTestCase):
    """
    Real processes: a registry, a ping server, alice and carol on s1, bob
    on s2.
    """

    def setUp(self) -> None:
        from tests.test_federation import Federation, acct

        self.federation = Federation(self, pings=1)
        self.s1 = self.federation.twitter("s1", ["alice", "carol"])
        self.s2 = self.federation.twitter("s2", ["bob"])
        self.alice, self.bob = acct("alice", self.s1), acct("bob", self.s2)

    def follow_both(self) -> None:
        """
        Bob follows alice and alice bob, each from their own server, and
        each server has heard of the other's follow.
        """
        from tests.test_federation import follow, wait_for

        follow(self.s2, "bob", self.alice)
        follow(self.s1, "alice", self.bob)
        wait_for(lambda: followers_count(self.s1, "alice") == 1, 30, "bob's follow on s1",
                 step=0.2)
        wait_for(lambda: followers_count(self.s2, "bob") == 1, 30, "alice's follow on s2",
                 step=0.2)

    def ptt(self, server: Any, fmt: str, who: str, path: str, **arguments: str) -> Any:
        """
        One call of Python Twitter Tools (in its own virtualenv): the
        answer (JSON decoded, XML as an element), or ``{"status": code}``
        for an HTTP error.
        """
        from tests.test_clients import CLIENTS, client_venv
        from tests.test_federation import PASSWORD

        python = client_venv("ptt", "twitter==1.19.6")
        done = subprocess.run(
            [python, os.path.join(CLIENTS, "ptt_call.py"), server.url.split("//", 1)[1], fmt,
             who, PASSWORD, path, *(f"{k}={v}" for k, v in arguments.items())],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        if done.returncode == 3:
            return json.loads(done.stdout)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        if fmt == "json":
            return json.loads(done.stdout)
        return ElementTree.fromstring(done.stdout)

    def python_twitter(self, server: Any, handle: str) -> Any:
        """
        python-twitter 3.5 signed in as ``handle`` with OAuth 1.0a.
        """
        import twitter

        from tests.processes import run_cli
        from tests.test_clients import create_app

        key, secret = create_app(server, handle)
        done = run_cli("token", "create", "--consumer-key", key, "--user", handle,
                       "--data", server.data)
        self.assertEqual(done.returncode, 0, done.stderr)
        token = dict(line.split("=", 1) for line in done.stdout.splitlines())
        return twitter.Api(key, secret, token["access_token"], token["access_token_secret"],
                           base_url=server.url + "/1.1")

    def test_both_ways_with_clients(self) -> None:
        """
        Alice (s1) and bob (s2) write to each other with Python Twitter
        Tools, alice in 2008 XML and bob in JSON, then with python-twitter
        (the events API to send, the classic lists to read, destroy).  Each
        message arrives on the other server, with the sender as
        ``handle@authority``; carol cannot read alice's.
        """
        from tests.test_federation import wait_for

        self.follow_both()
        sent = self.ptt(self.s1, "xml", "alice", "direct_messages/new", user=self.bob,
                        text="hello from s1 <xml> & co")
        self.assertEqual(sent.tag, "direct_message", ElementTree.tostring(sent))
        self.assertEqual(sent.findtext("recipient_screen_name"), self.bob)
        self.assertEqual(sent.findtext("text"), "hello from s1 <xml> & co")

        def bob_received() -> Any:
            return [m for m in self.ptt(self.s2, "json", "bob", "direct_messages")
                    if m["text"] == "hello from s1 <xml> & co"]

        (arrived,), _ = wait_for(bob_received, 60, "alice's message on s2", step=0.5)
        self.assertEqual((arrived["sender_screen_name"], arrived["recipient_screen_name"]),
                         (self.alice, "bob"))
        shown = self.ptt(self.s2, "json", "bob", "direct_messages/show", id=str(arrived["id"]))
        self.assertEqual(shown["text"], "hello from s1 <xml> & co")
        back = self.ptt(self.s2, "json", "bob", "direct_messages/new", screen_name=self.alice,
                        text="hello back from s2")
        self.assertEqual(back["recipient_screen_name"], self.alice)

        def alice_received() -> Any:
            root = self.ptt(self.s1, "xml", "alice", "direct_messages")
            self.assertEqual(root.tag, "direct-messages")
            return [m for m in root.findall("direct_message")
                    if m.findtext("text") == "hello back from s2"]

        (answer,), _ = wait_for(alice_received, 60, "bob's message on s1", step=0.5)
        self.assertEqual(answer.findtext("sender_screen_name"), self.bob)
        self.assertEqual(answer.find("sender").findtext("screen_name"), self.bob)
        self.assertEqual(
            self.ptt(self.s1, "json", "carol", "direct_messages/show",
                     id=answer.findtext("id")).get("status"), 404
        )
        # python-twitter: sent with the events API, read with the classic one.
        alice, bob = self.python_twitter(self.s1, "alice"), self.python_twitter(self.s2, "bob")
        posted = alice.PostDirectMessage("via python-twitter", screen_name=self.bob)
        self.assertEqual(posted.text, "via python-twitter")
        self.assertIn("via python-twitter", [m.text for m in alice.GetSentDirectMessages()])

        def in_bobs_list() -> Any:
            return [m for m in bob.GetDirectMessages() if m.text == "via python-twitter"]

        (message,), _ = wait_for(in_bobs_list, 60, "python-twitter's message on s2", step=0.5)
        alice_on_s2 = bob.GetUser(screen_name=self.alice)
        self.assertEqual(message.sender_id, alice_on_s2.id)
        bob.DestroyDirectMessage(message.id)
        self.assertNotIn("via python-twitter", [m.text for m in bob.GetDirectMessages()])
        self.assertNotIn("Traceback", self.s1.log_text())
        self.assertNotIn("Traceback", self.s2.log_text())

    def test_outage_and_nowhere_public(self) -> None:
        """
        Bob's server is down when alice writes to him: the message waits
        in s1's outbox and arrives once s2 is back.  Neither that message
        nor bob's answer is in any public output of either server: feeds,
        range feeds, timelines, mentions, search, conversations, counts.
        """
        from tests.test_federation import call, post, wait_for

        self.follow_both()
        public = post(self.s1, "alice", "a public post of alice")
        public_seq = call(self.s1, "GET", "/1.1/users/show.json?screen_name=alice",
                          "alice")["statuses_count"]
        self.s2.stop()
        code, body = self.s1.request(
            "POST", "/1.1/direct_messages/new.json", auth=("alice", PASSWORD_OF),
            data={"screen_name": self.bob, "text": "secretword while you were away"},
        )
        self.assertEqual(code, 200, body)
        failed_try = re.compile(r"server \S+ fails \(sending notices\)")
        wait_for(lambda: failed_try.search(self.s1.log_text()), 30,
                 "a failed try while s2 is down", step=0.2)
        self.s2 = self.federation.start("s2", *self.s2.options, port=self.s2.port)

        def bob_has_it() -> bool:
            received = call(self.s2, "GET", "/1.1/direct_messages.json", "bob")
            return any(m["text"] == "secretword while you were away" for m in received)

        wait_for(bob_has_it, 90, "the message after s2 came back", step=0.5)
        call(self.s2, "POST", "/1.1/direct_messages/new.json", "bob",
             screen_name=self.alice, text=f"@{self.alice} secretword answered")

        def alice_has_it() -> bool:
            received = call(self.s1, "GET", "/1.1/direct_messages.json", "alice")
            return any("secretword answered" in m["text"] for m in received)

        wait_for(alice_has_it, 60, "bob's answer on s1", step=0.5)
        for server, user, names in [
            (self.s1, "alice", ("alice", self.bob)),
            (self.s1, "carol", ("alice", self.bob)),
            (self.s2, "bob", ("bob", self.alice)),
        ]:
            paths = [
                "/1.1/statuses/home_timeline.json",
                "/1.1/statuses/mentions_timeline.json",
                "/1.1/statuses/public_timeline.json",
                "/1.1/search/tweets.json?q=secretword",
                *(f"/1.1/statuses/user_timeline.json?screen_name={n}" for n in names),
                *(f"/1.1/users/show.json?screen_name={n}" for n in names),
            ]
            if server is self.s1:
                paths.append(f"/1.1/statuses/conversation/{public['id']}.json")
            for path in paths:
                body = call(server, "GET", path, user)
                if "search" in path:
                    body = body["statuses"]
                self.assertNotIn("secretword", json.dumps(body), (server.url, path))
        for server, handle in [(self.s1, "alice"), (self.s2, "bob")]:
            for path in (f"/{handle}.rss", f"/{handle}.atom", f"/s2s/feed/{handle}.rss",
                         f"/s2s/feed/{handle}.rss?from=1&to=20",
                         f"/statuses/user_timeline.rss?screen_name={handle}",
                         f"/s2s/last/{handle}"):
                code, body = server.request("GET", path)
                self.assertNotIn("secretword", body if isinstance(body, str) else
                                 json.dumps(body), (server.url, path))
        bob_on_s2 = call(self.s2, "GET", "/1.1/users/show.json?screen_name=bob", "bob")
        self.assertEqual(bob_on_s2["statuses_count"], 0)
        # The replies index of alice's post, as another server reads it
        # (signed): bob's answer mentions her, and is no reply of hers.
        self.assertEqual(self.replies_index(self.s1, "alice", public_seq)["replies"], [])

    def replies_index(self, server: Any, handle: str, seq: int) -> Any:
        """
        ``GET /s2s/replies/HANDLE/SEQ.json`` signed by a server of our own.
        """
        import secrets
        import time
        import urllib.request

        from distwit.s2s.signatures import sign_request
        from tests.test_federation import HostilePeer

        peer = HostilePeer(self)
        url = f"{server.url}/s2s/replies/{handle}/{seq}.json"
        headers = sign_request(peer.key, peer.url, "GET", url, b"", time.time(),
                               secrets.token_hex(8))
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def test_refused_unless_followed(self) -> None:
        """
        On the sender's server: 150 when the recipient (remote) does not
        follow the sender.  On the recipient's server: a signed notice of
        a message from someone the recipient does not follow is refused
        (403, which the sender's outbox takes as final), so is one signed
        by a server that is not the sender's (403), one for nobody here
        (400) and an unsigned one (401); none is kept.
        """
        from tests.test_federation import HostilePeer, call, follow, wait_for

        follow(self.s2, "bob", self.alice)
        wait_for(lambda: followers_count(self.s1, "alice") == 1, 30, "bob's follow on s1",
                 step=0.2)
        for server, user, to in [(self.s1, "carol", self.bob), (self.s2, "bob", self.alice)]:
            code, body = server.request("POST", "/1.1/direct_messages/new.json",
                                        auth=(user, PASSWORD_OF),
                                        data={"screen_name": to, "text": "may I?"})
            self.assertEqual((code, body["errors"][0]["code"]), (403, 150), body)
        # Bob follows alice: she may.
        call(self.s1, "POST", "/1.1/direct_messages/new.json", "alice",
             screen_name=self.bob, text="yes you may")
        peer = HostilePeer(self)
        notice_url = self.s2.url + "/s2s/notice"

        def notice(sender: str, recipient: str = "", key: str = "0123456789abcdef") -> Any:
            to = recipient or self.bob
            return {"kind": "direct_message", "sender": sender, "recipient": to,
                    "targets": [to], "text": "from the peer", "created_at": 1, "key": key}

        code, body = peer.post(notice_url, notice(f"mallory@{peer.authority}"))
        self.assertEqual(code, 403, body)
        self.assertIn("not following you", json.dumps(body))
        code, body = peer.post(notice_url, notice(self.alice, key="forgedforgedforged"))
        self.assertEqual(code, 403, body)
        self.assertIn("may not speak for", json.dumps(body))
        code, body = peer.post(notice_url, notice(f"mallory@{peer.authority}",
                                                  recipient=f"nobody@{self.bob.split('@')[1]}"))
        self.assertEqual(code, 400, body)
        code, body = peer.post(notice_url, notice(f"mallory@{peer.authority}"), sign=False)
        self.assertEqual(code, 401, body)

        def received() -> list[str]:
            return [m["text"] for m in call(self.s2, "GET", "/1.1/direct_messages.json", "bob")]

        wait_for(lambda: received() == ["yes you may"], 60, "alice's message alone", step=0.5)


class TweepyDirectMessagesTests(SynchronousTestCase):
    """
    tweepy 4, which speaks the 2016+ events API and always https: alice
    (s1) and dave (s2) write to each other, list, show and delete.
    """

    def setUp(self) -> None:
        from tests.test_tls import TLSFederation

        helper = self.tls = TLSFederation(self)
        os.environ["REQUESTS_CA_BUNDLE"] = helper.ca_file
        self.addCleanup(os.environ.pop, "REQUESTS_CA_BUNDLE", None)
        self.s1, self.s2 = helper.two_twitter_servers(("alice",), ("dave",))

    def tweepy_api(self, server: Any, handle: str) -> Any:
        import tweepy

        from tests.processes import run_cli
        from tests.test_clients import create_app

        key, secret = create_app(server, handle)
        done = run_cli("token", "create", "--consumer-key", key, "--user", handle,
                       "--data", server.data)
        self.assertEqual(done.returncode, 0, done.stderr)
        token = dict(line.split("=", 1) for line in done.stdout.splitlines())
        auth = tweepy.OAuth1UserHandler(key, secret, token["access_token"],
                                        token["access_token_secret"])
        return tweepy.API(auth, host=server.url.split("//", 1)[1])

    def test_tweepy_both_ways(self) -> None:
        import tweepy

        from tests.test_federation import acct, wait_for

        alice, dave = self.tweepy_api(self.s1, "alice"), self.tweepy_api(self.s2, "dave")
        alice_acct, dave_acct = acct("alice", self.s1), acct("dave", self.s2)
        alice.create_friendship(screen_name=dave_acct)
        dave.create_friendship(screen_name=alice_acct)
        wait_for(lambda: alice.get_user(screen_name="alice").followers_count == 1, 30,
                 "dave's follow on s1", step=0.25)
        wait_for(lambda: dave.get_user(screen_name="dave").followers_count == 1, 30,
                 "alice's follow on s2", step=0.25)
        dave_on_s1 = alice.get_user(screen_name=dave_acct)
        sent = alice.send_direct_message(dave_on_s1.id, "hello dave, from tweepy")
        self.assertEqual(sent.message_create["message_data"]["text"], "hello dave, from tweepy")

        def dave_has(text: str) -> Any:
            return [m for m in dave.get_direct_messages()
                    if m.message_create["message_data"]["text"] == text]

        (arrived,), _ = wait_for(lambda: dave_has("hello dave, from tweepy"), 60,
                                 "alice's message on s2", step=0.5)
        alice_on_s2 = dave.get_user(screen_name=alice_acct)
        self.assertEqual(arrived.message_create["sender_id"], str(alice_on_s2.id))
        dave.send_direct_message(alice_on_s2.id, "hello alice, from tweepy")

        def alice_texts() -> list[str]:
            return [m.message_create["message_data"]["text"]
                    for m in alice.get_direct_messages()]

        wait_for(lambda: alice_texts() == ["hello alice, from tweepy",
                                           "hello dave, from tweepy"], 60,
                 "dave's answer on s1, above alice's message", step=0.5)
        shown = dave.get_direct_message(arrived.id)
        self.assertEqual(shown.id, arrived.id)
        dave.delete_direct_message(arrived.id)
        self.assertEqual(dave_has("hello dave, from tweepy"), [])
        with self.assertRaises(tweepy.errors.NotFound):
            dave.get_direct_message(arrived.id)
        # Still alice's: destroying hides a message for one side only.
        self.assertIn("hello dave, from tweepy", alice_texts())
        with self.assertRaises(tweepy.errors.Forbidden) as raised:
            dave.send_direct_message(dave.get_user(screen_name="dave").id, "myself")
        self.assertEqual(raised.exception.api_codes, [150])


#: The direct message paths, with their arguments filled in.
FUZZ_PATHS = [
    "direct_messages", "direct_messages/sent", "direct_messages/show", "direct_messages/show/1",
    "direct_messages/new", "direct_messages/destroy", "direct_messages/destroy/1",
    "direct_messages/events/new", "direct_messages/events/list", "direct_messages/events/show",
    "direct_messages/events/destroy",
]
FUZZ_NAMES = ["text", "user", "user_id", "screen_name", "id", "count", "since_id", "max_id",
              "page", "cursor"]


_FUZZ_PARAMS = st.dictionaries(st.sampled_from(FUZZ_NAMES), API_VALUES, max_size=4)
_FUZZ_BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(
                ["event", "message_create", "target", "recipient_id", "message_data",
                 "text", "type"]), inner, max_size=3),
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
)


class DirectMessageFuzzTests(FuzzCase, APITestCase):
    """
    The fuzzer of tests/test_fuzz.py over the direct message endpoints.
    """

    def setUp(self) -> None:
        super().setUp()
        self.call("POST", "/1.1/friendships/create.json", "bob", data={"screen_name": "alice"})
        code, _, _ = self.call("POST", "/1.1/direct_messages/new.json", "alice",
                               data={"screen_name": "bob", "text": "fuzz me"})
        self.assertEqual(code, 200)

    @FUZZ
    @given(
        path=st.sampled_from(FUZZ_PATHS),
        method=st.sampled_from(["GET", "POST", "DELETE"]),
        fmt=st.sampled_from(["json", "xml", "rss"]),
        user=st.sampled_from(["alice", "bob", "carol", None]),
        query=_FUZZ_PARAMS,
        form=_FUZZ_PARAMS,
        body=_FUZZ_BODIES,
    )
    def test_any_request(self, path: str, method: str, fmt: str, user: str | None,
                         query: dict[str, str], form: dict[str, str], body: bytes) -> None:
        """
        No request to a direct message endpoint answers 500 or logs a
        traceback; answers are well-formed XML or JSON.
        """
        url = f"{BASE}/1.1/{path}.{fmt}"
        if query:
            url += "?" + "&".join(
                f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                for k, v in query.items()
            )
        kwargs: dict[str, Any] = {"headers": {}}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS[user])
        if method == "POST" and path.endswith("events/new"):
            kwargs["data"] = body
            kwargs["headers"]["content-type"] = "application/json"
        elif method == "POST" and form:
            kwargs["data"] = {k: v.encode("utf-8", "surrogatepass") for k, v in form.items()}
        what = f"{method} {url} {user} form={form!r} body={body[:80]!r}"
        answer = self.fetch(method, url, **kwargs)
        self.assertNoServerError(answer, what)
        self.assertWellFormed(answer, fmt, what)


class DirectMessageNoticeTests(SynchronousTestCase):
    """
    In memory: the notice a message to another server's user queues (in
    the same transaction), and ``POST /s2s/notice`` taking one on s1.
    """

    T0 = 1_700_000_000_000
    ME, S3 = "http://s1.test", "http://s3.test"

    def setUp(self) -> None:
        from treq.testing import StubTreq
        from twisted.internet.task import Clock

        from distwit.core.direct_messages import DirectMessages
        from distwit.core.microblog import Microblog
        from distwit.federation.copier import Fetcher
        from distwit.federation.direct_messages import DirectMessageNotices
        from distwit.federation.follows import Federation
        from distwit.federation.lookup import Lookup
        from distwit.federation.notices import NoticeReceiver
        from distwit.federation.outbox import Outbox
        from distwit.federation.resource import FederationAPI
        from distwit.federation.sync import StaticPingList, SyncService
        from tests.fakes import FakeVerifier, ScriptedClient
        from tests.support import cheap_hasher, synchronous_sqlite_store

        self.clock = Clock()
        self.clock.advance(self.T0 / 1000)
        self.store = store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.microblog = Microblog(store, cheap_hasher(), self.clock)
        sync = SyncService(store, self.client, StaticPingList([]),
                           Fetcher(store, self.client, self.clock, "s1.test"), self.clock, self.ME)
        federation = Federation(store, self.client, sync, self.clock, self.ME)
        self.microblog.federation = federation
        self.outbox = Outbox(store, self.client, self.clock)
        self.direct = DirectMessages(store, self.clock)
        notices = DirectMessageNotices(store, self.direct, self.outbox, self.clock, "s1.test")
        self.direct.federation = notices
        receiver = NoticeReceiver(store, Lookup(store, self.client, self.clock, "s1.test"),
                                  self.clock, "s1.test", per_minute=20)
        receiver.direct_messages = notices
        api = FederationAPI(self.microblog, federation, FakeVerifier(), self.ME, notices=receiver)
        self.stub = StubTreq(api.resource())
        self.alice = self.successResultOf(self.microblog.create_user("alice", "correct horse"))
        self.bob = self.successResultOf(self.microblog.create_user("bob", "correct horse"))
        self.successResultOf(store.ensure_account("dave", "s3.test", self.T0))
        self.dave = self.successResultOf(store.note_remote_last("dave", "s3.test", 0, self.S3))

    def follow(self, follower: Any, followee: Any) -> None:
        self.successResultOf(self.store.follow(follower.id, followee.id, self.T0))

    def send(self, sender: Any, recipient: Any, text: str) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(self.direct.send(sender, recipient, text))

    def test_notice_queued_with_the_message(self) -> None:
        """
        A message to dave (s3) queues one notice for s3 carrying it; one to
        bob (here) queues none; a refused one keeps nothing, queues nothing.
        """
        from distwit.core.direct_messages import CannotMessage

        self.failureResultOf(self.send(self.alice, self.dave, "not yet"), CannotMessage)
        self.assertEqual(self.successResultOf(self.store.pending_notices(10)), [])
        self.follow(self.dave, self.alice)
        self.follow(self.bob, self.alice)
        message = self.successResultOf(self.send(self.alice, self.dave, "hi dave"))
        self.successResultOf(self.send(self.alice, self.bob, "hi bob"))
        (item,) = self.successResultOf(self.store.pending_notices(10))
        body = json.loads(item.body)
        self.assertEqual((item.target, item.kind), (self.S3, "direct_message"))
        self.assertEqual(
            {k: body[k] for k in ("kind", "sender", "recipient", "targets", "text", "created_at")},
            {"kind": "direct_message", "sender": "alice@s1.test", "recipient": "dave@s3.test",
             "targets": ["dave@s3.test"], "text": "hi dave", "created_at": self.T0},
        )
        self.assertEqual(body["key"], message.origin_key)

    def notice(self, body: Any, signer: str | None = "http://s3.test", code: int = 200) -> Any:
        from tests.fakes import json_answer, post_signed

        answer, _ = json_answer(
            self, self.stub, post_signed(self.stub, self.ME + "/notice", signer, body), code
        )
        return answer

    def dm(self, **changes: Any) -> dict[str, Any]:
        body = {"kind": "direct_message", "sender": "dave@s3.test",
                "recipient": "alice@s1.test", "targets": ["alice@s1.test"],
                "text": "hello alice", "created_at": self.T0 - 5000, "key": "k" * 16}
        body.update(changes)
        return body

    def received(self) -> list[Any]:
        return self.successResultOf(self.direct.received(self.alice, 20))

    def test_receive(self) -> None:
        """
        s1 takes a message from dave (s3, the signer) to alice once she
        follows him: kept once however often it comes, with dave's time.
        Refused: not followed (403), a signer that is not dave's server
        (403), malformed or for nobody here (400), unsigned (401).
        """
        self.assertIn("not following you", self.notice(self.dm(), code=403)["error"])
        self.follow(self.alice, self.dave)
        self.notice(self.dm(), signer="http://s4.test", code=403)
        for bad in (self.dm(key="short"), self.dm(text=""), self.dm(text="x" * 141),
                    self.dm(text=7), self.dm(created_at="then"), self.dm(sender="nobody"),
                    self.dm(recipient="carol@s1.test"), self.dm(recipient="alice@s9.test"),
                    self.dm(sender="bob@s1.test")):
            self.notice(bad, signer="http://s1.test" if bad["sender"] == "bob@s1.test"
                        else self.S3, code=400)
        self.notice(self.dm(), signer=None, code=401)
        self.assertEqual(self.received(), [])
        first = self.notice(self.dm())
        again = self.notice(self.dm())
        self.assertEqual(first["id"], again["id"])
        (message,) = self.received()
        self.assertEqual((message.sender.screen_name, message.text, message.created_at),
                         ("dave@s3.test", "hello alice", self.T0 - 5000))
        self.notice(self.dm(key="m" * 16, created_at=self.T0 + 10**9))
        newest = self.received()[0]
        self.assertEqual(newest.created_at, self.T0)
