"""
Phones, IM and e-mail through the API (docs/design/devices.md, issue 18):
``account/update_delivery_device``, ``notifications/follow|leave``, the
``notifications`` field of user objects, ``account/settings`` and
distwit's ``account/devices/...``.

A real 2008 client (Python Twitter Tools, which names these endpoints
itself) drives real server processes whose SMS channel records what it
sends (tests/device_channels.py): the code it reads there verifies the
phone, and friends' posts, local and remote, arrive as SMS.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from distwit.channels import configured

from tests.device_channels import code_in, install, recording_server, sent
from tests.processes import ROOT
from tests.test_api import BASE, PASSWORDS, APITestCase
from tests.test_clients import CLIENTS, client_venv
from tests.test_federation import PASSWORD, Federation


class PythonTwitterToolsDeviceTests(SynchronousTestCase):
    """
    The ``twitter`` package (Python Twitter Tools 1.19) with HTTP Basic on
    the unversioned paths, as JSON and as 2008 XML.
    """

    def setUp(self) -> None:
        self.python = client_venv("ptt", "twitter==1.19.6")
        self.federation = Federation(self, pings=1)
        self.remote = self.federation.twitter("s2", ["dave"])

    def run_client(self, fmt: str) -> None:
        base = self.federation.base
        server, sent_log = recording_server(
            os.path.join(base, f"s1{fmt}"), ["alice", "bob", "carol"], ["sms", "im"], PASSWORD,
            "--role", "twitter", "--registry", self.federation.registry.url,
            "--ping-interval", "1", "--long-poll", "0",
        )
        self.addCleanup(server.stop)
        done = subprocess.run(
            [self.python, os.path.join(CLIENTS, "ptt_devices.py"),
             server.url.split("//", 1)[1], fmt, sent_log, self.remote.url.split("//", 1)[1]],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout.count("ok "), 7, done.stdout)
        self.assertNotIn("Traceback", server.log_text())

    def test_json(self) -> None:
        """
        The whole of phones through the API, in JSON: refusals without a
        verified phone, the code, delivery, notifications of a local and a
        remote friend, settings, removal.
        """
        self.run_client("json")

    def test_xml(self) -> None:
        """
        The same, in the 2008 XML.
        """
        self.run_client("xml")


class DevicesAPITestCase(APITestCase):
    """
    The API in memory (StubTreq over the real resource tree, a real SQLite
    store), with recording channels of :attr:`kinds` registered and the
    devices' outbox sent on the test's clock.
    """

    #: The kinds of the recording channels.
    kinds = ["sms", "im"]

    def setUp(self) -> None:
        self.sent_log = os.path.abspath(self.mktemp())
        open(self.sent_log, "w").close()
        before = list(configured.ADAPTERS)
        install(self.kinds, self.sent_log)
        self.addCleanup(configured.ADAPTERS.__setitem__, slice(None), before)
        super().setUp()
        # The devices' outbox is sent on the test's clock.
        delivery = self.service.delivery
        assert delivery is not None
        delivery.startService()
        self.addCleanup(delivery.stopService)

    def sent(self) -> list[dict[str, Any]]:
        """
        What the channels sent: the outbox's sender runs on the test's
        clock.
        """
        for _ in range(10):
            self.clock.advance(2)
        return sent(self.sent_log)


class DeviceEndpointTests(DevicesAPITestCase):
    """
    The endpoints with SMS and IM channels: what each answers, and every
    refusal as a sentence in Twitter's format.
    """

    def test_delivery_device_needs_a_verified_address(self) -> None:
        """
        ``device=sms`` without a verified phone is refused with a sentence
        saying what to do; an unknown device names the allowed ones;
        ``none`` answers the user.
        """
        result = self.call("POST", "/account/update_delivery_device.json", "alice",
                           data={"device": "sms"})
        self.assertError(result, 403, 44)
        self.assertIn("phone number", result[1]["errors"][0]["message"])
        self.call("POST", "/1.1/account/devices/add.json", "alice",
                  data={"kind": "sms", "address": "+1 555 555 0100"})
        result = self.call("POST", "/account/update_delivery_device.json", "alice",
                           data={"device": "sms"})
        self.assertError(result, 403, 44)
        result = self.call("POST", "/account/update_delivery_device.json", "alice",
                           data={"device": "fax"})
        self.assertError(result, 400, 44)
        self.assertIn("use sms, im or none", result[1]["errors"][0]["message"])
        self.assertError(
            self.call("POST", "/account/update_delivery_device.json", "alice"), 400, 170
        )
        code, body, _ = self.call("POST", "/account/update_delivery_device.json", "alice",
                                  data={"device": "none"})
        self.assertEqual((code, body["screen_name"]), (200, "alice"))

    def test_devices_add_list_remove(self) -> None:
        """
        An address added is listed unverified, written as the server keeps
        it (E.164); a second account may add it too until one verifies it;
        a bad one, an unknown kind and a kind the server does not offer
        are each a sentence; removed, it is gone.
        """
        code, added, _ = self.call("POST", "/1.1/account/devices/add.json", "alice",
                                   data={"kind": "sms", "address": "+1 (555) 555-0100"})
        self.assertEqual((code, added["kind"], added["address"], added["verified"]),
                         (200, "sms", "+15555550100", False))
        _, listed, _ = self.call("GET", "/1.1/account/devices.json", "alice")
        self.assertEqual(listed["channels"], ["im", "sms"])
        self.assertEqual([(d["kind"], d["address"]) for d in listed["devices"]],
                         [("sms", "+15555550100")])
        bad = self.call("POST", "/1.1/account/devices/add.json", "alice",
                        data={"kind": "sms", "address": "call me"})
        self.assertError(bad, 400, 44)
        self.assertIn("phone number", bad[1]["errors"][0]["message"])
        self.assertError(self.call("POST", "/1.1/account/devices/add.json", "alice",
                                   data={"kind": "fax", "address": "1"}), 400, 44)
        email = self.call("POST", "/1.1/account/devices/add.json", "alice",
                          data={"kind": "email", "address": "alice@example.org"})
        self.assertError(email, 400, 44)
        self.assertIn("does not send to any e-mail", email[1]["errors"][0]["message"])
        self.assertError(self.call("POST", "/1.1/account/devices/add.json", "alice",
                                   data={"kind": "sms"}), 400, 170)
        code, left, _ = self.call("POST", "/1.1/account/devices/remove.json", "alice",
                                  data={"kind": "sms"})
        self.assertEqual((code, left["devices"]), (200, []))
        self.assertError(self.call("GET", "/1.1/account/devices.json"), 401, 215)

    def test_verify_refusals(self) -> None:
        """
        A code for an address never added, an empty code and a wrong one
        are refused, each with a sentence (the wrong one with the tries
        left).
        """
        result = self.call("POST", "/1.1/account/devices/verify.json", "alice",
                           data={"kind": "im", "code": "123456"})
        self.assertError(result, 404, 34)
        self.call("POST", "/1.1/account/devices/add.json", "alice",
                  data={"kind": "im", "address": "Alice@Jabber.Example"})
        self.assertError(self.call("POST", "/1.1/account/devices/verify.json", "alice",
                                   data={"kind": "im"}), 400, 170)
        sent_code = next(code_in(m) for m in self.sent() if code_in(m))
        wrong = "000000" if sent_code != "000000" else "111111"
        result = self.call("POST", "/1.1/account/devices/verify.json", "alice",
                           data={"kind": "im", "code": wrong})
        self.assertError(result, 403, 44)
        self.assertIn("4 tries left", result[1]["errors"][0]["message"])

    def test_verified_phone_gets_friends_posts(self) -> None:
        """
        The code sent to the phone verifies it; then ``device=sms`` is
        taken, and the post of a friend whose notifications are on
        arrives there as ``bob: text``; another friend's does not.
        """
        self.call("POST", "/1.1/account/devices/add.json", "alice",
                  data={"kind": "sms", "address": "+15555550100"})
        sent_code = next(code_in(m) for m in self.sent() if code_in(m))
        code, verified, _ = self.call("POST", "/1.1/account/devices/verify.json", "alice",
                                      data={"kind": "sms", "code": sent_code})
        self.assertEqual((code, verified["verified"]), (200, True))
        code, me, _ = self.call("POST", "/account/update_delivery_device.json", "alice",
                                data={"device": "sms"})
        self.assertEqual((code, me["screen_name"]), (200, "alice"))
        for friend in ("bob", "carol"):
            self.call("POST", "/1.1/friendships/create.json", "alice",
                      data={"screen_name": friend})
        self.call("POST", "/1.1/notifications/follow.json", "alice", data={"screen_name": "bob"})
        self.post("carol", "carol's post")
        self.post("bob", "bob's post")
        texts = [m["text"] for m in self.sent() if m["address"] == "+15555550100"]
        self.assertIn("bob: bob's post", texts)
        self.assertNotIn("carol: carol's post", texts)

    def test_notifications_follow_and_leave(self) -> None:
        """
        ``notifications/follow`` of a friend answers the friend with
        ``notifications`` true, and so do users/show, users/lookup and
        friends/list for that reader only; of someone not followed it is
        a sentence; ``leave`` turns it off.
        """
        self.call("POST", "/1.1/friendships/create.json", "alice",
                  data={"screen_name": "bob"})
        code, bob, _ = self.call("POST", "/1.1/notifications/follow.json", "alice",
                                 data={"screen_name": "bob"})
        self.assertEqual((code, bob["screen_name"], bob["notifications"]), (200, "bob", True))
        _, shown, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "alice")
        self.assertIs(shown["notifications"], True)
        _, shown, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "carol")
        self.assertIs(shown["notifications"], False)
        _, looked, _ = self.call("GET", "/1.1/users/lookup.json?screen_name=bob,carol", "alice")
        self.assertEqual({u["screen_name"]: u["notifications"] for u in looked},
                         {"bob": True, "carol": False})
        _, friends, _ = self.call("GET", "/1.1/friends/list.json", "alice")
        self.assertEqual([(u["screen_name"], u["notifications"]) for u in friends["users"]],
                         [("bob", True)])
        _, anonymous, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob")
        self.assertIs(anonymous["notifications"], False)
        refused = self.call("POST", "/notifications/follow/carol.json", "alice")
        self.assertError(refused, 403, 44)
        self.assertIn("not following carol", refused[1]["errors"][0]["message"])
        self.assertError(self.call("POST", "/notifications/follow.json", "alice",
                                   data={"screen_name": "nobody"}), 404, 50)
        # /notifications alone is still the notifications page.
        d = self.stub.get(BASE + "/notifications", allow_redirects=False)
        self.stub.flush()
        page = self.successResultOf(d)
        self.assertEqual((page.code, page.headers.getRawHeaders("location")),
                         (303, ["/login?next=%2Fnotifications"]))
        code, bob, _ = self.call("POST", "/notifications/leave/bob.json", "alice")
        self.assertEqual((code, bob["notifications"]), (200, False))
        _, shown, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "alice")
        self.assertIs(shown["notifications"], False)

    def test_friendships_update_device(self) -> None:
        """
        ``friendships/update`` with ``device`` (as tweepy and python-twitter
        send it) turns a friend's notifications on and off, and the
        relationship's ``notifications_enabled`` says so to the source
        only; of someone not followed it is refused with a sentence.
        """
        self.call("POST", "/1.1/friendships/create.json", "alice", data={"screen_name": "bob"})
        code, answer, _ = self.call("POST", "/1.1/friendships/update.json", "alice",
                                    data={"screen_name": "bob", "device": "true"})
        self.assertEqual((code, answer["relationship"]["source"]["notifications_enabled"]),
                         (200, True))
        _, shown, _ = self.call("GET", "/1.1/users/show.json?screen_name=bob", "alice")
        self.assertIs(shown["notifications"], True)
        path = "/1.1/friendships/show.json?source_screen_name=alice&target_screen_name=bob"
        _, seen, _ = self.call("GET", path, "alice")
        self.assertIs(seen["relationship"]["source"]["notifications_enabled"], True)
        _, seen, _ = self.call("GET", path, "carol")
        self.assertIs(seen["relationship"]["source"]["notifications_enabled"], False)
        _, answer, _ = self.call("POST", "/1.1/friendships/update.json", "alice",
                                 data={"screen_name": "bob", "device": "false"})
        self.assertIs(answer["relationship"]["source"]["notifications_enabled"], False)
        refused = self.call("POST", "/1.1/friendships/update.json", "alice",
                            data={"screen_name": "carol", "device": "true"})
        self.assertError(refused, 403, 44)
        self.assertIn("not following carol", refused[1]["errors"][0]["message"])

    def test_account_settings(self) -> None:
        """
        ``account/settings`` has Twitter's ``sleep_time`` and ``time_zone``
        and the choices of the channels offered; POST changes those given
        and refuses, with a sentence, hours out of range, quiet hours
        without both ends, and an unknown time zone.
        """
        code, settings, _ = self.call("GET", "/1.1/account/settings.json", "alice")
        self.assertEqual(code, 200)
        self.assertEqual(settings["sleep_time"],
                         {"enabled": False, "start_time": None, "end_time": None})
        self.assertEqual(settings["time_zone"]["utc_offset"], 0)
        self.assertEqual((settings["delivery_device"], settings["channels"]),
                         ("none", ["im", "sms"]))
        self.assertEqual(settings["sms_direct_messages"], True)
        self.assertNotIn("email_mentions", settings)
        code, settings, _ = self.call(
            "POST", "/1.1/account/settings.json", "alice",
            data={"sleep_time_enabled": "true", "start_sleep_time": "22",
                  "end_sleep_time": "07", "time_zone": "Asia/Kolkata", "im_followers": "1"},
        )
        self.assertEqual(code, 200, settings)
        self.assertEqual(settings["sleep_time"],
                         {"enabled": True, "start_time": 22, "end_time": 7})
        self.assertEqual(settings["time_zone"],
                         {"name": "UTC+05:30", "utc_offset": 19800, "tzinfo_name": "UTC+05:30"})
        self.assertIs(settings["im_followers"], True)
        for data, code_ in [
            ({"sleep_time_enabled": "true", "start_sleep_time": "25", "end_sleep_time": "1"}, 44),
            ({"sleep_time_enabled": "true", "start_sleep_time": "2"}, 170),
            ({"time_zone": "Mars/Olympus_Mons"}, 44),
            ({"utc_offset": "99999"}, 44),
            ({"sms_mentions": "maybe"}, 44),
        ]:
            result = self.call("POST", "/1.1/account/settings.json", "alice", data=data)
            self.assertError(result, 400, code_)
        _, settings, _ = self.call("POST", "/1.1/account/settings.json", "alice",
                                   data={"sleep_time_enabled": "false"})
        self.assertEqual(settings["sleep_time"]["enabled"], False)
        self.assertEqual(settings["time_zone"]["utc_offset"], 19800)

    def test_xml(self) -> None:
        """
        The 2008 XML of ``account/devices`` and ``account/settings``.
        """
        self.call("POST", "/1.1/account/devices/add.json", "alice",
                  data={"kind": "sms", "address": "+15555550100"})
        d = self.stub.get(BASE + "/account/devices.xml", auth=("alice", PASSWORDS["alice"]))
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        self.assertIn(b"<devices type=\"array\"><device><kind>sms</kind>", body)
        d = self.stub.get(BASE + "/account/settings.xml", auth=("alice", PASSWORDS["alice"]))
        self.stub.flush()
        body = self.successResultOf(self.successResultOf(d).content())
        self.assertIn(b"<sleep_time><enabled>false</enabled>", body)


class UnsubscribeLinkTests(DevicesAPITestCase):
    """
    The unsubscribe link of e-mails, on the server's root (where the rest
    of ``/account/...`` is the API).
    """

    kinds = ["email"]

    def page(self, method: str, path: str) -> tuple[int, str]:
        d = self.stub.request(method, BASE + path, allow_redirects=False)
        self.stub.flush()
        response = self.successResultOf(d)
        body = response.content()
        self.stub.flush()
        return response.code, self.successResultOf(body).decode("utf-8")

    def test_unsubscribe_link(self) -> None:
        """
        A mention by e-mail carries the link; opening it shows a button
        (nothing stopped yet); pressing it (or a mail program's one-click
        POST) turns every e-mail choice off at once; a link that names no
        address is a sentence.
        """
        self.call("POST", "/1.1/account/devices/add.json", "alice",
                  data={"kind": "email", "address": "alice@example.org"})
        sent_code = next(code_in(m) for m in self.sent() if code_in(m))
        self.call("POST", "/1.1/account/devices/verify.json", "alice",
                  data={"kind": "email", "code": sent_code})
        self.post("bob", "@alice have a look")
        mails = [m for m in self.sent() if "have a look" in m["text"]]
        self.assertEqual(len(mails), 1, self.sent())
        found = re.search(r"(/account/unsubscribe/\S+)", mails[0]["text"])
        assert found is not None, mails[0]
        link = found.group(1)
        code, html_ = self.page("GET", link)
        self.assertEqual(code, 200)
        self.assertIn("Stop these e-mails", html_)
        _, settings, _ = self.call("GET", "/1.1/account/settings.json", "alice")
        self.assertIs(settings["email_mentions"], True)
        code, html_ = self.page("POST", link)
        self.assertEqual(code, 200, html_)
        self.assertIn("sends no more e-mails to that address", html_)
        _, settings, _ = self.call("GET", "/1.1/account/settings.json", "alice")
        self.assertEqual(
            [settings[f"email_{c}"] for c in ("mentions", "direct_messages", "followers")],
            [False, False, False],
        )
        code, html_ = self.page("POST", "/account/unsubscribe/not-a-token")
        self.assertEqual(code, 404)
        self.assertIn("not valid any more", html_)
