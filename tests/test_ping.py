"""
Tests for the ping role: the directory, the exchange and lookup routes,
and the service that ties them together.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from distwit.ping.directory import MemoryDirectory, normalize_acct
from distwit.ping.interfaces import IDirectory
from distwit.ping.resource import MAX_BODY
from distwit.ping.service import PingService
from distwit.roles.ping import make_ping_resource
from distwit.urls import authority_of_http_url
from distwit.s2s.interfaces import IRequestVerifier
from tests.fakes import SIGNER_HEADER, FakeVerifier, json_answer, post_signed

S1 = "https://s1.example"
S2 = "https://s2.example"
S3 = "http://s3.example:8080"
BASE = "http://ping.example"

class PingTestCase(SynchronousTestCase):
    """
    A ping service on a Clock and a fake verifier, reached through StubTreq.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.directory = MemoryDirectory(self.clock)
        self.verifier = FakeVerifier()
        self.service = PingService(self.directory, clock=self.clock, verifier=self.verifier)
        self.stub: Any = StubTreq(make_ping_resource(self.service))

    def post(
        self, signer: str | None, body: Any, wait: float | None = None
    ) -> Deferred[Any]:
        """
        POST an exchange; ``body`` is encoded as JSON unless it is bytes.
        """
        url = BASE + "/exchange" + ("" if wait is None else f"?wait={wait}")
        return post_signed(self.stub, url, signer, body)

    def result(self, response_d: Deferred[Any], code: int = 200) -> tuple[Any, bytes]:
        return json_answer(self, self.stub, response_d, code)

    def exchange(self, signer: str, code: int = 200, **fields: Any) -> Any:
        """
        A signed exchange from ``signer`` (as its own ``server``); the
        decoded answer.
        """
        body = {"server": signer, **fields}
        return self.result(self.post(signer, body), code)[0]

    def error(self, signer: str | None, body: Any, code: int) -> str:
        answer, _ = self.result(self.post(signer, body), code)
        self.assertEqual(list(answer), ["error"])
        self.assertIsInstance(answer["error"], str)
        return str(answer["error"])

    def lookup(self, acct: str, code: int = 200) -> Any:
        response_d = self.stub.get(BASE + "/lookup", params={"acct": acct})
        return self.result(response_d, code)[0]


class InterfaceTests(SynchronousTestCase):
    def test_provides(self) -> None:
        """
        MemoryDirectory provides IDirectory and the tests' fake verifier
        provides IRequestVerifier, so the fake stands for the real one.
        """
        self.assertTrue(verifyObject(IDirectory, MemoryDirectory(Clock())))
        self.assertTrue(verifyObject(IRequestVerifier, FakeVerifier()))

    def test_epoch_per_directory(self) -> None:
        """
        Each directory (each ping server start) has its own random epoch.
        """
        first, second = MemoryDirectory(Clock()), MemoryDirectory(Clock())
        self.assertNotEqual(first.epoch, second.epoch)
        self.assertGreaterEqual(len(first.epoch), 16)

    def test_normalize_acct(self) -> None:
        """
        Handles and hosts compare case-insensitively; anything that is not
        handle@authority is refused.
        """
        self.assertEqual(normalize_acct("Alice@S1.Example:8080"), "alice@s1.example:8080")
        self.assertEqual(normalize_acct("bob@[::1]:8080"), "bob@[::1]:8080")
        for bad in ["alice", "@s1.example", "a" * 16 + "@s1", "al ice@s1", "alice@", "a@b@c",
                    "alice@-s1.example", "alice@s1.example:", "ålice@s1"]:
            self.assertRaises(ValueError, normalize_acct, bad)

    def test_authority_of_http_url(self) -> None:
        """
        A server's authority is its URL's host[:port], default ports left
        out, so it compares with the authority of its users' accts; a URL
        from the wire that is not http(s) with a host has none.
        """
        self.assertEqual(authority_of_http_url("https://S1.example/"), "s1.example")
        self.assertEqual(authority_of_http_url("https://s1.example:443"), "s1.example")
        self.assertEqual(authority_of_http_url("http://s1.example:8080/x"), "s1.example:8080")
        self.assertEqual(authority_of_http_url("http://[::1]:8080"), "[::1]:8080")
        for bad in ["ftp://s1.example", "s1.example", "http://", "http://s1:99999"]:
            self.assertRaises(ValueError, authority_of_http_url, bad)


class DirectoryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.directory = MemoryDirectory(self.clock)

    def test_numbers_never_go_backwards(self) -> None:
        """
        A report at or below the number held changes nothing (not even the
        time or the home); a higher one updates all three.
        """
        self.clock.advance(10)
        self.directory.report(S1, {"alice@s1.example": (5, S1)})
        self.clock.advance(10)
        self.directory.report(S1, {"Alice@s1.example": (3, "https://elsewhere")})
        self.directory.report(S1, {"alice@s1.example": (5, "https://elsewhere")})
        self.assertEqual(self.directory.lookup("alice@s1.example"), (5, S1, 10.0))
        self.directory.report(S1, {"alice@s1.example": (6, S1 + "/new")})
        self.assertEqual(self.directory.lookup("ALICE@s1.example"), (6, S1 + "/new", 20.0))
        self.assertEqual(len(self.directory), 1)

    def test_lower_report_is_not_a_change(self) -> None:
        """
        A report that does not raise the number is not delivered to
        subscribers and does not move the cursor.
        """
        self.directory.report(S1, {"alice@s1.example": (5, S1)})
        cursor, _ = self.directory.changes_since(S2, None)
        self.directory.subscribe(S2, ["alice@s1.example"])
        cursor, changes = self.directory.changes_since(S2, cursor)
        self.assertEqual(changes, {"alice@s1.example": (5, S1)})
        self.directory.report(S1, {"alice@s1.example": (4, S1)})
        self.assertEqual(self.directory.changes_since(S2, cursor), (cursor, {}))

    def test_changes_cost_follows_changes(self) -> None:
        """
        A server following many accts keeps, between exchanges, only the
        accts that changed: what an exchange walks through.
        """
        accts = [f"user{i}@s1.example" for i in range(5000)]
        self.directory.report(S1, {acct: (1, S1) for acct in accts})
        self.directory.subscribe(S2, accts)
        cursor, changes = self.directory.changes_since(S2, None)
        self.assertEqual(len(changes), 5000)
        self.assertEqual(self.directory.changes_since(S2, cursor), (cursor, {}))
        self.directory.report(S1, {"user7@s1.example": (2, S1)})
        state = self.directory._servers[S2]
        self.assertEqual(list(state.pending), ["user7@s1.example"])
        cursor, changes = self.directory.changes_since(S2, cursor)
        self.assertEqual(changes, {"user7@s1.example": (2, S1)})
        self.directory.changes_since(S2, cursor)
        self.assertEqual(state.pending, {})

    def test_unsubscribe(self) -> None:
        """
        After unsubscribing, changes of that acct are no longer delivered,
        even those not yet acknowledged.
        """
        self.directory.subscribe(S2, ["alice@s1.example", "bob@s1.example"])
        cursor, _ = self.directory.changes_since(S2, None)
        self.directory.report(S1, {"alice@s1.example": (1, S1), "bob@s1.example": (1, S1)})
        self.directory.unsubscribe(S2, ["ALICE@s1.example"])
        self.assertEqual(
            self.directory.changes_since(S2, cursor)[1], {"bob@s1.example": (1, S1)}
        )
        self.assertEqual(self.directory._followers, {"bob@s1.example": S2})

    def test_wait_for_change(self) -> None:
        """
        A wait fires when a followed acct changes, not for others; every
        waiter of that server fires, and the timers are cancelled.
        """
        self.directory.subscribe(S2, ["alice@s1.example"])
        first = self.directory.wait_for_change(S2, 30)
        second = self.directory.wait_for_change(S2, 30)
        self.directory.report(S1, {"bob@s1.example": (1, S1)})
        self.assertNoResult(first)
        self.directory.report(S1, {"alice@s1.example": (1, S1)})
        self.assertIsNone(self.successResultOf(first))
        self.assertIsNone(self.successResultOf(second))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wait_timeout_and_cancel(self) -> None:
        """
        A wait fires after its timeout; a cancelled wait leaves no timer
        and no waiter behind.
        """
        waiting = self.directory.wait_for_change(S2, 30)
        self.clock.advance(29)
        self.assertNoResult(waiting)
        self.clock.advance(1)
        self.assertIsNone(self.successResultOf(waiting))

        cancelled = self.directory.wait_for_change(S2, 30)
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.directory._servers[S2].waiters, [])

    def test_release_waiters(self) -> None:
        """
        At shutdown every long-poll is answered at once.
        """
        waiting = self.directory.wait_for_change(S2, 30)
        self.directory.release_waiters()
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sizes(self) -> None:
        """
        The directory reports its number of accts and of servers, for
        metrics.
        """
        self.directory.report(S1, {"alice@s1.example": (1, S1), "bob@s1.example": (1, S1)})
        self.directory.subscribe(S2, ["alice@s1.example"])
        self.assertEqual(len(self.directory), 2)
        self.assertEqual(self.directory.server_count(), 2)


