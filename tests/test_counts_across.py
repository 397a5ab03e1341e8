"""
Counts agree across servers (issue 13), with real processes on 127.0.0.1
(tests.test_federation's ``Federation``): a post of alice@s1 favorited and
retweeted by users of s2 and s3 shows the same ``favorite_count`` and
``retweet_count`` in ``statuses/show`` on all three servers.

The remote counts are remembered for ``counts_ttl`` seconds (30 by
default); these servers are given 1 in a config file, so the test waits
for the counts to agree rather than sleeping through a cache.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.test_federation import Federation, acct, call, follow, post, wait_for

#: The ping interval of these tests' twitter servers (seconds).
INTERVAL = 1.0
#: Generous: notices go at once, counts are asked for again each second.
DEADLINE = 30


def counts_config(federation: Federation) -> tuple[str, ...]:
    """
    The options that give a twitter server a 1 s counts TTL.
    """
    path = os.path.join(federation.base, "counts.ini")
    with open(path, "w") as f:
        f.write("[federation]\ncounts_ttl = 1\n")
    return ("--config", path)


def shown(server: Any, user: str, status_id: int) -> tuple[int, int]:
    status = call(server, "GET", f"/1.1/statuses/show/{status_id}.json", user)
    return int(status["favorite_count"]), int(status["retweet_count"])


def copy_on(server: Any, user: str, text: str) -> Any:
    found = [s for s in call(server, "GET", "/1.1/statuses/home_timeline.json", user)
             if s["text"] == text]
    return found and found[0]


class CountsAcrossServersTests(SynchronousTestCase):
    def test_three_servers_agree(self) -> None:
        """
        alice's post (s1) is favorited by bob (s2) and dave (s3), retweeted
        by bob and carl (s2) and dave (s3): every server shows 2 favorites
        and 3 retweets.  dave's unretweet and bob's unfavorite bring every
        server to 1 and 2.
        """
        federation = Federation(self, pings=1)
        options = counts_config(federation)
        s1 = federation.twitter("s1", ["alice"], interval=INTERVAL, options=options)
        s2 = federation.twitter("s2", ["bob", "carl"], interval=INTERVAL, options=options)
        s3 = federation.twitter("s3", ["dave"], interval=INTERVAL, options=options)
        alice = acct("alice", s1)
        for server, user in ((s2, "bob"), (s2, "carl"), (s3, "dave")):
            follow(server, user, alice)
        original = post(s1, "alice", "count me everywhere")
        text = original["text"]
        on_s2, _ = wait_for(lambda: copy_on(s2, "bob", text), DEADLINE, "alice's post on s2")
        on_s3, _ = wait_for(lambda: copy_on(s3, "dave", text), DEADLINE, "alice's post on s3")
        wait_for(lambda: copy_on(s2, "carl", text), DEADLINE, "alice's post in carl's home")

        call(s2, "POST", f"/1.1/favorites/create/{on_s2['id']}.json", "bob")
        call(s3, "POST", f"/1.1/favorites/create/{on_s3['id']}.json", "dave")
        call(s2, "POST", f"/1.1/statuses/retweet/{on_s2['id']}.json", "bob")
        call(s2, "POST", f"/1.1/statuses/retweet/{on_s2['id']}.json", "carl")
        dave_rt = call(s3, "POST", f"/1.1/statuses/retweet/{on_s3['id']}.json", "dave")

        views = ((s1, "alice", original["id"]), (s2, "bob", on_s2["id"]),
                 (s3, "dave", on_s3["id"]))

        def everywhere(expected: tuple[int, int]) -> Any:
            seen = [shown(server, user, status_id) for server, user, status_id in views]
            return seen if all(counts == expected for counts in seen) else False

        wait_for(lambda: shown(s1, "alice", original["id"]) == (2, 3), DEADLINE,
                 "2 favorites and 3 retweets counted on s1")
        seen, _ = wait_for(lambda: everywhere((2, 3)), DEADLINE, "s1's counts on s2 and s3")
        self.assertEqual(seen, [(2, 3)] * 3)

        call(s3, "POST", f"/1.1/statuses/destroy/{dave_rt['id']}.json", "dave")
        call(s2, "POST", f"/1.1/favorites/destroy/{on_s2['id']}.json", "bob")
        seen, _ = wait_for(lambda: everywhere((1, 2)), DEADLINE, "one favorite, two retweets")
        self.assertEqual(seen, [(1, 2)] * 3)
        for server in (s1, s2, s3):
            self.assertNotIn("Traceback", server.log_text())
