"""
The classic API beyond the first slice: entities, mentions, lookups,
relationships, id lists with cursors, search, profile, rate limits.
"""

from __future__ import annotations

import html


from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import feedparser

from distwit.core.limits import RateLimiter
from distwit.roles.twitter import TwitterService, make_twitter_web

from tests.support import cheap_hasher
from tests.test_api import BASE, PASSWORDS, APITestCase, _basic


class EntityTests(APITestCase):
    def test_entities(self) -> None:
        """
        Hashtags, mentions of known accounts (with their ids) and links are
        in ``entities`` with code-point indices; an unknown handle is no
        mention.  The lists are there, empty, on a plain post.
        """
        bob = self.successResultOf(self.service.microblog.user("bob"))
        text = "héllo @bob and @nobody #tag1 see https://example.org/a_(b). ok"
        body = self.post("alice", text)
        entities = body["entities"]
        self.assertEqual(entities["hashtags"], [{"text": "tag1", "indices": [23, 28]}])
        self.assertEqual(
            entities["user_mentions"],
            [{"screen_name": "bob", "name": "bob", "id": bob.id, "id_str": str(bob.id),
              "indices": [6, 10]}],
        )
        (url,) = entities["urls"]
        self.assertEqual(url["url"], "https://example.org/a_(b)")
        self.assertEqual(text[url["indices"][0]:url["indices"][1]], url["url"])
        plain = self.post("alice", "nothing here")["entities"]
        self.assertEqual(
            plain, {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}
        )

    def test_remote_mention(self) -> None:
        """
        ``@handle@authority`` of a known remote account is a mention named
        ``handle@authority``; an e-mail address is not a mention.
        """
        carol = self.successResultOf(
            self.store.ensure_account("carol", "s3.example", 1)
        )
        body = self.post("alice", "hi @carol@s3.example. mail me: a@bob.example")
        (mention,) = body["entities"]["user_mentions"]
        self.assertEqual(
            (mention["screen_name"], mention["id"], mention["indices"]),
            ("carol@s3.example", carol.id, [3, 20]),
        )

    def test_shapes(self) -> None:
        """
        trim_user leaves the user's ids only; tweet_mode=extended gives
        full_text instead of text.  Booleans come in Twitter's and Python's
        spellings; anything else is error 44.
        """
        self.post("alice", "shaped")
        for value in ("true", "1", "t", "True"):
            _, body, _ = self.call(
                "GET", "/1.1/statuses/user_timeline.json", "alice", params={"trim_user": value}
            )
            self.assertEqual(body[0]["user"], {"id": body[0]["user"]["id"],
                                               "id_str": body[0]["user"]["id_str"]})
        _, body, _ = self.call(
            "GET", "/1.1/statuses/user_timeline.json", "alice",
            params={"trim_user": "False", "tweet_mode": "extended"},
        )
        self.assertEqual((body[0]["full_text"], "text" in body[0]), ("shaped", False))
        self.assertIn("screen_name", body[0]["user"])
        self.assertError(
            self.call("GET", "/1.1/statuses/user_timeline.json", "alice",
                      params={"trim_user": "maybe"}),
            400, 44,
        )


class MentionTests(APITestCase):
    def test_mentions_timeline(self) -> None:
        """
        Posts that mention bob are in his mentions timeline (under all three
        names), newest first, with since_id and max_id; deleted ones leave.
        """
        first = self.post("alice", "@bob one")
        self.post("alice", "not for him")
        second = self.post("carol", "two for @BOB")
        for path in ("statuses/mentions_timeline", "statuses/mentions", "statuses/replies"):
            _, body, _ = self.call("GET", f"/1.1/{path}.json", "bob")
            self.assertEqual([s["id"] for s in body], [second["id"], first["id"]], path)
        _, body, _ = self.call("GET", "/1.1/statuses/mentions_timeline.json", "bob",
                               params={"since_id": first["id"]})
        self.assertEqual([s["id"] for s in body], [second["id"]])
        _, body, _ = self.call("GET", "/1.1/statuses/mentions_timeline.json", "bob",
                               params={"max_id": first["id"]})
        self.assertEqual([s["id"] for s in body], [first["id"]])
        self.call("POST", f"/1.1/statuses/destroy/{first['id']}.json", "alice")
        _, body, _ = self.call("GET", "/1.1/statuses/mentions_timeline.json", "bob")
        self.assertEqual([s["id"] for s in body], [second["id"]])
        self.assertError(self.call("GET", "/1.1/statuses/mentions_timeline.json"), 401, 215)