class ExchangeTests(PingTestCase):
    def test_report_then_lookup(self) -> None:
        """
        A report over the exchange is what lookup then answers, home being
        the reporting server's URL.
        """
        self.clock.advance(100)
        self.exchange(S1, reports={"Alice@S1.example": 201})
        self.assertEqual(
            self.lookup("alice@s1.example"),
            {"acct": "alice@s1.example", "last": 201, "home": S1, "updated": 100.0},
        )

    def test_numbers_never_go_backwards(self) -> None:
        """
        A lower report over the exchange leaves the number held.
        """
        self.exchange(S1, reports={"alice@s1.example": 201})
        self.exchange(S1, reports={"alice@s1.example": 42})
        self.assertEqual(self.lookup("alice@s1.example")["last"], 201)

    def test_cursor_semantics(self) -> None:
        """
        A change is delivered until acknowledged: the same cursor gets it
        again, the returned cursor acknowledges it, and later changes come
        alone.
        """
        first = self.exchange(S2, subscribe=["carol@s3.example:8080", "dave@s3.example:8080"])
        self.assertEqual(first["changes"], {})
        epoch, cursor = first["epoch"], first["cursor"]

        self.exchange(S3, reports={"carol@s3.example:8080": 63})
        expected = {"carol@s3.example:8080": {"last": 63, "home": S3}}
        answer = self.exchange(S2, epoch=epoch, cursor=cursor)
        self.assertEqual(answer["changes"], expected)
        # Not acknowledged: the old cursor again gets the same change.
        again = self.exchange(S2, epoch=epoch, cursor=cursor)
        self.assertEqual(again["changes"], expected)
        self.assertEqual(again["cursor"], answer["cursor"])
        # Acknowledged: nothing more.
        acked = self.exchange(S2, epoch=epoch, cursor=answer["cursor"])
        self.assertEqual(acked["changes"], {})

        self.exchange(S3, reports={"dave@s3.example:8080": 76, "carol@s3.example:8080": 63})
        later = self.exchange(S2, epoch=epoch, cursor=acked["cursor"])
        self.assertEqual(later["changes"], {"dave@s3.example:8080": {"last": 76, "home": S3}})
        self.assertGreater(later["cursor"], acked["cursor"])

    def test_epoch_change_full_answer(self) -> None:
        """
        A cursor of another epoch (a restarted ping server) counts as
        none: the answer holds every known acct the server follows.
        """
        self.exchange(S1, reports={"alice@s1.example": 5, "bob@s1.example": 7})
        first = self.exchange(S2, subscribe=["alice@s1.example", "bob@s1.example"])
        self.assertEqual(len(first["changes"]), 2)
        idle = self.exchange(S2, epoch=first["epoch"], cursor=first["cursor"])
        self.assertEqual(idle["changes"], {})

        stale = self.exchange(S2, epoch="an-old-epoch", cursor=first["cursor"])
        self.assertEqual(stale["epoch"], self.directory.epoch)
        self.assertEqual(
            stale["changes"],
            {
                "alice@s1.example": {"last": 5, "home": S1},
                "bob@s1.example": {"last": 7, "home": S1},
            },
        )
        # No epoch at all (a server's first exchange) is the same.
        self.assertEqual(len(self.exchange(S2, cursor=first["cursor"])["changes"]), 2)

    def test_reset_subscriptions(self) -> None:
        """
        With reset, subscribe is the whole list: accts left out are no
        longer followed, new ones are, and the known ones among the new
        are delivered.
        """
        self.exchange(S1, reports={"alice@s1.example": 5, "bob@s1.example": 7})
        first = self.exchange(S2, subscribe=["alice@s1.example"])
        epoch, cursor = first["epoch"], first["cursor"]
        answer = self.exchange(
            S2, epoch=epoch, cursor=cursor, reset=True, subscribe=["bob@s1.example"]
        )
        self.assertEqual(answer["changes"], {"bob@s1.example": {"last": 7, "home": S1}})
        self.exchange(S1, reports={"alice@s1.example": 6})
        after = self.exchange(S2, epoch=epoch, cursor=answer["cursor"])
        self.assertEqual(after["changes"], {})
        self.assertEqual(self.directory._servers[S2].accts, {"bob@s1.example"})

    def test_new_subscription_to_known_acct(self) -> None:
        """
        Subscribing to an acct the ping server already knows delivers its
        current number, even to a server whose cursor is up to date.
        """
        self.exchange(S1, reports={"alice@s1.example": 201})
        first = self.exchange(S2)
        answer = self.exchange(
            S2, epoch=first["epoch"], cursor=first["cursor"], subscribe=["alice@s1.example"]
        )
        self.assertEqual(answer["changes"], {"alice@s1.example": {"last": 201, "home": S1}})

    def test_unsubscribe(self) -> None:
        """
        After unsubscribing, the acct's changes are no longer delivered.
        """
        first = self.exchange(S2, subscribe=["alice@s1.example"])
        epoch = first["epoch"]
        second = self.exchange(
            S2, epoch=epoch, cursor=first["cursor"], unsubscribe=["alice@s1.example"]
        )
        self.exchange(S1, reports={"alice@s1.example": 1})
        self.assertEqual(
            self.exchange(S2, epoch=epoch, cursor=second["cursor"])["changes"], {}
        )

    def test_forged_report(self) -> None:
        """
        A signed report about a user of another authority is refused with
        403, and nothing of that request is applied: not the honest
        reports, not the subscriptions.
        """
        self.exchange(S3, reports={"carol@s3.example:8080": 10})
        message = self.error(
            S1,
            {
                "server": S1,
                "reports": {"alice@s1.example": 5, "carol@s3.example:8080": 99},
                "subscribe": ["dave@s3.example:8080"],
            },
            403,
        )
        self.assertIn("speaks for another authority", message)
        self.assertIn("carol@s3.example:8080", message)
        self.assertEqual(self.lookup("carol@s3.example:8080")["last"], 10)
        self.lookup("alice@s1.example", 404)
        self.assertNotIn(S1, self.directory._servers)

    def test_forged_home(self) -> None:
        """
        A server cannot name another server as its users' home.
        """
        message = self.error(
            S1, {"server": S1, "reports": {"alice@s1.example": 5}, "home": S2}, 403
        )
        self.assertIn("speaks for another authority", message)
        self.lookup("alice@s1.example", 404)

    def test_same_authority_other_port(self) -> None:
        """
        A server on a non-default port speaks for accts @host:port, and not
        for the same host on another port.
        """
        self.exchange(S3, reports={"carol@s3.example:8080": 1})
        self.error(S3, {"server": S3, "reports": {"carol@s3.example": 1}}, 403)
        self.lookup("carol@s3.example", 404)

    def test_server_mismatch(self) -> None:
        """
        The server field must be the signer: S1 cannot exchange in S2's
        name (and so cannot read or change S2's subscriptions).
        """
        message = self.error(S1, {"server": S2, "subscribe": ["alice@s1.example"]}, 403)
        self.assertIn("signed by", message)
        self.assertEqual(self.directory.server_count(), 0)

    def test_trailing_slash(self) -> None:
        """
        A public URL with or without a trailing slash names the same server.
        """
        answer, _ = self.result(self.post(S1, {"server": S1 + "/"}))
        self.assertEqual(answer["changes"], {})

    def test_unsigned(self) -> None:
        """
        An unsigned exchange is refused with 401 and a JSON reason, before
        its body is looked at.
        """
        message = self.error(None, b"not even json", 401)
        self.assertIn("not signed", message)
        self.assertEqual(self.directory.server_count(), 0)

    def test_bad_signature(self) -> None:
        """
        A request whose signature does not verify is refused with 401, the
        verifier's reason in the body, and nothing applied.
        """
        self.verifier.failure = "signature does not match the key of " + S1
        message = self.error(S1, {"server": S1, "reports": {"alice@s1.example": 5}}, 401)
        self.assertEqual(message, "signature does not match the key of " + S1)
        self.lookup("alice@s1.example", 404)

    def test_verifier_sees_body(self) -> None:
        """
        The verifier is given the exact body bytes (for the digest).
        """
        self.post(S1, b'{"server": "https://s1.example"}')
        self.assertEqual(self.verifier.bodies, [b'{"server": "https://s1.example"}'])

    def test_malformed(self) -> None:
        """
        Bodies that are not a well-formed exchange get 400 with a message
        naming what is wrong, and change nothing.
        """
        cases: list[tuple[Any, str]] = [
            (b"\xff\xfe", "not UTF-8 JSON"),
            (b"{not json", "not UTF-8 JSON"),
            (b'{"server": "https://s1.example", "cursor": NaN}', "not UTF-8 JSON"),
            ([], "JSON object"),
            ({}, "server"),
            ({"server": 5}, "server"),
            ({"server": S1, "cursor": -1}, "cursor"),
            ({"server": S1, "cursor": "12"}, "cursor"),
            ({"server": S1, "cursor": 1.5}, "cursor"),
            ({"server": S1, "cursor": True}, "cursor"),
            ({"server": S1, "epoch": 12}, "epoch"),
            ({"server": S1, "reports": ["alice@s1.example"]}, "reports"),
            ({"server": S1, "reports": {"alice@s1.example": -3}}, "reports"),
            ({"server": S1, "reports": {"alice@s1.example": "3"}}, "reports"),
            ({"server": S1, "reports": {"alice@s1.example": 2**64}}, "reports"),
            ({"server": S1, "reports": {"alice": 3}}, "handle@authority"),
            ({"server": S1, "reports": {"a_very_long_handle@s1.example": 3}}, "handle"),
            ({"server": S1, "home": 7}, "home"),
            ({"server": S1, "home": "ftp://s1.example"}, "home"),
            ({"server": S1, "subscribe": "alice@s1.example"}, "subscribe"),
            ({"server": S1, "subscribe": [5]}, "subscribe"),
            ({"server": S1, "unsubscribe": ["bad acct"]}, "unsubscribe"),
            ({"server": S1, "reset": "yes"}, "reset"),
            ({"server": S1, "subscribe": ["a@b"] * 100_001}, "at most 100000"),
        ]
        for body, needle in cases:
            message = self.error(S1, body, 400)
            self.assertIn(needle, message, body if isinstance(body, bytes) else str(body)[:80])
        self.assertEqual(len(self.directory), 0)
        self.assertEqual(self.directory.server_count(), 0)

    def test_bad_wait(self) -> None:
        """
        A wait that is not a number of seconds, 0 or more, is a 400.
        """
        for wait in ["soon", "-1", "inf", "nan"]:
            response_d = self.stub.post(
                BASE + "/exchange?wait=" + wait,
                data=json.dumps({"server": S1}).encode(),
                headers={SIGNER_HEADER: [S1.encode()]},
            )
            answer, _ = self.result(response_d, 400)
            self.assertIn("wait", answer["error"])

    def test_oversize(self) -> None:
        """
        A body over 1 MB is refused with 413 and a JSON reason.
        """
        big = json.dumps({"server": S1, "epoch": "x" * MAX_BODY}).encode()
        message = self.error(S1, big, 413)
        self.assertIn("over", message)
        self.assertEqual(self.directory.server_count(), 0)

    def test_wrong_method(self) -> None:
        """
        The exchange is a POST; a GET is not answered as one.
        """
        response = self.successResultOf(self.stub.get(BASE + "/exchange"))
        self.assertEqual(response.code, 405)


