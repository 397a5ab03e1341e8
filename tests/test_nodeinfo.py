"""
NodeInfo 2.1: the discovery document at ``/.well-known/nodeinfo`` and the
document at ``/nodeinfo/2.1`` with the counts a federation crawler reads,
in memory and from a real server.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from twisted.web.resource import Resource

from distwit import __version__
from distwit.config import resolve
from distwit.core.usage import DAY_MS
from distwit.roles.twitter import TwitterService, make_twitter_web

from tests.processes import ServerProcess, run_cli
from tests.support import (
    POSTGRES_SKIP,
    SynchronousPool,
    cheap_hasher,
    postgres_url,
    synchronous_sqlite_store,
    wipe_postgres,
)

PASSWORD = "nodeinfo password"
PROFILE = 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
#: What the 2.1 schema requires at the top, and allows nothing beside.
TOP_KEYS = {"version", "software", "protocols", "services", "openRegistrations", "usage",
            "metadata"}


class NodeInfoTests(SynchronousTestCase):
    def make(self, open_registration: bool = True) -> None:
        data = os.path.abspath(self.mktemp())
        os.makedirs(data)
        settings = resolve(
            {"data": data, "public_url": "https://tw.example",
             "open_registration": "true" if open_registration else "false"},
            None,
        )
        self.store = self.make_store(data)
        self.clock = Clock()
        self.clock.advance(1_763_971_200)  # 2025-11-24
        self.service = TwitterService(settings, self.store, self.clock, cheap_hasher())
        web = make_twitter_web(self.service)
        root = web.root
        well_known = Resource()
        for name, resource in web.well_known.items():
            well_known.putChild(name, resource)
        root.putChild(b".well-known", well_known)  # type: ignore[attr-defined]
        self.stub = StubTreq(root)
        self.microblog = self.service.microblog

    def make_store(self, data: str) -> Any:
        return synchronous_sqlite_store(os.path.join(data, "db.sqlite3"))

    def get(self, path: str) -> tuple[int, dict[str, str], Any]:
        d = self.stub.get("https://tw.example" + path)
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        headers = {
            name.decode().lower(): values[0].decode()
            for name, values in response.headers.getAllRawHeaders()
        }
        try:
            return response.code, headers, json.loads(body)
        except ValueError:
            return response.code, headers, body.decode()

    def run_(self, coroutine: Any) -> Any:
        from twisted.internet.defer import ensureDeferred

        return self.successResultOf(ensureDeferred(coroutine))

    def test_discovery(self) -> None:
        """
        ``/.well-known/nodeinfo`` links the 2.1 schema to the document at
        the public URL, as JSON anyone's page may read.
        """
        self.make()
        code, headers, body = self.get("/.well-known/nodeinfo")
        self.assertEqual(code, 200)
        self.assertEqual(headers["content-type"], "application/json; charset=utf-8")
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertEqual(
            body,
            {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                        "href": "https://tw.example/nodeinfo/2.1"}]},
        )

    def test_document_counts(self) -> None:
        """
        The document names distwit and its version, its protocol and
        feeds, whether anyone may sign up, and counts the local users,
        those who posted or retweeted in the last 30 and 180 days, and
        their posts (not retweets nor deleted ones).
        """
        self.make()
        users = {
            handle: self.run_(self.microblog.create_user(handle, PASSWORD))
            for handle in ("old", "spring", "lately", "quiet")
        }
        self.run_(self.microblog.post(users["old"], "a year ago"))
        self.clock.advance(200 * DAY_MS / 1000)
        self.run_(self.microblog.post(users["spring"], "within the half-year"))
        spring = self.run_(self.microblog.post(users["spring"], "and again"))
        self.clock.advance(160 * DAY_MS / 1000)
        self.run_(self.microblog.retweet(users["lately"], spring.id))
        gone = self.run_(self.microblog.post(users["lately"], "soon deleted"))
        self.run_(self.microblog.delete(users["lately"], gone.id))
        self.clock.advance(5 * DAY_MS / 1000)

        code, headers, body = self.get("/nodeinfo/2.1")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers["content-type"], PROFILE)
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertEqual(set(body), TOP_KEYS)
        self.assertEqual(body["version"], "2.1")
        self.assertEqual(body["software"], {"name": "distwit", "version": __version__})
        self.assertRegex(body["software"]["name"], r"\A[a-z0-9-]+\Z")
        self.assertEqual(body["protocols"], ["distwit"])
        self.assertEqual(body["services"], {"inbound": [], "outbound": ["atom1.0", "rss2.0"]})
        self.assertIs(body["openRegistrations"], True)
        self.assertEqual(
            body["usage"],
            {"users": {"total": 4, "activeHalfyear": 2, "activeMonth": 1}, "localPosts": 3},
        )
        self.assertEqual(body["metadata"], {"nodeName": "tw.example"})

    def test_closed_registrations_and_kept_counts(self) -> None:
        """
        ``openRegistrations`` follows the sign-up setting; the counts are
        kept a minute, then counted again.
        """
        self.make(open_registration=False)
        alice = self.run_(self.microblog.create_user("alice", PASSWORD))
        body = self.get("/nodeinfo/2.1")[2]
        self.assertIs(body["openRegistrations"], False)
        self.assertEqual(body["usage"]["localPosts"], 0)
        self.run_(self.microblog.post(alice, "hello"))
        self.assertEqual(self.get("/nodeinfo/2.1")[2]["usage"]["localPosts"], 0)
        self.clock.advance(61)
        self.assertEqual(self.get("/nodeinfo/2.1")[2]["usage"]["localPosts"], 1)

    def test_user_named_nodeinfo(self) -> None:
        """
        ``/nodeinfo`` stays the profile page of a user so named; only
        ``/nodeinfo/2.1`` is the document.
        """
        self.make()
        self.run_(self.microblog.create_user("nodeinfo", PASSWORD))
        code, headers, body = self.get("/nodeinfo")
        self.assertEqual(code, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"), headers)
        self.assertIn("@nodeinfo", body)
        self.assertEqual(self.get("/nodeinfo/2.1")[0], 200)


class PostgresNodeInfoTests(NodeInfoTests):
    """
    The same on PostgreSQL (``DISTWIT_TEST_POSTGRES``).
    """

    def make_store(self, data: str) -> Any:
        from distwit.store.engines.postgres import PostgresEngine
        from distwit.store.schema import prepare_database
        from distwit.store.sql import SQLStore

        url = postgres_url()
        if url is None:
            raise SkipTest(POSTGRES_SKIP)
        wipe_postgres(url)
        engine = PostgresEngine(url)
        prepare_database(engine)
        store = SQLStore(SynchronousPool(engine.connect()), engine)
        self.addCleanup(store.close)
        return store


class NodeInfoProcessTests(SynchronousTestCase):
    def test_real_server(self) -> None:
        """
        A crawler asking a real server follows the discovery link to the
        document, which counts the user who just posted.
        """
        data = os.path.abspath(self.mktemp())
        server = ServerProcess(data)
        self.addCleanup(server.stop)
        done = run_cli("adduser", "--create", "alice", "--data", data, stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        code, _ = server.request("POST", "/1.1/statuses/update.json", auth=("alice", PASSWORD),
                                 data={"status": "counted"})
        self.assertEqual(code, 200)
        code, discovery = server.request("GET", "/.well-known/nodeinfo")
        self.assertEqual(code, 200)
        (link,) = discovery["links"]
        self.assertEqual(link["href"], server.url + "/nodeinfo/2.1")
        code, document = server.request("GET", link["href"][len(server.url):])
        self.assertEqual(code, 200, document)
        self.assertEqual(document["usage"]["users"], {"total": 1, "activeHalfyear": 1,
                                                      "activeMonth": 1})
        self.assertEqual(document["usage"]["localPosts"], 1)
        self.assertTrue(re.match(r"\A\d+\.\d+", document["software"]["version"]))
        self.assertNotIn("Traceback", server.log_text())