class LookupTests(APITestCase):
    def test_statuses_lookup(self) -> None:
        """
        statuses/lookup gives the statuses found, in the order asked, or
        with map=true every id asked, null where none.
        """
        a, b = self.post("alice", "a"), self.post("bob", "b")
        ids = f"{b['id']},999,{a['id']}"
        _, body, _ = self.call("GET", "/1.1/statuses/lookup.json", params={"id": ids})
        self.assertEqual([s["id"] for s in body], [b["id"], a["id"]])
        _, body, _ = self.call("POST", "/1.1/statuses/lookup.json", "alice",
                               data={"id": ids, "map": "true"})
        self.assertEqual(set(body["id"]), {str(a["id"]), "999", str(b["id"])})
        self.assertIsNone(body["id"]["999"])
        self.assertError(self.call("GET", "/1.1/statuses/lookup.json"), 400, 170)
        self.assertError(
            self.call("GET", "/1.1/statuses/lookup.json", params={"id": "1,x"}), 400, 44
        )

    def test_users_show(self) -> None:
        """
        users/show by screen_name, user_id or path, with the latest status;
        an unknown user is error 50.
        """
        posted = self.post("bob", "latest")
        _, by_name, _ = self.call("GET", "/1.1/users/show.json", params={"screen_name": "BOB"})
        self.assertEqual((by_name["screen_name"], by_name["status"]["id"]), ("bob", posted["id"]))
        _, by_id, _ = self.call("GET", "/1.1/users/show.json",
                                params={"user_id": by_name["id"]})
        self.assertEqual(by_id["id"], by_name["id"])
        _, by_path, _ = self.call("GET", "/users/show/bob.json")
        self.assertEqual(by_path["id"], by_name["id"])
        self.assertError(
            self.call("GET", "/1.1/users/show.json", params={"screen_name": "nobody"}), 404, 50
        )
        self.assertError(self.call("GET", "/1.1/users/show.json"), 400, 170)

    def test_users_lookup(self) -> None:
        """
        users/lookup (GET and POST) takes lists of names and ids, skips the
        unknown, and says 17 when it finds nobody.
        """
        _, alice, _ = self.call("GET", "/1.1/users/show.json", params={"screen_name": "alice"})
        _, body, _ = self.call(
            "GET", "/1.1/users/lookup.json",
            params={"screen_name": "bob,nobody,carol", "user_id": str(alice["id"])},
        )
        self.assertEqual(sorted(u["screen_name"] for u in body), ["alice", "bob", "carol"])
        _, body, _ = self.call("POST", "/1.1/users/lookup.json", "alice",
                               data={"screen_name": "bob"})
        self.assertEqual([u["screen_name"] for u in body], ["bob"])
        self.assertError(
            self.call("GET", "/1.1/users/lookup.json", params={"screen_name": "nobody"}),
            404, 17,
        )
        many = ",".join(f"u{i}" for i in range(101))
        self.assertError(
            self.call("GET", "/1.1/users/lookup.json", params={"screen_name": many}), 400, 44
        )

    def test_users_search(self) -> None:
        """
        users/search finds by part of the handle or name, any case; a LIKE
        wildcard in the query is a plain character.
        """
        _, body, _ = self.call("GET", "/1.1/users/search.json", "alice", params={"q": "AR"})
        self.assertEqual([u["screen_name"] for u in body], ["carol"])
        _, body, _ = self.call("GET", "/1.1/users/search.json", "alice", params={"q": "%"})
        self.assertEqual(body, [])
        self.assertError(self.call("GET", "/1.1/users/search.json", "alice"), 400, 170)


