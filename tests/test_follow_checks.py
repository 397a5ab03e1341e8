"""
Following checks the account first (docs/design/reach.md): a remote acct is
looked up at its home server before anything is recorded; an unknown
account is "User not found.", a server that does not answer as distwit a
clear 502, and ``@handle@authority`` is taken as people paste it.

In memory: the real API over a real (synchronous) SQLite store, the other
server scripted (tests/fakes.py).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

from twisted.internet.task import Clock

from distwit.config import resolve
from distwit.core.accts import HomeUnreachable, as_typed
from distwit.core.microblog import NoSuchUser
from distwit.roles.twitter import TwitterService, make_twitter_web
from distwit.s2s import paths
from distwit.s2s.interfaces import S2SResponseError
from distwit.s2s.keys import ServerKey
from distwit.s2s.metadata import metadata_document

from tests.fakes import FakeVerifier, ScriptedClient
from tests.support import synchronous_sqlite_store
from tests.test_api import APITestCase, PASSWORDS
from tests.test_pages import PagesTestCase

S2 = "http://s2.test"
OUR_REGISTRY = "http://registry.test"


class Checks(APITestCase):
    """
    alice on this server (registry ``OUR_REGISTRY``); bob (3 posts) on
    s2.test, whose server reports to ``self.registry_of_s2``.
    """

    registry_of_s2 = OUR_REGISTRY

    def setUp(self) -> None:
        from treq.testing import StubTreq

        data = self.mktemp()
        os.makedirs(data)
        self.settings = resolve({"data": data, "registry": OUR_REGISTRY}, None)
        self.store = synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))
        self.clock = Clock()
        self.clock.advance(1_763_971_200)
        self.client = ScriptedClient()
        self.service = TwitterService(
            self.settings, self.store, self.clock, self.make_hasher(),
            client=self.client, verifier=FakeVerifier(),
        )
        self.web = make_twitter_web(self.service)
        self.stub = StubTreq(self.web.root)
        for handle, password in PASSWORDS.items():
            self.successResultOf(self.service.microblog.create_user(handle, password))
        routes = self.client.routes
        routes[paths.metadata_url(S2)] = metadata_document(
            S2, "twitter", ["twitter"], ServerKey.generate(), {}, "0"
        )
        routes[paths.webfinger_url(S2, "bob@s2.test")] = {"subject": "acct:bob@s2.test"}
        routes[paths.webfinger_url(S2, "nobody@s2.test")] = S2SResponseError(
            f"GET {paths.webfinger_url(S2, 'nobody@s2.test')}: HTTP 404 Not Found: no user",
            status=404,
        )
        routes[paths.last_url(S2, "bob")] = lambda url, body: {
            "acct": "bob@s2.test", "last": 3, "registry": self.registry_of_s2,
        }

    def follow(self, name: str) -> tuple[int, Any, Any]:
        return self.call(
            "POST", "/1.1/friendships/create.json", "alice", data={"screen_name": name}
        )

    def recorded(self) -> tuple[Any, int]:
        """
        What alice's server holds of s2.test: accounts, and alice's follows.
        """
        accounts = [
            self.successResultOf(self.store.get_remote_account(handle, "s2.test"))
            for handle in ("bob", "nobody")
        ]
        alice = self.successResultOf(self.store.get_local_user("alice"))
        return [a for a in accounts if a is not None], alice.friends_count


class FollowCheckTests(Checks):
    def test_unknown_account(self) -> None:
        """
        Following nobody@s2.test, whom s2.test does not know: Twitter's
        "User not found." (50, 404), and no account or follow recorded.
        """
        result = self.follow("nobody@s2.test")
        self.assertError(result, 404, 50)
        self.assertEqual(result[1]["errors"][0]["message"], "User not found.")
        self.assertEqual(self.recorded(), ([], 0))

    def test_server_that_does_not_exist(self) -> None:
        """
        Following someone at a server that does not answer: 502 with code
        50 and a message naming the server (not what failed there), and
        nothing recorded.  A web server that is not distwit gets the very
        same answer.
        """
        self.client.routes[paths.metadata_url("http://nowhere.test")] = S2SResponseError(
            "GET http://nowhere.test/.well-known/distwit: no answer"
        )
        self.client.routes[paths.metadata_url("http://web.test")] = S2SResponseError(
            "GET http://web.test/.well-known/distwit: the answer is not JSON"
        )
        answers = []
        for authority in ("nowhere.test", "web.test"):
            result = self.follow(f"someone@{authority}")
            self.assertError(result, 502, 50)
            answers.append(result[1]["errors"][0]["message"].replace(authority, "HOST"))
            self.assertIsNone(
                self.successResultOf(self.store.get_remote_account("someone", authority))
            )
        self.assertEqual(answers[0], answers[1])
        self.assertIn("HOST", answers[0])
        self.assertNotIn("JSON", answers[0])
        alice = self.successResultOf(self.store.get_local_user("alice"))
        self.assertEqual(alice.friends_count, 0)

    def test_pasted_form(self) -> None:
        """
        ``@bob@s2.test`` (as Mastodon shows accounts) follows bob@s2.test,
        and names him in users/show and statuses/user_timeline too.
        """
        code, body, _ = self.follow("@bob@s2.test")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["screen_name"], "bob@s2.test")
        self.assertEqual(self.recorded()[1], 1)
        code, shown, _ = self.call(
            "GET", "/1.1/users/show.json", "alice", params={"screen_name": "@bob@s2.test"}
        )
        self.assertEqual((code, shown["id"]), (200, body["id"]))
        code, timeline, _ = self.call(
            "GET", "/1.1/statuses/user_timeline.json", "alice",
            params={"screen_name": "@Bob@s2.test"},
        )
        self.assertEqual((code, timeline), (200, []))

    def test_known_account_not_checked_again(self) -> None:
        """
        Once bob@s2.test was found, following him again (or after an
        unfollow) asks s2.test nothing: the account is cached.
        """
        self.assertEqual(self.follow("bob@s2.test")[0], 200)
        asked = len(self.client.requests)
        self.call("POST", "/1.1/friendships/destroy.json", "alice",
                  data={"screen_name": "bob@s2.test"})
        self.assertEqual(self.follow("bob@s2.test")[0], 200)
        gets = [url for method, url, _ in self.client.requests[asked:] if method == "GET"]
        self.assertEqual(gets, [])

    def test_users_show_of_unreachable_server(self) -> None:
        """
        users/show of an account on a server that does not answer is the
        same 502 (and records nothing).
        """
        self.client.routes[paths.metadata_url("http://nowhere.test")] = S2SResponseError(
            "GET http://nowhere.test/.well-known/distwit: no answer"
        )
        result = self.call(
            "GET", "/1.1/users/show.json", "alice", params={"screen_name": "x@nowhere.test"}
        )
        self.assertError(result, 502, 50)
        self.assertIsNone(self.successResultOf(self.store.get_remote_account("x", "nowhere.test")))


class SameFederationTests(Checks):
    def test_same_registry_is_not_direct(self) -> None:
        """
        bob's server names our registry: bob is not polled directly (the
        ping servers will tell of his posts), and his last number is known.
        """
        self.assertEqual(self.follow("bob@s2.test")[0], 200)
        bob = self.successResultOf(self.store.get_remote_account("bob", "s2.test"))
        self.assertEqual(self.successResultOf(self.store.is_direct(bob.id)), False)
        self.assertEqual(bob.last_seq, 3)
        self.assertEqual(self.successResultOf(self.store.direct_subscriptions()), [])


class OtherFederationTests(Checks):
    registry_of_s2 = "http://another-registry.test"

    def test_other_registry_is_direct(self) -> None:
        """
        bob's server names another registry: bob is direct, among the
        followed authors polled on their own servers.
        """
        self.assertEqual(self.follow("bob@s2.test")[0], 200)
        bob = self.successResultOf(self.store.get_remote_account("bob", "s2.test"))
        self.assertEqual(self.successResultOf(self.store.is_direct(bob.id)), True)
        direct = self.successResultOf(self.store.direct_subscriptions())
        self.assertEqual([account.id for account in direct], [bob.id])


class ResolveTests(Checks):
    def test_rules(self) -> None:
        """
        The federation's resolve raises NoSuchUser for an unknown account
        and HomeUnreachable (a NoSuchUser, for callers that do not tell the
        two apart) for a server that does not answer; ``as_typed`` takes
        the pasted form only.
        """
        federation = self.service.federation
        assert federation is not None
        failure = self.failureResultOf(federation.resolve("nobody@s2.test"), NoSuchUser)
        self.assertNotIsInstance(failure.value, HomeUnreachable)
        self.client.routes[paths.metadata_url("http://nowhere.test")] = S2SResponseError("x")
        self.failureResultOf(federation.resolve("@x@nowhere.test"), HomeUnreachable)
        self.assertEqual(
            [as_typed(name) for name in ("@bob@s2.test", "bob@s2.test", "@bob", "bob")],
            ["bob@s2.test", "bob@s2.test", "@bob", "bob"],
        )


class Unreachable:
    """
    A federation whose every remote lookup finds no distwit server.
    """

    authority = "localhost:8080"

    def is_local(self, authority: str) -> bool:
        return authority == self.authority

    async def resolve(self, acct: str) -> Any:
        raise HomeUnreachable(f"No distwit server answers for {acct}.")


class FollowPageTests(PagesTestCase):
    def test_unreachable_home_on_the_follow_page(self) -> None:
        """
        The confirmed follow of ``/follow`` for an account whose server
        does not answer is a 502 page that says so; alice follows nobody.
        """
        self.microblog.federation = Unreachable()
        browser = self.signed_in("alice")
        query = "/follow?" + urlencode({"acct": "x@nowhere.test", "action": "follow"})
        confirm = browser.get(query)
        page = browser.post("/follow", {
            "csrf": confirm.csrf(), "acct": "x@nowhere.test", "action": "follow",
        })
        self.assertEqual(page.code, 502)
        self.assertIn("No distwit server answers for x@nowhere.test", page.text)
        alice = self.successResultOf(self.store.get_local_user("alice"))
        self.assertEqual(alice.friends_count, 0)
