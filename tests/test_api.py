"""
The Twitter API's first slice, driven in memory with StubTreq over the
real resource tree and a real (synchronous) SQLite store.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import resolve
from distwit.core.passwords import PasswordHasher
from distwit.roles.twitter import TwitterService, make_twitter_web

from tests.support import cheap_hasher, synchronous_sqlite_store

BASE = "http://localhost:8080"
CREATED_AT = re.compile(r"\A[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \+0000 \d{4}\Z")
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}


class APITestCase(SynchronousTestCase):
    def setUp(self) -> None:
        data = self.mktemp()
        import os

        os.makedirs(data)
        self.settings = resolve({"data": data}, None)
        self.store = synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))
        self.clock = Clock()
        self.clock.advance(1_763_971_200)  # 2025-11-24
        self.service = TwitterService(self.settings, self.store, self.clock, self.make_hasher())
        self.web = make_twitter_web(self.service)
        self.stub = StubTreq(self.web.root)
        for handle, password in PASSWORDS.items():
            self.successResultOf(self.service.microblog.create_user(handle, password))

    def make_hasher(self) -> PasswordHasher:
        """
        The service's password hasher (tests may count what it does).
        """
        return cheap_hasher()

    def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        """
        One request; returns (HTTP status, decoded JSON, response).
        """
        url = BASE + path
        if params:
            url += "?" + urlencode(params)
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS.get(user, "wrong"))
        if data is not None:
            kwargs["data"] = data
        d = self.stub.request(method, url, **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        body_d = response.content()
        self.stub.flush()
        body = self.successResultOf(body_d)
        self.assertEqual(
            response.headers.getRawHeaders("content-type"), ["application/json; charset=utf-8"]
        )
        return response.code, json.loads(body.decode("utf-8")), response

    def post(self, user: str, text: str, **extra: Any) -> Any:
        code, body, _ = self.call(
            "POST", "/1.1/statuses/update.json", user, data={"status": text, **extra}
        )
        self.assertEqual(code, 200, body)
        return body

    def assertError(self, result: tuple[int, Any, Any], status: int, code: int) -> None:
        self.assertEqual((result[0], result[1]["errors"][0]["code"]), (status, code), result[1])
        self.assertIsInstance(result[1]["errors"][0]["message"], str)


class AuthenticationTests(APITestCase):
    def test_verify_credentials(self) -> None:
        """
        Good Basic credentials give the user object, with the latest status
        embedded once there is one, and no null nested objects.
        """
        code, body, _ = self.call("GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual(code, 200)
        self.assertEqual((body["screen_name"], body["id_str"]), ("alice", str(body["id"])))
        self.assertNotIn("status", body)
        self.assertRegex(body["created_at"], CREATED_AT)
        posted = self.post("alice", "first")
        _, body, _ = self.call("GET", "/account/verify_credentials.json", "alice")
        self.assertEqual(body["status"]["id"], posted["id"])
        self.assertNotIn("user", body["status"])
        # Like Twitter, only a missing profile URL is null.
        self.assertEqual([key for key, value in body.items() if value is None], ["url"])

    def test_handle_case_insensitive(self) -> None:
        """
        Signing in as ALICE is signing in as alice.
        """
        code, body, _ = self.call(
            "GET",
            "/1.1/account/verify_credentials.json",
            headers={"authorization": "Basic " + _basic("ALICE", PASSWORDS["alice"])},
        )
        self.assertEqual((code, body["screen_name"]), (200, "alice"))

    def test_missing_credentials(self) -> None:
        """
        No credentials on an endpoint that needs them: 401, code 215, and
        a Basic challenge.
        """
        result = self.call("GET", "/1.1/statuses/home_timeline.json")
        self.assertError(result, 401, 215)
        self.assertEqual(
            result[2].headers.getRawHeaders("www-authenticate"), ['Basic realm="distwit"']
        )

    def test_bad_credentials(self) -> None:
        """
        A wrong password, an unknown user, broken base64 or another scheme:
        401 with code 32.
        """
        self.assertError(
            self.call("GET", "/1.1/account/verify_credentials.json", "mallory"), 401, 32
        )
        for header in ("Basic !!!", "Basic " + _basic("alice", "nope"), "Digest x", "Basic"):
            self.assertError(
                self.call(
                    "GET", "/1.1/account/verify_credentials.json",
                    headers={"authorization": header},
                ),
                401,
                32,
            )

    def test_password_change_drops_remembered_credentials(self) -> None:
        """
        After a password change the old password no longer works, even
        though it was verified (and remembered) a moment before.
        """
        self.assertEqual(self.call("GET", "/1.1/account/verify_credentials.json", "alice")[0], 200)
        alice = self.successResultOf(self.service.microblog.user("alice"))
        self.successResultOf(self.service.microblog.set_password(alice, "a-new-password"))
        self.assertError(
            self.call("GET", "/1.1/account/verify_credentials.json", "alice"), 401, 32
        )


class UpdateTests(APITestCase):
    def test_update_everywhere(self) -> None:
        """
        statuses/update works under /1.1/, /api/ and the 2008 path, with and
        without .json, from the form body or the query string.
        """
        for i, path in enumerate(
            ["/1.1/statuses/update.json", "/api/statuses/update.json",
             "/statuses/update.json", "/statuses/update"]
        ):
            code, body, _ = self.call("POST", path, "alice", data={"status": f"body {i}"})
            self.assertEqual((code, body["text"]), (200, f"body {i}"))
            code, body, _ = self.call("POST", path, "alice", params={"status": f"query {i}"})
            self.assertEqual((code, body["text"]), (200, f"query {i}"))

    def test_status_object(self) -> None:
        """
        A status has Twitter's fields and types; source defaults to "web".
        """
        body = self.post("alice", "hello")
        self.assertEqual(body["id_str"], str(body["id"]))
        self.assertIsInstance(body["id"], int)
        self.assertEqual(body["source"], "web")
        self.assertRegex(body["created_at"], CREATED_AT)
        self.assertEqual(body["created_at"], "Mon Nov 24 08:00:00 +0000 2025")
        for key in ("id", "id_str", "screen_name", "name", "followers_count",
                    "friends_count", "statuses_count", "created_at"):
            self.assertIn(key, body["user"])
        self.assertEqual(body["user"]["statuses_count"], 1)
        self.assertNotIn("place", body)

    def test_reply(self) -> None:
        """
        in_reply_to_status_id names the replied-to status and its author;
        a reply to a status that is not there is a plain post.
        """
        first = self.post("bob", "question?")
        reply = self.post("alice", "answer", in_reply_to_status_id=first["id_str"])
        self.assertEqual(reply["in_reply_to_status_id"], first["id"])
        self.assertEqual(reply["in_reply_to_screen_name"], "bob")
        self.assertEqual(reply["in_reply_to_user_id"], first["user"]["id"])
        orphan = self.post("alice", "to nowhere", in_reply_to_status_id="12345")
        self.assertIsNone(orphan["in_reply_to_status_id"])

    def test_length_counts_nfc_code_points(self) -> None:
        """
        140 code points after NFC pass; 141 get error 186 (403) and nothing
        is stored.  Combining marks that compose count once; emoji count
        by code point; CJK characters count one each.
        """
        composed = "e\u0301" * 140  # NFC: 140 x "é"
        self.assertEqual(self.post("alice", composed)["text"], "\u00e9" * 140)
        self.post("alice", "\u732b" * 140)  # CJK
        self.post("alice", "\U0001F600" * 140)  # emoji, one code point each
        for too_long in ("x" * 141, "\u732b" * 141, "e\u0301" * 141,
                         "\U0001F469\u200d\U0001F4BB" * 47):  # 141 code points
            self.assertError(
                self.call("POST", "/1.1/statuses/update.json", "alice",
                          data={"status": too_long}),
                403,
                186,
            )
        _, timeline, _ = self.call("GET", "/1.1/statuses/user_timeline.json", "alice")
        self.assertEqual(len(timeline), 3)
        self.assertEqual(timeline[0]["user"]["statuses_count"], 3)

    def test_duplicate(self) -> None:
        """
        Posting the same text twice in a row: 187 (403).
        """
        self.post("alice", "same")
        self.assertError(
            self.call("POST", "/1.1/statuses/update.json", "alice", data={"status": "same"}),
            403,
            187,
        )

    def test_missing_or_empty_status(self) -> None:
        """
        No status, or only whitespace: 170 (400).
        """
        self.assertError(self.call("POST", "/1.1/statuses/update.json", "alice"), 400, 170)
        self.assertError(
            self.call("POST", "/1.1/statuses/update.json", "alice", data={"status": "  "}),
            400,
            170,
        )

    def test_invalid_utf8(self) -> None:
        """
        A status that is not UTF-8: 44 (400).
        """
        self.assertError(
            self.call(
                "POST", "/1.1/statuses/update.json", "alice", data=b"status=%FF%FE",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            400,
            44,
        )

    def test_update_needs_post(self) -> None:
        """
        GET on statuses/update is 34 (404) with a message naming POST.
        """
        result = self.call("GET", "/1.1/statuses/update.json", "alice", params={"status": "x"})
        self.assertError(result, 404, 34)
        self.assertIn("POST", result[1]["errors"][0]["message"])


class StatusTests(APITestCase):
    def test_show_both_forms(self) -> None:
        """
        statuses/show/:id and statuses/show?id= return the status; an
        unknown id is 144 (404); a malformed id is 44 (400).
        """
        posted = self.post("alice", "show me")
        _, body, _ = self.call("GET", f"/1.1/statuses/show/{posted['id']}.json")
        self.assertEqual(body["text"], "show me")
        _, body, _ = self.call("GET", "/1.1/statuses/show.json", params={"id": posted["id"]})
        self.assertEqual(body["id"], posted["id"])
        self.assertError(self.call("GET", "/1.1/statuses/show/1.json"), 404, 144)
        self.assertError(self.call("GET", "/1.1/statuses/show/abc.json"), 400, 44)
        self.assertError(self.call("GET", "/1.1/statuses/show.json"), 400, 170)

    def test_destroy(self) -> None:
        """
        The author may delete a status (POST); it is then gone from show and
        the timelines; nobody else may (183); deleting again is 144.
        """
        posted = self.post("alice", "regret")
        self.assertError(
            self.call("POST", f"/1.1/statuses/destroy/{posted['id']}.json", "bob"), 403, 183
        )
        self.assertError(
            self.call("GET", f"/1.1/statuses/destroy/{posted['id']}.json", "alice"), 404, 34
        )
        code, body, _ = self.call("POST", f"/1.1/statuses/destroy/{posted['id']}.json", "alice")
        self.assertEqual((code, body["id"]), (200, posted["id"]))
        self.assertError(self.call("GET", f"/1.1/statuses/show/{posted['id']}.json"), 404, 144)
        self.assertError(
            self.call("POST", "/statuses/destroy.json", "alice", data={"id": posted["id"]}),
            404,
            144,
        )
        _, timeline, _ = self.call("GET", "/1.1/statuses/public_timeline.json")
        self.assertEqual(timeline, [])


class TimelineTests(APITestCase):
    def test_home_user_public(self) -> None:
        """
        Home: own posts and followed users'; user: one author's; public:
        everyone's here.  friends_timeline is home under its 2008 name.
        """
        self.call("POST", "/1.1/friendships/create.json", "alice", data={"screen_name": "bob"})
        a = self.post("alice", "from alice")
        b = self.post("bob", "from bob")
        c = self.post("carol", "from carol")
        _, home, _ = self.call("GET", "/1.1/statuses/home_timeline.json", "alice")
        self.assertEqual([s["id"] for s in home], [b["id"], a["id"]])
        _, friends, _ = self.call("GET", "/statuses/friends_timeline.json", "alice")
        self.assertEqual(friends, home)
        _, user, _ = self.call(
            "GET", "/1.1/statuses/user_timeline.json", params={"screen_name": "Bob"}
        )
        self.assertEqual([s["id"] for s in user], [b["id"]])
        _, user, _ = self.call("GET", "/statuses/user_timeline/carol.json")
        self.assertEqual([s["id"] for s in user], [c["id"]])
        _, user, _ = self.call(
            "GET", "/1.1/statuses/user_timeline.json", params={"user_id": a["user"]["id"]}
        )
        self.assertEqual([s["id"] for s in user], [a["id"]])
        _, public, _ = self.call("GET", "/1.1/statuses/public_timeline.json")
        self.assertEqual([s["id"] for s in public], [c["id"], b["id"], a["id"]])

    def test_user_timeline_unknown_user(self) -> None:
        """
        The timeline of nobody is 34 (404); without a name or credentials
        it is a missing parameter (170).
        """
        self.assertError(
            self.call("GET", "/1.1/statuses/user_timeline.json", params={"screen_name": "zed"}),
            404,
            34,
        )
        self.assertError(self.call("GET", "/1.1/statuses/user_timeline.json"), 400, 170)

    def test_since_max_count(self) -> None:
        """
        since_id is strictly greater, max_id inclusive; count is clamped to
        1..200 as Twitter does; a non-number is 44.
        """
        ids = [self.post("alice", f"n{i}")["id"] for i in range(5)]

        def timeline(**params: Any) -> list[int]:
            code, body, _ = self.call(
                "GET", "/1.1/statuses/home_timeline.json", "alice", params=params
            )
            self.assertEqual(code, 200, body)
            return [s["id"] for s in body]

        self.assertEqual(timeline(since_id=ids[2]), [ids[4], ids[3]])
        self.assertEqual(timeline(max_id=ids[2]), [ids[2], ids[1], ids[0]])
        self.assertEqual(timeline(since_id=ids[0], max_id=ids[3]), [ids[3], ids[2], ids[1]])
        self.assertEqual(timeline(since_id=ids[4]), [])
        self.assertEqual(timeline(count=2), [ids[4], ids[3]])
        self.assertEqual(timeline(count=0), [ids[4]])
        self.assertEqual(timeline(count=5000), ids[::-1])
        for name in ("since_id", "max_id", "count"):
            self.assertError(
                self.call("GET", "/1.1/statuses/home_timeline.json", "alice",
                          params={name: "soon"}),
                400,
                44,
            )
        self.assertError(
            self.call("GET", "/1.1/statuses/home_timeline.json", "alice",
                      params={"since_id": "-1"}),
            400,
            44,
        )

    def test_ids_strictly_increase(self) -> None:
        """
        Status ids grow with every post, whoever posts, even within one
        millisecond.
        """
        ids = [self.post(user, f"tick {i}")["id"] for i in range(10)
               for user in ("alice", "bob")]
        self.assertEqual(ids, sorted(set(ids)))


class FriendshipTests(APITestCase):
    def test_follow_unfollow(self) -> None:
        """
        friendships/create and destroy return the target with its new
        follower count; following twice is harmless.
        """
        code, body, _ = self.call(
            "POST", "/1.1/friendships/create.json", "alice", data={"screen_name": "bob"}
        )
        self.assertEqual((code, body["screen_name"], body["followers_count"]), (200, "bob", 1))
        code, body, _ = self.call(
            "POST", "/friendships/create.json", "alice", data={"user_id": body["id"]}
        )
        self.assertEqual(body["followers_count"], 1)
        _, me, _ = self.call("GET", "/1.1/account/verify_credentials.json", "alice")
        self.assertEqual(me["friends_count"], 1)
        code, body, _ = self.call(
            "POST", "/api/friendships/destroy.json", "alice", data={"screen_name": "bob"}
        )
        self.assertEqual((code, body["followers_count"]), (200, 0))

    def test_follow_errors(self) -> None:
        """
        Following oneself is 158; an unknown user 50; no target 170.
        """
        self.assertError(
            self.call("POST", "/1.1/friendships/create.json", "alice",
                      data={"screen_name": "alice"}),
            403,
            158,
        )
        self.assertError(
            self.call("POST", "/1.1/friendships/create.json", "alice",
                      data={"screen_name": "nobody"}),
            404,
            50,
        )
        self.assertError(
            self.call("POST", "/1.1/friendships/create.json", "alice",
                      data={"user_id": "99999"}),
            404,
            50,
        )
        self.assertError(self.call("POST", "/1.1/friendships/create.json", "alice"), 400, 170)


class ErrorTests(APITestCase):
    def test_unknown_endpoint(self) -> None:
        """
        An endpoint that does not exist, or a format not served: 34.
        """
        self.assertError(self.call("GET", "/1.1/statuses/nothing.json"), 404, 34)
        self.assertError(self.call("GET", "/1.1/"), 404, 34)
        self.assertError(self.call("GET", "/1.1/statuses/public_timeline.yaml"), 404, 34)

    def test_internal_error_hides_traceback(self) -> None:
        """
        A failure inside the server is 131 (500), logged, and the client
        sees no traceback.
        """

        def broken(*args: Any) -> Any:
            raise RuntimeError("the disk is on fire")

        self.patch(self.store, "public_timeline", broken)
        result = self.call("GET", "/1.1/statuses/public_timeline.json")
        self.assertError(result, 500, 131)
        self.assertNotIn("fire", json.dumps(result[1]))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


class OwnResourceTests(APITestCase):
    def test_same_answers_as_klein(self) -> None:
        """
        The API's own resource (ordinary requests straight to the API)
        answers every kind of request as its Klein app does: timelines,
        errors, a post, a wrong method, odd paths (empty segments, a
        percent-encoded slash or line feed, bytes that are not UTF-8), the
        root.
        """
        api = self.web.api
        ours = StubTreq(api.resource())
        klein = StubTreq(api.app.resource())
        auth = ("alice", PASSWORDS["alice"])
        requests = [
            ("GET", "/statuses/home_timeline.json?count=2", None),
            ("GET", "/statuses/home_timeline.xml", None),
            ("HEAD", "/statuses/home_timeline.json", None),
            ("GET", "/statuses/nothing.json", None),
            ("GET", "/statuses/home_timeline.png", None),
            ("DELETE", "/statuses/home_timeline.json", None),
            ("OPTIONS", "/statuses/home_timeline.json", None),
            ("GET", "/statuses//home_timeline.json", None),
            ("GET", "/statuses/home_timeline.json/", None),
            ("GET", "/statuses%2Fhome_timeline.json", None),
            ("GET", "/statuses/show/1%0A.json", None),
            ("GET", "/statuses/show/%FF.json", None),
            ("GET", "/", None),
            ("GET", "/help/test.json", None),
        ]
        for n, (method, path, _) in enumerate(requests):
            answers = []
            for stub in (ours, klein):
                d = stub.request(method, "http://localhost" + path, auth=auth)
                stub.flush()
                response = self.successResultOf(d)
                body = self.successResultOf(response.content())
                headers = {k: v for k, v in response.headers.getAllRawHeaders()
                           if k.lower() not in (b"date", b"x-rate-limit-remaining")}
                answers.append((response.code, headers, body))
            self.assertEqual(answers[0], answers[1], (method, path))
        # Klein logs a path that is not UTF-8 (once through each).
        self.assertEqual(len(self.flushLoggedErrors(UnicodeDecodeError)), 2)
        # A post, through each.
        for stub, text in ((ours, "through ours"), (klein, "through Klein")):
            d = stub.request("POST", "http://localhost/statuses/update.json", auth=auth,
                             data={"status": text})
            stub.flush()
            response = self.successResultOf(d)
            self.assertEqual(response.code, 200)
            self.assertEqual(json.loads(self.successResultOf(response.content()))["text"], text)