class RelationshipTests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.call("POST", "/1.1/friendships/create.json", "alice", data={"screen_name": "bob"})

    def test_show(self) -> None:
        """
        friendships/show says who follows whom, from the signed-in user or
        a named source.
        """
        _, body, _ = self.call("GET", "/1.1/friendships/show.json", "alice",
                               params={"target_screen_name": "bob"})
        source, target = body["relationship"]["source"], body["relationship"]["target"]
        self.assertEqual((source["screen_name"], source["following"], source["followed_by"]),
                         ("alice", True, False))
        self.assertEqual((target["screen_name"], target["following"], target["followed_by"]),
                         ("bob", False, True))
        _, body, _ = self.call("GET", "/1.1/friendships/show.json",
                               params={"source_screen_name": "bob",
                                       "target_screen_name": "alice"})
        self.assertEqual(body["relationship"]["source"]["followed_by"], True)
        self.assertError(self.call("GET", "/1.1/friendships/show.json", "alice"), 400, 170)
        self.assertError(
            self.call("GET", "/1.1/friendships/show.json", "alice",
                      params={"target_screen_name": "nobody"}), 404, 50
        )

    def test_exists_and_lookup(self) -> None:
        """
        friendships/exists answers a bare true or false; friendships/lookup
        lists the connections, "none" when there are none.
        """
        _, body, _ = self.call("GET", "/1.1/friendships/exists.json",
                               params={"user_a": "alice", "user_b": "bob"})
        self.assertIs(body, True)
        _, body, _ = self.call("GET", "/1.1/friendships/exists.json",
                               params={"user_a": "bob", "user_b": "alice"})
        self.assertIs(body, False)
        self.call("POST", "/1.1/friendships/create.json", "bob", data={"screen_name": "alice"})
        _, body, _ = self.call("GET", "/1.1/friendships/lookup.json", "alice",
                               params={"screen_name": "bob,carol"})
        found = {entry["screen_name"]: entry["connections"] for entry in body}
        self.assertEqual(found, {"bob": ["following", "followed_by"], "carol": ["none"]})

    def test_ids_and_lists_with_cursors(self) -> None:
        """
        friends/ids and followers/ids page through cursors (count per page,
        next_cursor 0 at the end), ids as strings with stringify_ids;
        friends/list and followers/list give user objects.
        """
        microblog = self.service.microblog
        for i in range(5):
            self.successResultOf(microblog.create_user(f"fan{i}", "fan-password"))
            fan = self.successResultOf(microblog.user(f"fan{i}"))
            bob = self.successResultOf(microblog.user("bob"))
            self.successResultOf(microblog.follow(fan, bob))
        seen: list[int] = []
        cursor = "-1"
        while True:
            _, body, _ = self.call("GET", "/1.1/followers/ids.json",
                                   params={"screen_name": "bob", "count": 2, "cursor": cursor})
            self.assertLessEqual(len(body["ids"]), 2)
            seen += body["ids"]
            self.assertEqual(body["next_cursor_str"], str(body["next_cursor"]))
            if body["next_cursor"] == 0:
                break
            cursor = body["next_cursor_str"]
        self.assertEqual(len(seen), 6)
        self.assertEqual(len(set(seen)), 6)
        _, body, _ = self.call("GET", "/1.1/followers/ids.json",
                               params={"screen_name": "bob", "stringify_ids": "true"})
        self.assertEqual(sorted(body["ids"]), sorted(str(i) for i in seen))
        _, body, _ = self.call("GET", "/1.1/friends/ids.json", "alice")
        self.assertEqual(len(body["ids"]), 1)
        _, body, _ = self.call("GET", "/1.1/friends/list.json", "alice")
        self.assertEqual([u["screen_name"] for u in body["users"]], ["bob"])
        _, body, _ = self.call("GET", "/1.1/followers/list.json",
                               params={"screen_name": "bob", "count": 3})
        self.assertEqual(len(body["users"]), 3)
        self.assertNotEqual(body["next_cursor"], 0)


