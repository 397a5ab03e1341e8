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
import subprocess
import urllib.parse
from typing import Any
from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from tests.test_api import BASE, PASSWORDS, APITestCase

TEXT_141 = "x" * 141


class DirectMessageAPITests(APITestCase):
    def send(self, sender: str, recipient: str, text: str, path: str = "/1.1/direct_messages/new.json",
             **extra: Any) -> tuple[int, Any, Any]:
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
