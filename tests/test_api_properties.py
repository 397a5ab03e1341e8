"""
Property tests: whatever parameters a client sends to any endpoint, the
answer is a valid one or a Twitter error body, never a 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_api import BASE, PASSWORDS, APITestCase

#: Every endpoint path of the table, with the path arguments filled in.
PATHS = [
    "account/verify_credentials", "account/update_profile", "account/rate_limit_status",
    "help/configuration", "help/test", "statuses/update", "statuses/home_timeline",
    "statuses/mentions_timeline", "statuses/user_timeline", "statuses/user_timeline/bob",
    "statuses/public_timeline", "statuses/show", "statuses/show/1", "statuses/lookup",
    "statuses/destroy", "statuses/destroy/1", "search/tweets", "users/show",
    "users/show/bob", "users/lookup", "users/search", "friendships/create",
    "friendships/destroy", "friendships/show", "friendships/exists", "friendships/lookup",
    "friends/ids", "followers/ids", "friends/list", "followers/list", "nothing/here",
    "favorites/create", "favorites/destroy/1", "favorites/list", "favorites", "favorites/bob",
]

NAMES = [
    "status", "count", "since_id", "max_id", "id", "user_id", "screen_name", "cursor",
    "stringify_ids", "trim_user", "tweet_mode", "include_entities", "q", "page", "map",
    "in_reply_to_status_id", "source", "name", "description", "location", "url",
    "source_screen_name", "target_screen_name", "source_id", "target_id", "user_a",
    "user_b", "resources", "skip_status",
]

values = st.one_of(
    st.text(max_size=200),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "true", "false", "True", "t", "0", "-1", "1e5", "bob", "bob@x",
                     "alice,bob", "%00", "a" * 300, "18446744073709551616", "extended",
                     "@bob@127.0.0.1:1", "\ud7ff\ue000"]),
)
params = st.dictionaries(st.sampled_from(NAMES), values, max_size=5)


class NoServerErrorTests(APITestCase):
    @settings(
        max_examples=1000,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        path=st.sampled_from(PATHS),
        method=st.sampled_from(["GET", "POST"]),
        fmt=st.sampled_from(["json", "xml", "rss", None]),
        user=st.sampled_from([None, "alice", "alice", "mallory"]),
        query=params,
        form=params,
    )
    def test_any_parameters(
        self, path: str, method: str, fmt: str | None, user: str | None,
        query: dict[str, str], form: dict[str, str],
    ) -> None:
        """
        No combination of endpoint, method, format, credentials and
        parameters makes a 500; JSON errors are Twitter's error bodies.
        """
        url = f"{BASE}/1.1/{path}" + (f".{fmt}" if fmt else "")
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs["auth"] = (user, PASSWORDS.get(user, "wrong"))
        if method == "POST":
            kwargs["data"] = {k: v.encode("utf-8", "surrogatepass") for k, v in form.items()}
        d = self.stub.request(method, url, **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        self.assertLess(response.code, 500, body[:500])
        if response.code >= 400 and fmt in (None, "json"):
            error = json.loads(body)["errors"][0]
            self.assertIsInstance(error["code"], int)
            self.assertTrue(error["message"])