class SearchTests(APITestCase):
    def test_search_tweets(self) -> None:
        """
        search/tweets finds posts holding the query in any case, newest
        first, with search_metadata and next_results while there may be
        more.
        """
        for i in range(3):
            self.post("alice", f"Twisted rocks {i}")
        self.post("bob", "nothing to see")
        _, body, _ = self.call("GET", "/1.1/search/tweets.json", params={"q": "twisted"})
        self.assertEqual([s["text"] for s in body["statuses"]],
                         ["Twisted rocks 2", "Twisted rocks 1", "Twisted rocks 0"])
        self.assertEqual(body["search_metadata"]["count"], 15)
        _, body, _ = self.call("GET", "/1.1/search/tweets.json",
                               params={"q": "ROCKS", "count": 2})
        self.assertEqual(len(body["statuses"]), 2)
        self.assertIn("next_results", body["search_metadata"])
        self.assertError(self.call("GET", "/1.1/search/tweets.json"), 400, 170)


class ProfileTests(APITestCase):
    def test_update_profile(self) -> None:
        """
        account/update_profile changes the given fields only; a field over
        Twitter's length is error 120 and changes nothing.
        """
        _, body, _ = self.call(
            "POST", "/1.1/account/update_profile.json", "alice",
            data={"name": "Alice A.", "description": "Twisted fan", "url": "example.org"},
        )
        self.assertEqual(
            (body["name"], body["description"], body["url"], body["location"]),
            ("Alice A.", "Twisted fan", "http://example.org", ""),
        )
        self.assertError(
            self.call("POST", "/1.1/account/update_profile.json", "alice",
                      data={"location": "x" * 31}),
            403, 120,
        )
        _, body, _ = self.call("GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual((body["name"], body["location"]), ("Alice A.", ""))


class HelpAndLimitTests(APITestCase):
    def test_help(self) -> None:
        """
        help/test answers "ok"; help/configuration names the paths that are
        not users.
        """
        _, body, _ = self.call("GET", "/1.1/help/test.json")
        self.assertEqual(body, "ok")
        _, body, _ = self.call("GET", "/1.1/help/configuration.json")
        self.assertIn("statuses", body["non_username_paths"])

    def test_rate_limits(self) -> None:
        """
        Every answer carries the x-rate-limit headers; past the limit the
        answer is 429 with code 88 until the window ends;
        rate_limit_status shows what is left.
        """
        self.service = TwitterService(self.settings, self.store, self.clock, cheap_hasher())
        self.web = make_twitter_web(self.service)
        self.web.api.limiter = RateLimiter(self.clock, window=60,
                                           limits={"read": 3, "write": 2})
        from treq.testing import StubTreq

        self.stub = StubTreq(self.web.root)
        remaining = []
        for _ in range(3):
            code, _, response = self.call("GET", "/1.1/statuses/home_timeline.json", "alice")
            self.assertEqual(code, 200)
            remaining.append(response.headers.getRawHeaders("x-rate-limit-remaining")[0])
            self.assertEqual(response.headers.getRawHeaders("x-rate-limit-limit"), ["3"])
        self.assertEqual(remaining, ["2", "1", "0"])
        result = self.call("GET", "/1.1/statuses/home_timeline.json", "alice")
        self.assertError(result, 429, 88)
        reset = int(result[2].headers.getRawHeaders("x-rate-limit-reset")[0])
        self.assertEqual(reset, int(self.clock.seconds()) + 60)
        # Another user and another endpoint have their own counts.
        self.assertEqual(self.call("GET", "/1.1/statuses/home_timeline.json", "bob")[0], 200)
        _, body, _ = self.call("GET", "/1.1/application/rate_limit_status.json", "alice",
                               params={"resources": "statuses"})
        self.assertEqual(
            body["resources"]["statuses"]["/statuses/home_timeline"]["remaining"], 0
        )
        self.assertEqual(set(body["resources"]), {"statuses"})
        self.clock.advance(60)
        self.assertEqual(self.call("GET", "/1.1/statuses/home_timeline.json", "alice")[0], 200)




class FormatTests(APITestCase):
    def raw(self, path: str, user: str | None = None, **params: Any) -> tuple[int, bytes, str]:
        url = BASE + path + ("?" + urlencode(params) if params else "")
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS[user])
        response = self.successResultOf(self.stub.get(url, **kwargs))
        body = self.successResultOf(response.content())
        return response.code, body, response.headers.getRawHeaders("content-type")[0]

    def test_xml_2008_shape(self) -> None:
        """
        .xml answers in the 2008 shape: <statuses type="array"> of <status>
        with <user> inside, <user>, <friends>, and errors as <errors>.
        """
        self.post("alice", "in <xml> & out")
        code, body, kind = self.raw("/statuses/user_timeline.xml", screen_name="alice")
        self.assertEqual((code, kind), (200, "application/xml; charset=utf-8"))
        root = ElementTree.fromstring(body)
        self.assertEqual((root.tag, root.get("type")), ("statuses", "array"))
        (status,) = root.findall("status")
        self.assertEqual(status.findtext("text"), "in <xml> & out")
        self.assertEqual(status.findtext("user/screen_name"), "alice")
        self.assertEqual(status.findtext("truncated"), "false")
        self.assertEqual(status.find("in_reply_to_status_id").text, None)
        code, body, _ = self.raw("/users/show.xml", screen_name="bob")
        self.assertEqual(ElementTree.fromstring(body).tag, "user")
        code, body, _ = self.raw("/friendships/exists.xml", user_a="alice", user_b="bob")
        self.assertEqual(ElementTree.fromstring(body).text, "false")
        code, body, kind = self.raw("/statuses/show/12345.xml")
        root = ElementTree.fromstring(body)
        self.assertEqual((code, kind, root.tag, root.find("error").get("code")),
                         (404, "application/xml; charset=utf-8", "errors", "144"))

    def test_timeline_feeds(self) -> None:
        """
        Timelines come as RSS and Atom that feedparser reads without
        complaint; other endpoints have no feed.
        """
        self.post("alice", "first <b>")
        self.post("alice", "second")
        for extension in ("rss", "atom"):
            code, body, kind = self.raw(f"/1.1/statuses/home_timeline.{extension}", "alice")
            self.assertEqual(code, 200)
            self.assertIn(extension, kind)
            parsed = feedparser.parse(body)
            self.assertFalse(parsed.bozo, parsed.get("bozo_exception"))
            # Shown as typed: an RSS title with markup is escaped HTML,
            # an Atom title plain text.
            shown = [html.unescape(e.title) if e.title_detail.type == "text/html" else e.title
                     for e in parsed.entries]
            self.assertEqual(shown, ["alice: second", "alice: first <b>"])
            if extension == "rss":
                self.assertNotIn("<b>", parsed.entries[1].title)
        code, _, _ = self.raw("/1.1/account/verify_credentials.rss", "alice")
        self.assertEqual(code, 404)
        code, _, _ = self.raw("/1.1/statuses/public_timeline.yaml")
        self.assertEqual(code, 404)