class LongPollTests(PingTestCase):
    def subscribed(self) -> Any:
        """
        S2 follows alice@s1.example and is up to date.
        """
        self.exchange(S1, reports={"alice@s1.example": 1})
        first = self.exchange(S2, subscribe=["alice@s1.example"])
        return {"server": S2, "epoch": first["epoch"], "cursor": first["cursor"]}

    def test_answers_on_change(self) -> None:
        """
        A long-poll with nothing to say is held, and answered as soon as
        another server reports a change to a followed acct.
        """
        body = self.subscribed()
        waiting = self.post(S2, body, wait=30)
        self.stub.flush()
        self.clock.advance(10)
        self.stub.flush()
        self.assertNoResult(waiting)

        self.exchange(S1, reports={"bob@s1.example": 1})  # not followed
        self.stub.flush()
        self.assertNoResult(waiting)

        self.exchange(S1, reports={"alice@s1.example": 2})
        answer, _ = self.result(waiting)
        self.assertEqual(answer["changes"], {"alice@s1.example": {"last": 2, "home": S1}})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout(self) -> None:
        """
        With no change, the long-poll is answered after the wait, empty,
        with the same cursor.
        """
        body = self.subscribed()
        waiting = self.post(S2, body, wait=30)
        self.clock.advance(29)
        self.stub.flush()
        self.assertNoResult(waiting)
        self.clock.advance(1)
        answer, _ = self.result(waiting)
        self.assertEqual(answer, {"epoch": body["epoch"], "cursor": body["cursor"], "changes": {}})

    def test_wait_clamped(self) -> None:
        """
        A wait longer than max_wait (60 s) is cut to max_wait.
        """
        waiting = self.post(S2, self.subscribed(), wait=3600)
        self.clock.advance(60)
        self.assertEqual(self.result(waiting)[0]["changes"], {})

    def test_no_wait_when_changes(self) -> None:
        """
        A long-poll that has something to say answers at once.
        """
        body = self.subscribed()
        self.exchange(S1, reports={"alice@s1.example": 2})
        answer, _ = self.result(self.post(S2, body, wait=30))
        self.assertEqual(answer["changes"], {"alice@s1.example": {"last": 2, "home": S1}})

    def test_disconnect_cancels_wait(self) -> None:
        """
        When the caller goes away during a long-poll, its wait is dropped:
        no timer, no waiter left behind.
        """
        waiting = self.post(S2, self.subscribed(), wait=30)
        self.stub.flush()
        self.assertEqual(len(self.directory._servers[S2].waiters), 1)
        waiting.cancel()
        self.stub.flush()
        self.failureResultOf(waiting)
        self.assertEqual(self.directory._servers[S2].waiters, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_answers_long_polls(self) -> None:
        """
        Stopping the service answers the long-polls in progress.
        """
        self.service.startService()
        waiting = self.post(S2, self.subscribed(), wait=30)
        self.stub.flush()
        self.assertNoResult(waiting)
        self.successResultOf(self.service.stopService())
        self.assertEqual(self.result(waiting)[0]["changes"], {})


class IdleSizeTests(PingTestCase):
    def idle_answer(self, server: str, count: int) -> bytes:
        accts = [f"user{i}@s1.example" for i in range(count)]
        self.exchange(S1, reports={acct: 1 for acct in accts})
        first = self.exchange(server, subscribe=accts)
        self.assertEqual(len(first["changes"]), count)
        body = {"server": server, "epoch": first["epoch"], "cursor": first["cursor"]}
        return self.result(self.post(server, body))[1]

    def test_idle_exchange_is_flat(self) -> None:
        """
        An idle exchange answer has the same small size whether the server
        follows 10 accts or 10,000.
        """
        small = self.idle_answer("https://small.example", 10)
        large = self.idle_answer("https://large.example", 10_000)
        self.assertLess(len(small), 200)
        self.assertLessEqual(abs(len(large) - len(small)), 4)  # the cursor's digits


class LookupTests(PingTestCase):
    def test_found(self) -> None:
        """
        Lookup of a reported acct gives its number, home and time, in any
        case; it needs no signature.
        """
        self.clock.advance(5)
        self.directory.report(S1, {"alice@s1.example": (201, S1)})
        self.assertEqual(
            self.lookup("ALICE@S1.example"),
            {"acct": "alice@s1.example", "last": 201, "home": S1, "updated": 5.0},
        )

    def test_not_found(self) -> None:
        """
        Lookup of an acct nobody reported is a 404 with a JSON reason.
        """
        answer = self.lookup("nobody@s1.example", 404)
        self.assertIn("nobody@s1.example", answer["error"])

    def test_bad_acct(self) -> None:
        """
        Lookup of something that is not handle@authority, or of nothing,
        is a 400 with a JSON reason.
        """
        for acct in ["alice", "way_too_long_handle@s1.example", "a b@s1"]:
            self.assertIn("handle@authority", self.lookup(acct, 400)["error"])
        answer, _ = self.result(self.stub.get(BASE + "/lookup"), 400)
        self.assertIn("acct", answer["error"])


class ServiceTests(SynchronousTestCase):
    def test_defaults_and_children(self) -> None:
        """
        Without a directory the service makes an empty one on the clock;
        child services (registry heartbeat, say) start and stop with it.
        """
        from twisted.application.service import Service

        child = Service()
        child.setName("heartbeat")
        service = PingService(clock=Clock(), verifier=FakeVerifier(), children=[child])
        self.assertEqual(service.name, "ping")
        self.assertTrue(verifyObject(IDirectory, service.directory))
        self.assertEqual(len(service.directory), 0)
        service.startService()
        self.assertTrue(child.running)
        self.successResultOf(service.stopService())
        self.assertFalse(child.running)
