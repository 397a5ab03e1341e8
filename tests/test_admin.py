"""
The operator's commands (issue 17) against real running servers:
``distwit user lock|unlock|suspend|unsuspend|delete|set-password|list|show``
and ``distwit server block|unblock|list``.  Each decision goes to the
database; the running server reads it within a second, so every check
waits for it with a generous deadline.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli
from tests.test_federation import PASSWORD, Federation, acct, call, follow, home, post, wait_for

#: Seconds a decision may take to reach the running server.
DEADLINE = 20.0


def cli(case: SynchronousTestCase, *args: str, stdin: str = "") -> str:
    done = run_cli(*args, stdin=stdin)
    case.assertEqual(done.returncode, 0, done.stderr)
    case.assertNotIn("Traceback", done.stderr)
    return done.stdout


def answer(server: ServerProcess, path: str, user: str, password: str = PASSWORD,
           method: str = "GET", **data: Any) -> tuple[int, Any]:
    return server.request(method, path, auth=(user, password), data=data or None)


def code_of(body: Any) -> int | None:
    try:
        return int(body["errors"][0]["code"])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


class UserCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data = os.path.abspath(self.mktemp())
        for handle in ("alice", "bob"):
            cli(self, "adduser", "--create", handle, "--data", self.data, stdin=PASSWORD + "\n")
        self.server = ServerProcess(self.data)
        self.addCleanup(self.server.stop)

    def user(self, *args: str, stdin: str = "") -> str:
        return cli(self, "user", *args, "--data", self.data, stdin=stdin)

    def until(self, condition: Any, what: str) -> Any:
        return wait_for(condition, DEADLINE, what, step=0.1)[0]

    def test_lock_and_unlock(self) -> None:
        """
        The operator's lock refuses the user's password (326) on the running
        server; unlock lets them in again.  Unlock also lifts the lock that
        ten wrong passwords put on the account.
        """
        self.assertEqual(answer(self.server, "/1.1/account/verify_credentials.json", "alice")[0],
                         200)
        self.assertIn("locked alice", self.user("lock", "alice"))
        self.assertIn("alice\tlocked", self.user("list"))
        body = self.until(
            lambda: (lambda r: r[0] == 403 and r[1])(
                answer(self.server, "/1.1/account/verify_credentials.json", "alice")),
            "the lock on the running server",
        )
        self.assertEqual(code_of(body), 326)
        self.user("unlock", "alice")
        self.until(
            lambda: answer(self.server, "/1.1/account/verify_credentials.json", "alice")[0]
            == 200,
            "the unlock on the running server",
        )
        # Ten wrong passwords lock bob's account for this address (a
        # password not known to be right is not even checked).
        for _ in range(10):
            code, _ = answer(self.server, "/1.1/account/verify_credentials.json", "bob",
                             password="wrong password!")
            self.assertEqual(code, 401)
        code, body = answer(self.server, "/1.1/account/verify_credentials.json", "bob")
        self.assertEqual((code, code_of(body)), (403, 326))
        self.user("unlock", "bob")
        self.until(
            lambda: answer(self.server, "/1.1/account/verify_credentials.json", "bob")[0]
            == 200,
            "the wrong-password lock lifted",
        )
        self.assertIn("state: active", self.user("show", "bob"))

    def test_suspend(self) -> None:
        """
        A suspended user gets 64 for their own calls, others get 63 asking
        for them, their page is not shown, their posts leave the public
        timeline; unsuspend brings everything back.
        """
        post(self.server, "alice", "a post before the suspension")
        self.assertIn("suspended alice", self.user("suspend", "alice"))
        body = self.until(
            lambda: (lambda r: r[0] == 403 and r[1])(
                answer(self.server, "/1.1/statuses/home_timeline.json", "alice")),
            "the suspension on the running server",
        )
        self.assertEqual(body["errors"][0], {
            "code": 64,
            "message": "Your account is suspended and is not permitted to access this feature.",
        })
        code, body = answer(self.server, "/1.1/users/show.json?screen_name=alice", "bob")
        self.assertEqual((code, body["errors"][0]),
                         (403, {"code": 63, "message": "User has been suspended."}))
        code, body = answer(self.server, "/1.1/statuses/user_timeline.json?screen_name=alice",
                            "bob")
        self.assertEqual((code, code_of(body)), (403, 63))
        code, _ = self.server.request("GET", "/alice")
        self.assertEqual(code, 403)
        code, public = answer(self.server, "/1.1/statuses/public_timeline.json", "bob")
        self.assertEqual((code, public), (200, []))
        self.assertIn("alice\tsuspended", self.user("list"))
        self.user("unsuspend", "alice")
        self.until(
            lambda: answer(self.server, "/1.1/statuses/home_timeline.json", "alice")[0] == 200,
            "the suspension lifted",
        )
        code, public = answer(self.server, "/1.1/statuses/public_timeline.json", "bob")
        self.assertEqual([s["text"] for s in public], ["a post before the suspension"])
        self.assertEqual(self.server.request("GET", "/alice")[0], 200)

    def test_set_password(self) -> None:
        new = "a brand new password"
        self.assertIn("new password for alice",
                      self.user("set-password", "alice", stdin=new + "\n"))
        self.assertEqual(
            answer(self.server, "/1.1/account/verify_credentials.json", "alice", new)[0], 200
        )
        self.assertEqual(answer(self.server, "/1.1/account/verify_credentials.json", "alice")[0],
                         401)

    def test_refusals(self) -> None:
        """
        An unknown user, a delete without --yes (not on a terminal), a
        missing database: a message and status 1, never a traceback.
        """
        for args, message in [
            (("user", "show", "nobody", "--data", self.data), "no local user 'nobody'"),
            (("user", "delete", "alice", "--data", self.data), "--yes"),
            (("user", "list", "--data", self.data + "-missing"), "no distwit database"),
            (("server", "unblock", "example.org", "--data", self.data), "not blocked"),
            (("server", "block", "not a host!", "--data", self.data), "not a server"),
        ]:
            done = run_cli(*args)
            self.assertEqual(done.returncode, 1, (args, done.stdout, done.stderr))
            self.assertIn(message, done.stderr)
            self.assertNotIn("Traceback", done.stderr)
        self.assertFalse(os.path.exists(self.data + "-missing"))
        self.assertEqual(answer(self.server, "/1.1/account/verify_credentials.json", "alice")[0],
                         200)


class AcrossServersTests(SynchronousTestCase):
    """
    Deleting a user and blocking a server, with followers on another server.
    """

    def test_delete_reaches_followers_servers(self) -> None:
        """
        ``distwit user delete alice --yes`` on s1: her posts are gone from
        s1 and, through the tombstones of her log, from bob's home timeline
        on s2; she can no longer sign in; her follows are gone, on s2 too.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice", "carol"])
        s2 = federation.twitter("s2", ["bob"])
        follow(s2, "bob", acct("alice", s1))
        follow(s1, "carol", "alice")
        follow(s1, "alice", acct("bob", s2))
        wait_for(lambda: call(s2, "GET", "/1.1/account/verify_credentials.json", "bob")
                 ["followers_count"] == 1, DEADLINE, "alice's follow on s2")
        for text in ("alice one", "alice two"):
            post(s1, "alice", text)
        wait_for(lambda: {"alice one", "alice two"} <= {s["text"] for s in home(s2, "bob")},
                 DEADLINE, "alice's posts on s2")
        out = cli(self, "user", "delete", "alice", "--yes", "--data", s1.data)
        self.assertIn("deleted alice", out)
        self.assertIn("2 posts", out)
        self.assertEqual([s["text"] for s in home(s1, "carol")], [])
        wait_for(lambda: not [s for s in home(s2, "bob") if s["text"].startswith("alice")],
                 DEADLINE, "alice's posts deleted on s2")
        self.assertEqual(answer(s1, "/1.1/account/verify_credentials.json", "alice")[0], 401)
        code, body = answer(s1, "/1.1/users/show.json?screen_name=alice", "carol")
        self.assertEqual((code, code_of(body)), (404, 50))
        self.assertEqual(s1.request("GET", "/alice")[0], 404)
        carol = call(s1, "GET", "/1.1/account/verify_credentials.json", "carol")
        self.assertEqual(carol["friends_count"], 0)
        self.assertIn("alice\tdeleted", cli(self, "user", "list", "--data", s1.data))
        # Her follow of bob ends on s2 too: the running s1 sends the
        # unfollow notice the command queued.
        wait_for(lambda: call(s2, "GET", "/1.1/account/verify_credentials.json", "bob")
                 ["followers_count"] == 0, DEADLINE, "alice's unfollow on s2")

    def test_server_block(self) -> None:
        """
        s1 blocks s2: bob's posts leave alice's home timeline, his mention
        of alice is refused (403) and never shown, s1 fetches nothing more
        from s2; unblocking shows what was copied before again.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["bob"], options=("--log-level", "debug"))
        bob, alice = acct("bob", s2), acct("alice", s1)
        follow(s1, "alice", bob)
        post(s2, "bob", "bob one")
        wait_for(lambda: "bob one" in {s["text"] for s in home(s1, "alice")}, DEADLINE,
                 "bob's post on s1")
        authority = s2.url.split("//", 1)[1]
        self.assertEqual(cli(self, "server", "block", s2.url, "--data", s1.data),
                         f"blocked {authority}\n")
        self.assertIn(authority, cli(self, "server", "list", "--data", s1.data))
        wait_for(lambda: not home(s1, "alice"), DEADLINE, "bob's posts hidden on s1")
        fetches = s2.log_text().count("GET /s2s/feed/bob.rss")
        post(s2, "bob", f"hello @{alice}")
        post(s2, "bob", "bob three")
        wait_for(lambda: "POST /s2s/notice HTTP/1.1\" 403" in s1.log_text(), DEADLINE,
                 "the mention refused by s1")
        # Rounds go on (interval 1 s); none fetches bob's new posts.
        wait_for(lambda: s2.log_text().count("POST /ping/exchange") > 0 or True, 1, "")
        self.assertEqual(s2.log_text().count("GET /s2s/feed/bob.rss"), fetches)
        mentions = call(s1, "GET", "/1.1/statuses/mentions_timeline.json", "alice")
        self.assertEqual(mentions, [])
        self.assertEqual(home(s1, "alice"), [])
        cli(self, "server", "unblock", authority, "--data", s1.data)
        wait_for(lambda: "bob one" in {s["text"] for s in home(s1, "alice")}, DEADLINE,
                 "bob's posts shown again")
        wait_for(lambda: "bob three" in {s["text"] for s in home(s1, "alice")}, DEADLINE,
                 "bob's later posts fetched after the unblock")