class LimitErrorTests(APITestCase):
    def test_daily_post_limit(self) -> None:
        """
        Past the daily number of posts: 185, and nothing stored; a day
        later posting works again.
        """
        self.service.microblog.daily_posts = 2
        self.post("alice", "one")
        self.post("alice", "two")
        self.assertError(
            self.call("POST", "/1.1/statuses/update.json", "alice", data={"status": "three"}),
            403, 185,
        )
        _, body, _ = self.call("GET", "/1.1/statuses/user_timeline.json", "alice")
        self.assertEqual(len(body), 2)
        self.clock.advance(24 * 3600)
        self.post("alice", "three")

    def test_follow_limit(self) -> None:
        """
        Following as many as allowed: a new follow is 161, following again
        someone already followed is fine.
        """
        self.service.microblog.max_following = 1
        follow = "/1.1/friendships/create.json"
        self.assertEqual(self.call("POST", follow, "alice", data={"screen_name": "bob"})[0], 200)
        self.assertError(self.call("POST", follow, "alice", data={"screen_name": "carol"}),
                         403, 161)
        self.assertEqual(self.call("POST", follow, "alice", data={"screen_name": "bob"})[0], 200)


class MultipartTests(APITestCase):
    def test_multipart_update(self) -> None:
        """
        Parameters in a multipart/form-data body count like a form's.
        """
        boundary = "distwitboundary"
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"status\"\r\n\r\n"
            f"multipart h\u00e9llo\r\n--{boundary}--\r\n"
        ).encode("utf-8")
        code, answer, _ = self.call(
            "POST", "/1.1/statuses/update.json", "alice", data=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        self.assertEqual((code, answer.get("text")), (200, "multipart h\u00e9llo"), answer)


class FavoriteTests(APITestCase):
    def test_favorites(self) -> None:
        """
        favorites/create marks a status for the reader (favorited, counts),
        twice is 139; favorites/list lists them (2008 path too);
        favorites/destroy undoes it, and of a non-favorite is 144.
        """
        posted = self.post("bob", "like me")
        code, body, _ = self.call("POST", "/1.1/favorites/create.json", "alice",
                                  data={"id": posted["id_str"]})
        self.assertEqual((code, body["favorited"], body["favorite_count"]), (200, True, 1))
        self.assertError(
            self.call("POST", f"/favorites/create/{posted['id']}.json", "alice"), 403, 139
        )
        _, body, _ = self.call("GET", "/1.1/statuses/user_timeline.json", "alice",
                               params={"screen_name": "bob"})
        self.assertEqual((body[0]["favorited"], body[0]["favorite_count"]), (True, 1))
        _, body, _ = self.call("GET", "/1.1/statuses/user_timeline.json", "carol",
                               params={"screen_name": "bob"})
        self.assertEqual((body[0]["favorited"], body[0]["favorite_count"]), (False, 1))
        _, listed, _ = self.call("GET", "/1.1/favorites/list.json", "alice")
        self.assertEqual([s["id"] for s in listed], [posted["id"]])
        _, listed, _ = self.call("GET", "/favorites/alice.json")
        self.assertEqual([s["id"] for s in listed], [posted["id"]])
        _, me, _ = self.call("GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual(me["favourites_count"], 1)
        code, body, _ = self.call("POST", "/1.1/favorites/destroy.json", "alice",
                                  data={"id": posted["id_str"]})
        self.assertEqual((code, body["favorited"], body["favorite_count"]), (200, False, 0))
        self.assertError(
            self.call("POST", "/1.1/favorites/destroy.json", "alice",
                      data={"id": posted["id_str"]}), 404, 144
        )
        self.assertError(
            self.call("POST", "/1.1/favorites/create.json", "alice", data={"id": "999"}),
            404, 144,
        )


class ClientsPageTests(APITestCase):
    def test_clients_page(self) -> None:
        """
        /docs/clients shows the set-up lines with this server's address.
        """
        response = self.successResultOf(self.stub.get(BASE + "/docs/clients"))
        body = self.successResultOf(response.content()).decode()
        self.assertEqual(response.code, 200)
        for expected in ("tweepy", "python-twitter", "twython", "twitter-api-v2",
                         "twitter-lite", "twit", 'host="localhost:8443"',
                         "http://localhost:8080/1.1"):
            self.assertIn(expected, body)


class LockTests(APITestCase):
    def test_guessing_locks_the_account(self) -> None:
        """
        Ten wrong passwords lock the account for 15 minutes (326), even for
        the right password; then it opens again.  Other accounts are not
        touched.
        """
        path = "/1.1/account/verify_credentials.json"
        for _ in range(10):
            self.assertError(self.call("GET", path, headers={
                "authorization": "Basic " + _basic("alice", "guess")}), 401, 32)
        self.assertError(self.call("GET", path, "alice"), 403, 326)
        self.assertEqual(self.call("GET", path, "bob")[0], 200)
        self.clock.advance(15 * 60 + 1)
        self.assertEqual(self.call("GET", path, "alice")[0], 200)
