"""
SMS end to end: a real distwit server (``twistd distwit``) configured with
``sms_gateway = kannel``, and a real Kannel (bearerbox, smsbox, the fake
SMS centre; see tests/test_sms_kannel.py) on free loopback ports.  Users
add their phone through the API, read the code from what their phone got,
and from then on get their friends' posts by SMS and post and command by
texting, as in 2008.

Saying that nothing arrived needs a point after which it would have: a
*barrier* texts ``HELP`` twice, one after the other's answer arrived.
Each delivery round queues what new posts call for before it sends, and
sends all it claimed before the next; so once the second answer arrived,
any SMS a post made before the barrier called for has been handed to
Kannel, which hands them to the phones in order.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.processes import ServerProcess, free_port, run_cli
from tests.test_sms_kannel import (
    KANNEL_SKIP,
    SHORT_CODE,
    Kannel,
    _wait_for,
    kannel_installed,
)

PASSWORD = "by text message"
SECRET = "inbound-from-kannel"
DAVE = "+15550001111"
HELP_ANSWER = "Commands: FOLLOW name"


class SMSServer:
    """
    A distwit server whose SMS go through a Kannel started beside it, and
    its users.
    """

    def __init__(self, case: SynchronousTestCase, users: list[str]) -> None:
        if not kannel_installed():
            raise SkipTest(KANNEL_SKIP)
        self.case = case
        base = os.path.abspath(case.mktemp())
        os.makedirs(base)
        port = free_port()
        self.kannel = Kannel(
            os.path.join(base, "kannel"),
            f"http://kannel:{SECRET}@127.0.0.1:{port}/channels/kannel",
        )
        case.addCleanup(self.kannel.stop)
        self.kannel.start()
        config = os.path.join(base, "distwit.ini")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                "[sms]\n"
                "sms_gateway = kannel\n"
                f"sms_from = {SHORT_CODE}\n"
                f"sms_inbound_secret = {SECRET}\n"
                f"kannel_sendsms_url = {self.kannel.sendsms_url}\n"
                f"kannel_username = {Kannel.USERNAME}\n"
                f"kannel_password = {Kannel.PASSWORD}\n"
            )
        data = os.path.join(base, "data")
        for n, user in enumerate(users):
            created = run_cli("adduser", *(("--create",) if n == 0 else ()), user,
                              "--data", data, stdin=PASSWORD + "\n")
            case.assertEqual(created.returncode, 0, created.stderr)
        self.server = ServerProcess(data, "--config", config, port=port)
        case.addCleanup(self.server.stop)

    # -- the API

    def api(self, user: str, method: str, path: str, **data: Any) -> Any:
        """
        One call of the Twitter API as ``user``; its answer, which must be 200.
        """
        target = f"/1.1/{path}.json"
        if method == "GET" and data:
            target += "?" + urllib.parse.urlencode(data)
        code, body = self.server.request(
            method, target, auth=(user, PASSWORD), data=None if method == "GET" else data
        )
        self.case.assertEqual(code, 200, f"{method} {path} {data}: {body}")
        return body

    def post(self, user: str, text: str) -> None:
        self.api(user, "POST", "statuses/update", status=text)

    def follow(self, user: str, friend: str) -> None:
        self.api(user, "POST", "friendships/create", screen_name=friend)

    def timeline(self, user: str) -> list[str]:
        statuses = self.api(user, "GET", "statuses/user_timeline", screen_name=user)
        return [status["text"] for status in statuses]

    def add_phone(self, user: str, number: str) -> None:
        """
        The user adds ``number`` through the API, and confirms it with the
        code their phone got.
        """
        added = self.api(user, "POST", "account/devices/add", kind="sms", address=number)
        self.case.assertFalse(added["verified"], added)
        text = self.wait_for_text(number, lambda text: "code is" in text, "the code arrives")
        code = re.search(r"code is (\d{6})", text)
        assert code is not None, text
        verified = self.api(user, "POST", "account/devices/verify", kind="sms",
                            code=code.group(1))
        self.case.assertTrue(verified["verified"], verified)

    # -- the phones

    def texts(self, number: str) -> list[str]:
        return self.kannel.texts_to(number)

    def wait_for_text(self, number: str, wanted: Callable[[str], bool], what: str,
                      after: int = 0) -> str:
        """
        The first text to ``number`` (of those after the first ``after``)
        that is ``wanted``.
        """
        def found() -> str | None:
            return next((t for t in self.texts(number)[after:] if wanted(t)), None)

        text: str = _wait_for(found, f"{what} (texts to {number}: {self.texts(number)})")
        return text

    def text(self, number: str, message: str, answer: str | None = None) -> str | None:
        """
        The phone ``number`` texts ``message``; wait for the answer that
        starts with ``answer``, if one is given.
        """
        before = len(self.texts(number))
        self.kannel.inject(number, message)
        if answer is None:
            return None
        return self.wait_for_text(number, lambda t: t.startswith(answer),
                                  f"the answer to {message!r}", after=before)

    def barrier(self, number: str) -> None:
        """
        Two HELP round trips from ``number``: what was to arrive before
        has arrived (see the module's docstring).
        """
        for _ in range(2):
            self.text(number, "HELP", HELP_ANSWER)

    def wait_for_log(self, words: str) -> None:
        _wait_for(lambda: words in self.server.log_text(), f"the server logs {words!r}")


class SMSEndToEndTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.sms = SMSServer(self, ["alice", "dave"])
        self.sms.follow("dave", "alice")
        self.sms.add_phone("dave", DAVE)
        self.sms.api("dave", "POST", "account/update_delivery_device", device="sms")
        friend = self.sms.api("dave", "POST", "notifications/follow", screen_name="alice")
        self.assertTrue(friend["notifications"], friend)

    def test_both_ways_and_stop(self) -> None:
        """
        A friend's post arrives by SMS as "alice: text"; an SMS from the
        user's phone is posted (the API shows it, with non-ASCII text);
        after STOP, nothing more arrives.
        """
        sms = self.sms
        sms.post("alice", "first post, by the web")
        sms.wait_for_text(DAVE, lambda t: t == "alice: first post, by the web",
                          "alice's post arrives")
        sms.text(DAVE, "hello from my phone ☃")
        _wait_for(lambda: "hello from my phone ☃" in sms.timeline("dave"),
                  "dave's text is posted")
        sms.text(DAVE, "STOP", "You will get nothing more")
        sms.post("alice", "after the stop")
        sms.barrier(DAVE)
        self.assertNotIn("alice: after the stop", sms.texts(DAVE))
        # Every one of alice's posts came once, and only before STOP.
        self.assertEqual(
            [t for t in sms.texts(DAVE) if t.startswith("alice:")],
            ["alice: first post, by the web"],
        )

    def test_gateway_outage(self) -> None:
        """
        With Kannel's bearerbox stopped, a post waits in the outbox; once
        it runs again, the SMS arrives, once; nothing sent before the
        outage is sent again.
        """
        sms = self.sms
        sms.post("alice", "before the outage")
        sms.wait_for_text(DAVE, lambda t: t == "alice: before the outage", "the first post")
        sms.kannel.stop_bearerbox()
        sms.post("alice", "during the outage")
        sms.wait_for_log("the kannel channel fails")
        sms.kannel.start()
        sms.wait_for_text(DAVE, lambda t: t == "alice: during the outage",
                          "the post made during the outage arrives")
        sms.wait_for_log("the kannel channel takes messages again")
        sms.barrier(DAVE)
        self.assertEqual(
            [t for t in sms.texts(DAVE) if t.startswith("alice:")],
            ["alice: before the outage", "alice: during the outage"],
        )


class DaveTests(SynchronousTestCase):
    """
    The seed archetypes: Dave follows four people (Scoble among them) and
    is followed by one.
    """

    def test_on_and_off_scoble(self) -> None:
        """
        Dave gets Scoble's posts by SMS after texting ON scoble, and none
        after OFF scoble; the friends he did not turn on never text him.
        """
        sms = SMSServer(self, ["scoble", "dave", "joshua", "public", "user5"])
        for friend in ("scoble", "joshua", "public", "user5"):
            sms.follow("dave", friend)
        sms.follow("scoble", "dave")
        dave = sms.api("dave", "GET", "users/show", screen_name="dave")
        self.assertEqual((dave["friends_count"], dave["followers_count"]), (4, 1))
        sms.add_phone("dave", DAVE)
        sms.text(DAVE, "ON", "Your friends' posts will come here")
        sms.text(DAVE, "ON scoble", "scoble's posts will come to your device")
        sms.post("joshua", "joshua's news")
        sms.post("scoble", "scoble's first")
        sms.wait_for_text(DAVE, lambda t: t == "scoble: scoble's first", "scoble's post")
        sms.text(DAVE, "OFF scoble", "scoble's posts will no longer come")
        sms.post("scoble", "scoble's second")
        sms.barrier(DAVE)
        texts = sms.texts(DAVE)
        self.assertEqual([t for t in texts if t.startswith("scoble:")],
                         ["scoble: scoble's first"])
        self.assertEqual([t for t in texts if t.startswith("joshua:")], [])
